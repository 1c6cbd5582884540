"""The ingest package keeps its inner walls: small modules and functions, `pipeline.py` wiring only."""
from __future__ import annotations

import ast
from pathlib import Path

import pipelines.ingest

PACKAGE = Path(pipelines.ingest.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            yield node.name, node.end_lineno - start + 1


def test_modules_fit_on_a_few_screens_and_functions_do_one_thing():
    assert len(MODULES) > 10
    too_long = {p.name: n for p in MODULES if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400}
    assert not too_long, f"modules over 400 lines: {too_long}"
    big = {f"{p.name}:{name}": n for p in MODULES for name, n in _functions(ast.parse(p.read_text(encoding="utf-8")))
           if n > 60}
    assert not big, f"functions over 60 lines: {big}"


def test_pipeline_is_wiring_only():
    """pipeline.py composes the steps: no SQL engine, no Arrow, no thread of its own."""
    tree = ast.parse((PACKAGE / "pipeline.py").read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not imported & {"duckdb", "pyarrow", "threading", "queue", "numpy"}
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def test_sql_quoting_comes_from_storage_only():
    """One definition of SQL quoting (pipelines.storage): ingest defines no quoting helper of its own."""
    defined = {name for p in MODULES for name, _ in _functions(ast.parse(p.read_text(encoding="utf-8")))}
    assert not defined & {"q", "lit", "_q", "_lit", "sql_ident", "sql_literal", "quote_ident", "literal"}
