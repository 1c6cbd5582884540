"""Shared fixtures and the test tiers.

Fixtures: one Spark session for the whole run (local[2], UI off, few shuffle partitions); the generated
sample districts (`make_drop`, `district_drop`, `small_drop`), each made once per session and read by every
module that needs it; the hand-made silver the gate and the publisher check against (`silver_lake`).

Tiers (markers, registered in setup.cfg). `pytest_collection_modifyitems` below gives each test its tiers
from what it uses, so a new test is tiered without anyone remembering to:

- `spark`: uses the `spark` fixture (directly or through `spark_engine`): starts the local Spark session;
- `cluster`: uses `standalone_cluster`: a Spark standalone master and workers (also `spark` and `slow`);
- `airflow`: imports Airflow, or uses `airflow_db` (a migrated Airflow DB for `dag.test()`, also `slow`);
- `engine`: names the embedded engines (a Delta `Lake`, DuckDB, delta-rs) or runs a command with `--lake`,
  in its body, in a helper of the test modules it calls, or in a fixture it uses;
- `slow`: generates a sample district (the synth generators, itself or through `make_drop`, `small_drop`,
  `district_drop`...) to run the pipeline on it, except the generator's own tests; DAG runs and the cluster,
  from their fixtures; the notebook by `pytestmark`; long integration tests of other work's modules from
  SLOW_TESTS below;
- `unit`: none of the above: plain Python on hand-made values. A unit test that opens a lake or DuckDB all
  the same fails (`unit_tests_stay_off_the_engines`), so the marker stays true.

`make test-fast` runs `not spark and not cluster and not airflow and not slow`; `make test` runs all.
"""
from __future__ import annotations

import inspect
import logging
import os
import types
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("FUNDGUARD_ENV", "ci")
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
from fg_lakes import make_lake  # noqa: E402  (tests/ is on sys.path: this conftest's folder)
warnings.filterwarnings("ignore", message=".*SADeprecationWarning.*")
# py4j logs "Closing down clientserver connection" at interpreter exit, after pytest closed its streams
logging.getLogger("py4j").setLevel(logging.WARNING)

TESTS = Path(__file__).resolve().parent

#: tiers a fixture brings to every test that uses it (directly or through another fixture)
TIERS_OF_FIXTURE = {
    "spark": {"spark"},
    "standalone_cluster": {"cluster", "spark", "slow"},
    "airflow_db": {"airflow", "slow"},
}
#: the sample-district generators: a test that generates a district (itself or through a fixture such as
#: `small_drop`) runs the pipeline on thousands of lines, and is `slow`; the generator's own tests are not
GENERATOR, GENERATOR_TESTS = "pipelines.synth", "tests/synth/"
NOT_DISTRICTS = ("pipelines.synth.kb_batches",)      # knowledge-base workbooks, small
#: names that mean the embedded engines: a Delta lake, DuckDB, delta-rs; and a command's `--lake` argument
ENGINE_NAMES = {"Lake", "duckdb", "DuckDBEngine", "deltalake", "DeltaTable", "write_deltalake", "--lake"}
NOT_UNIT = {"engine", "spark", "cluster", "airflow", "slow"}
#: long integration tests of other work's modules, marked `slow` from here: chunked writes and per-partition
#: netting of 900 lines read two rows at a time (seconds each); `fundguard run` killed at each fault point and
#: run again, in subprocesses (minutes)
SLOW_TESTS = (
    "tests/ingest/test_ingest_chunks.py::test_chunked_write_gives_the_same_silver",
    "tests/ingest/test_ingest_chunks.py::test_chunks_cover_every_row_once",
    "tests/ingest/test_ingest_chunks.py::test_netting_by_partition_equals_netting_the_whole",
    "tests/test_faults.py::test_killed_at_each_point_the_rerun_publishes_the_clean_list",
    "tests/test_faults.py::test_a_killed_load_leaves_its_scratch_under_the_lake_and_the_next_start_cleans_it",
)


