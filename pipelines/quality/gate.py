"""The quality gate on a staging suspect list (contract §5: nothing is published unless it passed).

What it checks is data: `gate_suite.yml` (each expectation with the frame and column it checks, its Great
Expectations class and arguments, and its message in Chinese and English). `run_gate` reads what the
frames need from the lake (the silver references and persons at the versions the list recorded, the last
published hits, gold's rows per (institution, month)), computes the frames the suite names
(`gate_frames.FRAMES`) with the scope the screening recorded (`GateScope`), and runs the suite; its report
goes to `report_dir`: `gate.html` (`report`: the verdict, the failed checks and their rows; one page that
opens offline) beside the Great Expectations Data Docs (`index.html`, the detail).
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
from pipelines.quality import report as qreport
from pipelines.quality import suite as qsuite
from pipelines.quality.gate_frames import FRAMES, REFERENCE_TABLES, REFERENCE_VIEWS, GateInputs
from pipelines.storage import Lake

GOLD = contract.GOLD_SUSPECTS
PERSONS = "silver/psn"
SUITE_PATH = Path(__file__).with_name("gate_suite.yml")
REPORT_FILE = "gate.html"


@dataclass(frozen=True)
class GateScope:
    """What the list is checked against besides silver: the scope its screening recorded (staging/scope;
    None when none is), the staging version the list was read at, and the gate's settings for drops and
    personal data (conf `gate`, `pii_key`)."""

    scope: pa.Table | None
    staging_version: int | None = None
    accept_drop: bool = False       # --accept-drop: an intended drop (emptied or shrunk scope) passes
    drop_ratio: float = 0.5
    drop_min_rows: int = 10
    pii_key: str = ""
    only_rules: list[str] | None = None   # the list replaces only these rules' findings (None: every rule's)


@dataclass
class GateResult:
    success: bool
    failures: list[str]
    report_path: Path | None         # the folder: gate.html and the Data Docs (index.html)
    results: dict = field(default_factory=dict)
    summary_path: Path | None = None  # gate.html: the verdict and what failed, readable offline


# ------------------------------------------------------------------------------------ reading

def previous_hits(lake: Lake, scope: pa.Table | None = None) -> dict[str, int]:
    """Hits of each rule in the published list as it stands (gold, whatever runs wrote it), within `scope`'s
    (institution, month) pairs when one is given: what a new screening of that scope replaces. (The rule's
    latest run alone is not the base: after an incremental or a scoped publication it holds a fraction of the
    list, and the next full run would exceed any band.)"""
    if not lake.exists(GOLD):
        return {}
    con = duckdb.connect()
    try:
        con.register("gold", lake.dataset(GOLD))
        where = ""
        if scope is not None:
            con.register("scope_pairs", scope.select(["fixmedins_code", "period"]))
            where = ("WHERE (fixmedins_code, period) IN (SELECT (fixmedins_code, period) FROM scope_pairs)")
        rows = con.execute(f"SELECT rule_id, count(*) FROM gold {where} GROUP BY rule_id").fetchall()
    finally:
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


def _reference(lake: Lake, table: str, entity: str, columns: tuple[str, ...], version: int | None,
               institutions: set | None = None):
    """A silver table at the version the list recorded (the current one when that version is gone), or an
    empty table when it does not exist or lacks a column; with `institutions`, only their partitions of a
    table partitioned by institution."""
    if lake.exists(table):
        try:
            parts = {"fixmedins_code": institutions} if institutions is not None else None
            data = lake.dataset(table, version, partitions=parts, where_partitioned=True)
        except Exception:  # a recorded version that no longer exists (vacuumed): use the current one
            data = lake.dataset(table)
        if set(columns) <= set(data.schema.names):
            return data
    schema = contract.arrow_schema(entity)
    return pa.schema([schema.field(c) for c in columns]).empty_table()


def published_counts(lake: Lake, only_rules: list[str] | None = None) -> pa.Table:
    """gold/suspects now: rows per (fixmedins_code, period) (of `only_rules` only, when given: what a list of
    some rules would replace)."""
    if not lake.exists(GOLD):
        return pa.table({"fixmedins_code": pa.array([], pa.string()), "period": pa.array([], pa.string()),
                         "n": pa.array([], pa.int64())})
    con = duckdb.connect()
    try:
        con.register("gold", lake.dataset(GOLD))
        where = "WHERE rule_id IN (SELECT unnest($rules))" if only_rules is not None else ""
        params = {"rules": sorted(set(only_rules))} if only_rules is not None else None
        return con.sql(f"SELECT fixmedins_code, period, count(*)::BIGINT AS n FROM gold {where} GROUP BY ALL",
                       params=params).to_arrow_table()
    finally:
        con.close()


def read_persons(lake: Lake, suspects: pa.Table):
    """silver/psn (psn_no, psn_name_hash) at the version the list recorded (empty when there is none)."""
    return _reference(lake, PERSONS, "psn", ("psn_no", "psn_name_hash"), _recorded_versions(suspects).get(PERSONS))


def read_references(lake: Lake, suspects: pa.Table) -> dict[str, object]:
    """Every reference view of the suspects frame, read from silver: in the partitions of the suspects'
    institutions only (an incremental run's few findings were checked against the whole district's lines:
    11 GB at 40 M lines)."""
    versions = _recorded_versions(suspects)
    insts = None
    if "fixmedins_code" in suspects.column_names and not suspects.column("fixmedins_code").null_count:
        insts = set(suspects.column("fixmedins_code").unique().to_pylist())
    out = {}
    for view, (grain, entity, columns) in REFERENCE_VIEWS.items():
        table = REFERENCE_TABLES[grain]
        out[view] = _reference(lake, table, entity, columns, versions.get(table), insts)
    return out


# ------------------------------------------------------------------------------------ the gate

def write_report(report_dir: Path, run: qgx.SuiteRun, suspects: pa.Table, scope: pa.Table | None) -> Path:
    """`gate.html` in `report_dir`, beside the Data Docs it links to."""
    path = Path(report_dir) / REPORT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(qreport.render(qreport.gate_report(run, suspects, scope, data_docs="index.html")),
                    encoding="utf-8")
    return path


def _run_name(suspects: pa.Table, scope: pa.Table | None) -> str | None:
    """The screening's run id, naming the validations in the Data Docs."""
    ids = qreport.run_ids(suspects, scope)
    return "+".join("".join(c if c.isalnum() or c in "_.-" else "_" for c in i) for i in ids) or None


