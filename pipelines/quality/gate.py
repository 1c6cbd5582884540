"""The quality gate on a staging suspect list (contract §5: nothing is published unless it passed).

What it checks is data: `gate_suite.yml` (each expectation with the frame and column it checks, its Great
Expectations class and arguments, and its message in Chinese and English). `run_gate` reads what the
frames need from the lake (the silver references at the versions the list recorded, the last published
hits), computes the frames the suite names (`gate_frames.FRAMES`), and runs the suite; Data Docs go to
`report_dir`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from pipelines import contract
from pipelines.catalog import Catalog, Rule
from pipelines.quality import gx as qgx
from pipelines.quality import suite as qsuite
from pipelines.quality.gate_frames import FRAMES, REFERENCE_TABLES, REFERENCE_VIEWS, GateInputs
from pipelines.storage import Lake

GOLD = contract.GOLD_SUSPECTS
SUITE_PATH = Path(__file__).with_name("gate_suite.yml")


@dataclass
class GateResult:
    success: bool
    failures: list[str]
    report_path: Path | None
    results: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------ reading

def previous_hits(lake: Lake) -> dict[str, int]:
    """Hits of each rule in its latest published run (the run with the latest published_at) in gold."""
    if not lake.exists(GOLD):
        return {}
    ds = lake.dataset(GOLD)
    con = duckdb.connect()
    con.register("gold", ds)
    rows = con.execute("""
        WITH runs AS (
            SELECT rule_id, run_id, max(published_at) AS last_at, count(*) AS hits
            FROM gold GROUP BY rule_id, run_id)
        SELECT rule_id, hits FROM runs
        QUALIFY row_number() OVER (PARTITION BY rule_id ORDER BY last_at DESC NULLS LAST, run_id DESC) = 1
    """).fetchall()
    con.close()
    return {r: int(n) for r, n in rows}


def _recorded_versions(suspects: pa.Table) -> dict[str, int]:
    if "input_versions" not in suspects.column_names or suspects.num_rows == 0:
        return {}
    for v in suspects.column("input_versions").drop_null().unique().to_pylist()[:1]:
        try:
            return {k: int(x) for k, x in json.loads(v).items()}
        except (ValueError, TypeError, AttributeError):
            return {}
    return {}


def _reference(lake: Lake, table: str, entity: str, columns: tuple[str, ...], version: int | None):
    """A silver table at the version the list recorded (the current one when that version is gone), or an
    empty table when it does not exist or lacks a column."""
    if lake.exists(table):
        try:
            data = lake.dataset(table, version)
        except Exception:  # a recorded version that no longer exists (vacuumed): use the current one
            data = lake.dataset(table)
        if set(columns) <= set(data.schema.names):
            return data
    schema = contract.arrow_schema(entity)
    return pa.schema([schema.field(c) for c in columns]).empty_table()


def read_references(lake: Lake, suspects: pa.Table) -> dict[str, object]:
    """Every reference view of the suspects frame, read from silver."""
    versions = _recorded_versions(suspects)
    out = {}
    for view, (grain, entity, columns) in REFERENCE_VIEWS.items():
        table = REFERENCE_TABLES[grain]
        out[view] = _reference(lake, table, entity, columns, versions.get(table))
    return out


# ------------------------------------------------------------------------------------ the gate

def run_gate(lake: Lake, suspects: pa.Table, *, catalog: Catalog, rules: list[Rule], report_dir: Path,
             previous: dict[str, int] | None = None, band: float, min_hits: int) -> GateResult:
    """Validate a staging suspect list; `success` False means it must not be published."""
    suite = qsuite.load_suite(SUITE_PATH)
    inputs = GateInputs(suspects, catalog, rules, read_references(lake, suspects),
                        previous_hits(lake) if previous is None else previous, band, min_hits)
    frames = {kind: [qsuite.Frame(kind, kind, FRAMES[kind](inputs))] for kind in suite.frames}
    params = {"band": band, "min_hits": min_hits, "active_rules": inputs.active_ids or [""],
              "month_pattern": contract.MONTH_RE.pattern}
    run = qsuite.run(suite, frames, params, report_dir)
    if run is None:  # fail closed: a list nothing checked is not published
        raise ValueError(f"{SUITE_PATH}: the gate suite holds no expectation")
    results = {
        "gate_success": int(run.success),
        "gate_expectations": run.stats["expectations"],
        "gate_failed_expectations": run.stats["failed"],
        "gate_suspects": suspects.num_rows,
    }
    for o in run.outcomes:
        results[f"gate.{o.check.name}.unexpected"] = int(o.unexpected_count or (0 if o.success else 1))
    return GateResult(run.success, qgx.messages(run), report_dir, results)