# ------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session")
def spark():
    from pipelines.screen.engines import spark_session

    session = spark_session(master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def spark_engine(spark):
    from pipelines.screen.engines import SparkEngine

    return SparkEngine(spark=spark)


@pytest.fixture(scope="session")
def make_drop(tmp_path_factory):
    """`make_drop(scale, seed)`: the sample district `fundguard synth` writes (answer key beside it), made
    once per session for each (scale, seed). Shared: read it, copy it before changing anything."""
    from pipelines.synth import generate

    made: dict[tuple[float, int], Path] = {}

    def make(scale: float, seed: int) -> Path:
        if (scale, seed) not in made:
            out = tmp_path_factory.mktemp(f"district_{scale}_{seed}") / "landing"
            generate(out, scale=scale, seed=seed)
            made[(scale, seed)] = out
        return made[(scale, seed)]
    return make


@pytest.fixture(scope="session")
def district_drop(make_drop) -> Path:
    """The answer-key district: every contract family injected, with tricky negatives (scale 0.3)."""
    return make_drop(0.3, 11)


@pytest.fixture(scope="session")
def small_drop(make_drop) -> Path:
    """A small district for command runs (scale 0.1)."""
    return make_drop(0.1, 21)


@pytest.fixture
def silver_lake(tmp_path):
    """(lake, versions): silver of two institutions as Delta tables and their versions (tests/fg_lakes.py), what
    the gate and the publisher check suspects against."""
    return make_lake(tmp_path)


@pytest.fixture(autouse=True)
def unit_tests_stay_off_the_engines(request, monkeypatch):
    """A test tiered `unit` that opens a Delta lake or DuckDB fails, saying so: the tier was wrong."""
    if request.node.get_closest_marker("unit") is None:
        return
    import deltalake
    import duckdb

    from pipelines import storage

    def refuse(what):
        def refused(*args, **kwargs):
            raise AssertionError(f"{request.node.nodeid} is tiered `unit` but uses {what}: name the engine in the "
                                 f"test (see tests/conftest.py) or mark it `engine`")
        return refused
    for name in ("connect", "sql", "query", "execute"):
        monkeypatch.setattr(duckdb, name, refuse(f"duckdb.{name}"))
    monkeypatch.setattr(deltalake, "write_deltalake", refuse("deltalake.write_deltalake"))
    monkeypatch.setattr(deltalake.DeltaTable, "__init__", refuse("deltalake.DeltaTable"))
    monkeypatch.setattr(storage.Lake, "__init__", refuse("a Delta lake (pipelines.storage.Lake)"))


# ------------------------------------------------------------------------------------------ tiers

def _in_tests(obj) -> bool:
    try:
        return Path(inspect.getfile(obj)).resolve().is_relative_to(TESTS)
    except TypeError:
        return False


def names_used(func, seen: set | None = None) -> set[str]:
    """Global, attribute and imported names in `func`'s code (nested functions included), and the string
    constants among ENGINE_NAMES; also in the functions of the test modules it calls, followed through their own
    modules."""
    seen = set() if seen is None else seen
    code = getattr(func, "__code__", None)
    if code is None or code in seen:
        return set()
    seen.add(code)
    names, stack = set(), [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        names.update(k for k in c.co_consts if isinstance(k, str) and k in ENGINE_NAMES)
        stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
    for n in list(names):
        helper = func.__globals__.get(n)
        if inspect.isfunction(helper) and _in_tests(helper):
            names |= names_used(helper, seen)
        module = n if n.startswith(GENERATOR) else getattr(helper, "__module__", None) or ""
        if module.startswith(GENERATOR) and not module.startswith(NOT_DISTRICTS):
            names.add(GENERATOR)
    return names


def tiers_of(item) -> set[str]:
    """The tiers `item` gets from its fixtures and the names it uses (module docstring)."""
    fixtures = set(getattr(item, "fixturenames", ()))
    tiers = set().union(*(TIERS_OF_FIXTURE[f] for f in fixtures & set(TIERS_OF_FIXTURE)))
    seen: set = set()
    names = names_used(getattr(item, "function", None), seen)
    info = getattr(item, "_fixtureinfo", None)
    for name, defs in (info.name2fixturedefs.items() if info else ()):
        if name != "unit_tests_stay_off_the_engines" and _in_tests(defs[-1].func):
            names |= names_used(defs[-1].func, seen)
    if any(n == "airflow" or n.startswith("airflow.") for n in names):
        tiers.add("airflow")
    if names & ENGINE_NAMES:
        tiers.add("engine")
    if GENERATOR in names and not item.nodeid.startswith(GENERATOR_TESTS):
        tiers.add("slow")
    return tiers


def _defined(module: Path, function: str) -> bool:
    return module.is_file() and f"def {function}(" in module.read_text(encoding="utf-8")


@pytest.hookimpl(tryfirst=True)      # before `-m` selects by marker
def pytest_collection_modifyitems(config, items):
    gone = [t for t in SLOW_TESTS if not _defined(TESTS.parent / t.split("::")[0], t.split("::")[1])]
    if gone:
        raise pytest.UsageError(f"tests/conftest.py SLOW_TESTS names tests that do not exist: {gone}")
    for item in items:
        own = {m.name for m in item.iter_markers()}
        tiers = tiers_of(item) | own
        if item.nodeid.split("[")[0] in SLOW_TESTS:
            tiers.add("slow")
        if not tiers & NOT_UNIT:
            tiers.add("unit")
        for tier in sorted(tiers - own):
            item.add_marker(tier)
