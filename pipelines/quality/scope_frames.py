"""The gate's frames about scope: the list against what its screening recorded in `staging/scope` (one row
per (institution, month) screened, with the input rows, the run's lineage and the staging version the list
was written as; `screen.pipeline.SCOPE_SCHEMA`), and against what gold holds for that scope now.

- `staging`: one row: whether a scope is recorded, whether it belongs to the list being gated (the staging
  version it names is the list's; one run);
- `scope`: one row for the whole scope and one per institution in it: input rows, suspects staged, rows
  published now (the last publication of that scope), and whether publishing would empty or shrink it:
  `emptied` (the whole scope: no suspect although it has input rows or published rows; an institution: no
  suspect where rows are published), `shrunk` (fewer than `drop_ratio` × the published rows, once those are
  at least `drop_min_rows`). An institution is judged only when the whole scope is not.
The functions read nothing (`gate` reads staging/scope and gold).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from pipelines.quality.gate_frames import GateInputs

PAIRS_SCHEMA = pa.schema([("fixmedins_code", pa.string()), ("period", pa.string())])
LINEAGE_SCHEMA = pa.schema([("run_id", pa.string()), ("rule_set_fingerprint", pa.string()),
                            ("input_versions", pa.string())])
STAGING_SCHEMA = pa.schema([("scope_recorded", pa.bool_()), ("staging_version", pa.int64()),
                            ("scope_version", pa.string()), ("scope_current", pa.bool_()),
                            ("scope_runs", pa.string()), ("scope_one_run", pa.bool_())])
SCOPE_FRAME_SCHEMA = pa.schema([("level", pa.string()), ("unit_zh", pa.string()), ("unit_en", pa.string()),
                                ("input_rows", pa.int64()), ("staged", pa.int64()), ("published", pa.int64()),
                                ("emptied", pa.bool_()), ("shrunk", pa.bool_())])


def _column(t: pa.Table | None, name: str) -> list:
    return t.column(name).to_pylist() if t is not None and name in t.column_names else []


def pairs(scope: pa.Table | None) -> pa.Table:
    """The (institution, month) pairs a scope holds."""
    if scope is None:
        return PAIRS_SCHEMA.empty_table()
    return scope.select(PAIRS_SCHEMA.names).cast(PAIRS_SCHEMA)


def lineage(scope: pa.Table | None) -> pa.Table:
    """The distinct lineages (run id, rule-set fingerprint, input versions) a scope records: one, normally."""
    if scope is None or scope.num_rows == 0:
        return LINEAGE_SCHEMA.empty_table()
    names = LINEAGE_SCHEMA.names
    distinct = {tuple(r[c] for c in names) for r in scope.select(names).to_pylist()}
    rows = sorted(distinct, key=lambda r: tuple(x or "" for x in r))
    return pa.Table.from_pylist([dict(zip(names, r)) for r in rows], schema=LINEAGE_SCHEMA)


def staging_frame(inputs: "GateInputs") -> pa.Table:
    scope = inputs.scope
    row = {"scope_recorded": scope is not None, "staging_version": inputs.staging_version, "scope_version": None,
           "scope_current": None, "scope_runs": None, "scope_one_run": None}
    if scope is not None:
        versions = sorted(set(_column(scope, "staging_version")), key=lambda v: (v is None, v))
        runs = sorted({r for r in _column(scope, "run_id")}, key=lambda v: (v is None, v or ""))
        row["scope_version"] = ", ".join("none" if v is None else str(v) for v in versions) or "none"
        row["scope_current"] = versions == [inputs.staging_version]
        row["scope_runs"] = ", ".join(r or "none" for r in runs)
        row["scope_one_run"] = len(runs) == 1 and runs[0] is not None
    return pa.Table.from_pylist([row], schema=STAGING_SCHEMA)


def _counts(t: pa.Table | None, n: str | None = None) -> dict[tuple[str, str], int]:
    """(institution, period) → rows of `t` (or the sum of its column `n`)."""
    if t is None or t.num_rows == 0:
        return {}
    if n is None:
        g = t.group_by(["fixmedins_code", "period"]).aggregate([([], "count_all")])
        return {(r["fixmedins_code"], r["period"]): int(r["count_all"]) for r in g.to_pylist()}
    g = t.group_by(["fixmedins_code", "period"]).aggregate([(n, "sum")])
    return {(r["fixmedins_code"], r["period"]): int(r[f"{n}_sum"] or 0) for r in g.to_pylist()}


def _judge(row: dict, whole: bool, ratio: float, min_rows: int) -> dict:
    staged, published = row["staged"], row["published"]
    row["emptied"] = staged == 0 and (published > 0 or (whole and row["input_rows"] > 0))
    row["shrunk"] = 0 < staged < ratio * published and published >= min_rows
    return row


def scope_frame(inputs: "GateInputs") -> pa.Table:
    scope = inputs.scope
    if scope is None or scope.num_rows == 0:
        return SCOPE_FRAME_SCHEMA.empty_table()
    recorded = _counts(scope, "input_rows")
    staged = _counts(inputs.suspects.select(["fixmedins_code", "period"])
                     if {"fixmedins_code", "period"} <= set(inputs.suspects.column_names) else None)
    published = _counts(inputs.published, "n")
    by_inst: dict[str, dict] = {}
    for (inst, month), n in recorded.items():
        u = by_inst.setdefault(inst, {"months": 0, "input_rows": 0, "staged": 0, "published": 0})
        u["months"] += 1
        u["input_rows"] += n
        u["staged"] += staged.get((inst, month), 0)
        u["published"] += published.get((inst, month), 0)
    months = len({m for _, m in recorded})
    total = {k: sum(u[k] for u in by_inst.values()) for k in ("input_rows", "staged", "published")}
    whole = _judge({"level": "scope", "unit_zh": f"本次筛查范围（{len(by_inst)} 家机构 × {months} 个月）",
                    "unit_en": f"the screened scope ({len(by_inst)} institutions × {months} months)", **total},
                   True, inputs.drop_ratio, inputs.drop_min_rows)
    rows = [whole]
    for inst, u in sorted(by_inst.items()):
        row = _judge({"level": "institution", "unit_zh": f"机构 {inst}（{u['months']} 个月）",
                      "unit_en": f"institution {inst} ({u['months']} months)",
                      **{k: u[k] for k in ("input_rows", "staged", "published")}},
                     False, inputs.drop_ratio, inputs.drop_min_rows)
        if whole["emptied"] or whole["shrunk"]:  # said once, for the whole scope
            row["emptied"] = row["shrunk"] = None
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=SCOPE_FRAME_SCHEMA)
