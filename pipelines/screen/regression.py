"""Rule regression data: `rules/regression/<rule_id>/` holds tiny input tables (`<entity>.csv`, canonical
headers, any subset of columns) and `expected.csv` (the suspect records the rule must return, by the
keys of its grain). `run_case` screens one case on an engine; the test suite runs every case on both."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines import contract
from pipelines.catalog import Catalog, Rule
from pipelines.screen.pipeline import INPUT_TABLES, build_views
from pipelines.screen.sql import GRAIN_KEYS, rule_query


def typed_csv(path: Path | None, entity: str) -> pa.Table:
    """Read a canonical CSV into the entity's typed schema (missing columns are null)."""
    schema = contract.arrow_schema(entity)
    if path is None or not path.exists():
        return schema.empty_table()
    con = duckdb.connect()
    raw = con.sql("SELECT * FROM read_csv($p, all_varchar=true, header=true)", params={"p": str(path)}).to_arrow_table()
    present = set(raw.column_names)
    cols = []
    for f in schema:
        if f.name not in present:
            cols.append(pa.nulls(raw.num_rows, f.type))
            continue
        logical = contract.ENTITIES[entity].field(f.name).type
        col = raw.column(f.name)
        if logical == contract.CODE2:
            col = pa.array([None if v is None else (v.zfill(2) if v.isdigit() else v) for v in col.to_pylist()],
                           pa.string())
        elif f.type != pa.string():
            con.register("c", pa.table({"v": col}))
            sql_type = contract.SQL_TYPES[logical]
            col = con.sql(f"SELECT CAST(v AS {sql_type}) AS v FROM c").to_arrow_table().column("v").cast(f.type)
        cols.append(col)
    return pa.Table.from_arrays(cols, schema=schema) if cols else schema.empty_table()


@dataclass
class CaseResult:
    expected: set[tuple]
    actual: set[tuple]
    rows: pa.Table

    @property
    def ok(self) -> bool:
        return self.expected == self.actual


def case_dir(catalog: Catalog, rule: Rule) -> Path:
    return catalog.rules_dir / "regression" / rule.id


def expected_keys(path: Path, grain: str) -> set[tuple]:
    with path.open(encoding="utf-8") as fh:
        return {tuple((row.get(k) or "") for k in GRAIN_KEYS[grain]) for row in csv.DictReader(fh)}


def run_case(engine, catalog: Catalog, rule: Rule) -> CaseResult:
    d = case_dir(catalog, rule)
    for view in INPUT_TABLES:
        engine.register_arrow(view, typed_csv(d / f"{view}.csv", view))
    build_views(engine, catalog)
    rows = engine.query(rule_query(catalog, rule))
    grain = catalog.families[rule.family].grain
    actual = {tuple((r[k] or "") for k in GRAIN_KEYS[grain]) for r in rows.to_pylist()}
    return CaseResult(expected_keys(d / "expected.csv", grain), actual, rows)