def run_gate(lake: Lake, suspects: pa.Table, *, catalog: Catalog, rules: list[Rule], report_dir: Path,
             scope: GateScope, previous: dict[str, int] | None = None, band: float, min_hits: int) -> GateResult:
    """Validate a staging suspect list against the scope its screening recorded; `success` False means it
    must not be published."""
    suite = qsuite.load_suite(SUITE_PATH)
    persons = read_persons(lake, suspects)
    if not scope.pii_key and (persons.num_rows if isinstance(persons, pa.Table) else persons.count_rows()):
        raise ValueError("no PII key: the gate cannot look for insured persons' names in the list")
    inputs = GateInputs(suspects, catalog, rules, read_references(lake, suspects),
                        previous_hits(lake, scope.scope) if previous is None else previous, band, min_hits,
                        scope=scope.scope, staging_version=scope.staging_version,
                        published=published_counts(lake, scope.only_rules), persons=persons,
                        pii_key=scope.pii_key, drop_ratio=scope.drop_ratio, drop_min_rows=scope.drop_min_rows)
    frames = {kind: [qsuite.Frame(kind, kind, FRAMES[kind](inputs))] for kind in suite.frames}
    params = {"band": band, "min_hits": min_hits, "active_rules": inputs.active_ids or [""],
              "month_pattern": contract.MONTH_RE.pattern, "check_drop": not scope.accept_drop,
              "drop_ratio": scope.drop_ratio, "drop_min_rows": scope.drop_min_rows}
    run = qsuite.run(suite, frames, params, report_dir, run_name=_run_name(suspects, scope.scope))
    if run is None:  # fail closed: a list nothing checked is not published
        raise ValueError(f"{SUITE_PATH}: the gate suite holds no expectation")
    summary = write_report(report_dir, run, suspects, scope.scope)
    results = {
        "gate_success": int(run.success),
        "gate_expectations": run.stats["expectations"],
        "gate_failed_expectations": run.stats["failed"],
        "gate_suspects": suspects.num_rows,
    }
    for o in run.outcomes:
        results[f"gate.{o.check.name}.unexpected"] = int(o.unexpected_count or (0 if o.success else 1))
    return GateResult(run.success, qgx.messages(run), report_dir, results, summary_path=summary)
