"""The workflow's tables in the lake, and the one place the workflow reads or writes them.

    gold/suspects          the published lists (read only)
    gold/case_events       append-only log of case decisions (cases.EVENT_SCHEMA)
    gold/case_rejects      every rejected row of a feedback / worksheet / recovery file, with its reason
    gold/inspection_draws  append-only record of each 双随机 draw (one row per target)
    silver/fixmedins       the institutions (read only)
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import GOLD_SUSPECTS, STAGING_SUSPECTS
from pipelines.storage import Lake
from pipelines.storage.lock import holds_lease
from pipelines.workflow import cases as C

SUSPECTS, STAGING = GOLD_SUSPECTS, STAGING_SUSPECTS
EVENTS, REJECTS, DRAWS = "gold/case_events", "gold/case_rejects", "gold/inspection_draws"
FIXMEDINS = "silver/fixmedins"
CASE_FIELDS = ["suspect_id", "rule_id", "family", "category", "severity", "fixmedins_code", "period", "psn_no",
               "mdtrt_id", "setl_id", "feedetl_sn", "hilist_code", "event_time", "amount", "evidence",
               "published_at"]

DRAW_SCHEMA = pa.schema([
    ("draw_id", pa.string()), ("period", pa.string()), ("seed", pa.int64()), ("fixmedins_code", pa.string()),
    ("fixmedins_name", pa.string()), ("hosp_lv", pa.string()), ("stratum", pa.string()),
    ("inspector_ids", pa.string()), ("inspector_names", pa.string()), ("drawn_at", C.TS_UTC),
])


def period_months(period: str) -> list[str]:
    """`2023` → the twelve `2023-MM`; `2023-04` → itself."""
    if len(period) == 4:
        return [f"{period}-{m:02d}" for m in range(1, 13)]
    return [period]


def previous_period(period: str) -> str:
    if len(period) == 4:
        return str(int(period) - 1)
    y, m = int(period[:4]), int(period[5:7])
    return f"{y - 1}-12" if m == 1 else f"{y}-{m - 1:02d}"


def _filter(ids=None, institution=None, period=None, institutions=None):
    f = None
    for cond in (
        pc.field("suspect_id").isin(sorted(ids)) if ids is not None else None,
        (pc.field("fixmedins_code") == institution) if institution else None,
        pc.field("fixmedins_code").isin(sorted(institutions)) if institutions is not None else None,
        pc.field("period").isin(period_months(period)) if period else None,
    ):
        if cond is not None:
            f = cond if f is None else (f & cond)
    return f


def read_suspects(lake: Lake, *, ids=None, institution=None, period=None, institutions=None,
                  columns=None) -> pd.DataFrame:
    """Published suspects (gold/suspects) as pandas, amounts as Decimal."""
    columns = columns or CASE_FIELDS
    if not lake.exists(SUSPECTS):
        return pd.DataFrame(columns=columns)
    t = lake.read(SUSPECTS, columns=columns, filter=_filter(ids, institution, period, institutions))
    return t.to_pandas()


def staging_ids(lake: Lake, ids) -> frozenset[str]:
    if not lake.exists(STAGING) or not ids:
        return frozenset()
    t = lake.read(STAGING, columns=["suspect_id"], filter=pc.field("suspect_id").isin(sorted(ids)))
    return frozenset(t.column("suspect_id").to_pylist())


def read_events(lake: Lake, *, ids=None, institution=None, period=None, institutions=None) -> pd.DataFrame:
    if not lake.exists(EVENTS):
        return C.EVENT_SCHEMA.empty_table().to_pandas()
    return lake.read(EVENTS, filter=_filter(ids, institution, period, institutions)).to_pandas()


def read_rejects(lake: Lake, batch_id: str | None = None) -> pd.DataFrame:
    if not lake.exists(REJECTS):
        return C.REJECT_SCHEMA.empty_table().to_pandas()
    return lake.read(REJECTS, filter=(pc.field("batch_id") == batch_id) if batch_id else None).to_pandas()


def next_seq(lake: Lake) -> int:
    if not lake.exists(EVENTS):
        return 1
    seqs = lake.read(EVENTS, columns=["seq"]).column("seq")
    top = pc.max(seqs).as_py() if len(seqs) else None
    return (top or 0) + 1


def read_cases(lake: Lake, *, period=None, institution=None, institutions=None) -> pd.DataFrame:
    """Current state of every published case of a period (cases.current_cases)."""
    s = read_suspects(lake, period=period, institution=institution, institutions=institutions)
    ev = read_events(lake, period=period, institution=institution, institutions=institutions)
    return C.current_cases(s, ev)


def read_fixmedins(lake: Lake) -> pd.DataFrame:
    if not lake.exists(FIXMEDINS):
        return pd.DataFrame(columns=["fixmedins_code", "fixmedins_name", "hosp_lv"])
    t = lake.read(FIXMEDINS)
    cols = [c for c in ("fixmedins_code", "fixmedins_name", "hosp_lv", "fixmedins_type") if c in t.column_names]
    return t.select(cols).to_pandas()


def read_draws(lake: Lake, period: str) -> pd.DataFrame:
    """The latest draw of a period (every draw is kept; a re-draw shows in the record)."""
    if not lake.exists(DRAWS):
        return DRAW_SCHEMA.empty_table().to_pandas()
    d = lake.read(DRAWS, filter=pc.field("period") == period).to_pandas()
    if d.empty:
        return d
    last = d.sort_values("drawn_at")["draw_id"].iloc[-1]
    return d[d["draw_id"] == last].reset_index(drop=True)


@holds_lease("fundguard sample")
def append_draw(lake: Lake, rows: pa.Table) -> int:
    return lake.append(DRAWS, rows.cast(DRAW_SCHEMA))


@dataclass
class IngestResult:
    kind: str
    file: str
    institution: str | None
    batch_id: str
    rows: int
    loaded: int
    rejected: int
    not_answered: int = 0                     # items listed with no answer / no conclusion yet
    events_version: int | None = None
    rejects: list[C.Reject] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return self.rows == self.loaded + self.rejected + self.not_answered

    def summary(self) -> str:
        lines = [f"{self.kind} {self.file}: rows 行 {self.rows} = loaded 入库 {self.loaded} + rejected 拒收 "
                 f"{self.rejected} + not answered 未填写 {self.not_answered}  (batch {self.batch_id})"]
        for r in sorted(self.rejects, key=lambda r: r.source_line):
            lines.append(f"  line {r.source_line:>5}  {r.field:<14} {r.reason}")
        return "\n".join(lines)


@holds_lease("fundguard workflow")
def record_decisions(lake: Lake, decisions: list[C.Decision], parse_rejects: list[C.Reject], *, kind: str,
                     file: str, institution: str | None, batch_id: str, recorded_at: dt.datetime,
                     not_answered: int = 0) -> IngestResult:
    """Check decisions against the lake's cases, append the events and every rejection; one batch."""
    ids = {d.suspect_id for d in decisions}
    states = {}
    if ids:
        states = C.case_states(read_suspects(lake, ids=ids), read_events(lake, ids=ids))
    events, rejects = C.decide(states, decisions, batch_id=batch_id, recorded_at=recorded_at,
                               first_seq=next_seq(lake), unpublished=staging_ids(lake, ids - set(states)))
    all_rejects = sorted([*parse_rejects, *rejects], key=lambda r: r.source_line)
    version = None
    if events:
        version = lake.append(EVENTS, C.events_table(events))
    if all_rejects:
        lake.append(REJECTS, C.rejects_table(all_rejects, kind=kind, institution=institution, batch_id=batch_id,
                                             recorded_at=recorded_at))
    return IngestResult(kind, file, institution, batch_id, rows=len(decisions) + len(parse_rejects) + not_answered,
                        loaded=len(events), rejected=len(all_rejects), not_answered=not_answered,
                        events_version=version, rejects=all_rejects, events=events)
