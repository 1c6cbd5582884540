"""The house: floors with imports only downward, small rooms (conventions 13 and 14).

Floors, bottom to top:
0. foundation — the contract, config, storage, the rule catalog, tracking: what every stage reads;
1. stages — `pipelines/<stage>/`: pure steps plus one module doing the stage's I/O through storage; a stage
   imports the foundation and itself, never another stage;
2. application steps — `pipelines/app/`: compose stages; what the commands and the DAGs both call;
3. the top — `pipelines/commands/`, `pipelines/cli.py`, `pipelines/jobs/` and `dags/`: nothing imports them.

Every import is read from the source (also those inside functions), so a lazy import cannot hide an
upward arrow.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pipelines"
FOUNDATION = ("pipelines.contract", "pipelines.config", "pipelines.storage", "pipelines.catalog",
              "pipelines.tracking")
TOP = ("pipelines.commands", "pipelines.cli", "pipelines.jobs", "dags")
#: modules allowed past the size limits: generated data and the synthetic-data generator's tables
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60
GENERATOR = "pipelines.synth"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def sources() -> dict[str, Path]:
    files = [*PACKAGE.rglob("*.py"), *(ROOT / "dags").glob("*.py")]
    return {module_name(p): p for p in sorted(files)}


def floor(module: str) -> tuple[int, str]:
    """(floor, room): the room is the stage (or the floor's name) a module belongs to."""
    if module == "pipelines" or module.startswith(FOUNDATION):
        return 0, module
    if module.startswith(TOP):
        return 3, module
    if module.startswith("pipelines.app"):
        return 2, "pipelines.app"
    parts = module.split(".")
    if len(parts) >= 2 and parts[0] == "pipelines":
        return 1, ".".join(parts[:2])
    raise AssertionError(f"{module}: on no floor; add it to tests/test_layout.py's floors")


def imports(path: Path, module: str) -> set[str]:
    """Every pipelines module `path` imports, resolved to the longest known module name."""
    known = set(sources())
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")[: -node.level] if not path.name == "__init__.py" else \
                    module.split(".")[: len(module.split(".")) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
    return found


def arrows() -> list[tuple[str, str]]:
    return [(m, target) for m, path in sources().items() for target in sorted(imports(path, m))]


def test_every_module_is_on_a_floor():
    for module in sources():
        floor(module)


def test_imports_only_go_down():
    upward = []
    for source, target in arrows():
        (f_src, room_src), (f_dst, room_dst) = floor(source), floor(target)
        if f_dst > f_src:
            upward.append(f"{source} → {target} (floor {f_src} imports floor {f_dst})")
        elif f_dst == f_src == 1 and room_src != room_dst:
            upward.append(f"{source} → {target} (a stage imports another stage)")
        elif f_dst == f_src == 3 and target not in ("pipelines.commands", "pipelines.commands._common"):
            upward.append(f"{source} → {target} (a command or DAG imports another top-floor module)")
    assert upward == [], "\n".join(upward)


def test_the_reader_sees_lazy_imports():
    """The reader must see an import inside a function: a command importing an app step lazily counts."""
    found = imports(PACKAGE / "commands" / "run.py", "pipelines.commands.run")
    assert "pipelines.app.screening" in found and "pipelines.app.load" in found


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [f"{path.relative_to(ROOT)}:{n.lineno} {n.name} ({n.end_lineno - n.lineno + 1} lines)"
            for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]


def test_small_rooms():
    """No module over 400 lines; no function over 60 lines outside the synthetic-data generator."""
    big, long_ = [], []
    files = {**sources(), **{module_name(p): p for p in (ROOT / "benchmarks").glob("*.py")}}
    for module, path in files.items():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_MODULE_LINES:
            big.append(f"{path.relative_to(ROOT)}: {n} lines")
        if not module.startswith(GENERATOR):
            long_ += _long_functions(path)
    assert big == [] and long_ == [], "\n".join(big + long_)


def test_no_unused_or_undefined_names():
    """`make lint` (pyflakes through ruff) is clean: no unused import, no undefined name."""
    import subprocess
    import sys

    ruff = Path(sys.executable).with_name("ruff")
    out = subprocess.run([str(ruff), "check", "--select", "F", "--output-format", "concise",
                          "pipelines", "dags", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_import_of_the_package_names_something_that_exists():
    """Lazy imports (inside functions) included: a moved module or a removed name leaves no caller behind,
    in the package, the DAGs, the tests or the benchmarks."""
    import importlib
    import importlib.util

    missing = []
    for folder in ("pipelines", "dags", "tests", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.Import):
                    missing += [f"{where} {a.name}" for a in node.names
                                if a.name.startswith("pipelines") and importlib.util.find_spec(a.name) is None]
                elif isinstance(node, ast.ImportFrom) and not node.level and (node.module or "").startswith("pipelines"):
                    if importlib.util.find_spec(node.module) is None:
                        missing.append(f"{where} {node.module}")
                        continue
                    try:
                        module = importlib.import_module(node.module)
                    except ImportError as exc:
                        missing.append(f"{where} {node.module}: {exc}")
                        continue
                    missing += [f"{where} {node.module}.{a.name}" for a in node.names if a.name != "*"
                                and not hasattr(module, a.name)
                                and importlib.util.find_spec(f"{node.module}.{a.name}") is None]
    assert missing == [], "\n".join(missing)
