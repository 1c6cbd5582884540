"""Case tracking: the state machine of a suspect after publication, as pure functions over events.

Every published suspect (a row of gold/suspects) is a case. Its history is an append-only log of events
(`gold/case_events`); its current state is the latest event (by `seq`), `published` when it has none.

    published ──► confirmed (机构确认, refund amount)  ──► upheld / dismissed (现场核查 属实/不属实) ──► closed
        │     └─► disputed  (机构申诉, reason+evidence) ──►                                        (追回金额)
        └──────────────────────────────────────────────► upheld / dismissed   (unanswered, checked on site)
    confirmed ──► closed (the refund was received without an on-site check)

`decide` checks a batch of decisions against the current states, in file order (a second answer to the
same item in one file sees the first), and returns the events to append and the rejected decisions with
their reason. Nothing here reads a clock, a file or a table.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
import pyarrow as pa

STATES = ("published", "confirmed", "disputed", "upheld", "dismissed", "closed")
STATUS_LABELS = {"published": "已发布", "confirmed": "确认", "disputed": "申诉", "upheld": "属实",
                 "dismissed": "不属实", "closed": "已结案"}
ANSWERS = ("confirmed", "disputed")
VERDICTS = ("upheld", "dismissed")
POSITIVE = ("confirmed", "upheld")

TRANSITIONS: dict[str, frozenset[str]] = {
    "published": frozenset({"confirmed", "disputed", "upheld", "dismissed"}),
    "confirmed": frozenset({"upheld", "dismissed", "closed"}),
    "disputed": frozenset({"upheld", "dismissed"}),
    "upheld": frozenset({"closed"}),
    "dismissed": frozenset({"closed"}),
    "closed": frozenset(),
}

MONEY = pa.decimal128(16, 2)
TS_UTC = pa.timestamp("us", tz="UTC")

EVENT_SCHEMA = pa.schema([
    ("event_id", pa.string()), ("seq", pa.int64()), ("suspect_id", pa.string()),
    ("fixmedins_code", pa.string()), ("period", pa.string()), ("rule_id", pa.string()),
    ("status", pa.string()), ("actor", pa.string()), ("decided_at", TS_UTC), ("amount", MONEY),
    ("reason", pa.string()), ("evidence_ref", pa.string()), ("source_file", pa.string()),
    ("source_line", pa.int64()), ("batch_id", pa.string()), ("recorded_at", TS_UTC),
])

REJECT_SCHEMA = pa.schema([
    ("batch_id", pa.string()), ("kind", pa.string()), ("fixmedins_code", pa.string()),
    ("source_file", pa.string()), ("source_line", pa.int64()), ("suspect_id", pa.string()),
    ("field", pa.string()), ("reason", pa.string()), ("raw", pa.string()), ("recorded_at", TS_UTC),
])


class TransitionError(ValueError):
    pass


@dataclass(frozen=True)
class CaseState:
    """What a decision is checked against: the published suspect and its latest event."""
    suspect_id: str
    fixmedins_code: str
    period: str
    rule_id: str
    amount: Decimal                      # the suspect's amount (涉及金额)
    status: str = "published"
    status_at: dt.datetime | None = None  # decided_at of the latest event (published_at when none)


@dataclass(frozen=True)
class Decision:
    suspect_id: str
    status: str
    actor: str
    decided_at: dt.datetime
    source_file: str
    source_line: int
    amount: Decimal | None = None
    reason: str | None = None
    evidence_ref: str | None = None
    institution: str | None = None       # who sent it (feedback, worksheet); None: the agency itself
    raw: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Reject:
    source_file: str
    source_line: int
    field: str
    reason: str                          # "english / 中文"
    suspect_id: str | None = None
    raw: dict = field(default_factory=dict, compare=False)


def check_transition(current: str, new: str) -> str | None:
    """None when `current → new` is allowed, else the reason."""
    if new not in STATES or new == "published":
        return f"unknown status {new!r} / 未知状态"
    if new in TRANSITIONS[current]:
        return None
    allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (case closed)"
    return (f"illegal transition {current} → {new} (allowed: {allowed}) / "
            f"状态不可从{STATUS_LABELS[current]}变为{STATUS_LABELS[new]}")


def transition(current: str, new: str) -> str:
    reason = check_transition(current, new)
    if reason:
        raise TransitionError(reason)
    return new


def event_id(d: Decision) -> str:
    """Stable id of a decision's content: the same row ingested twice has the same id."""
    key = json.dumps([d.suspect_id, d.status, d.actor, d.decided_at.isoformat(),
                      None if d.amount is None else str(d.amount), d.reason, d.evidence_ref],
                     ensure_ascii=False)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:24]


def _check_amount(d: Decision, case: CaseState) -> str | None:
    amt = d.amount
    if amt is not None and amt < 0:
        return "amount is negative / 金额不能为负"
    if amt is not None and amt > case.amount:
        return (f"amount {amt} exceeds the suspect's amount {case.amount} / "
                f"金额{amt}超过疑点涉及金额{case.amount}")
    if d.status == "confirmed" and amt is None:
        return "a confirmed item needs the refund amount (0 allowed) / 确认须填写退回金额"
    if d.status == "upheld" and amt is None:
        return "an upheld item needs the amount to recover (0 allowed) / 属实须填写应追回金额"
    if d.status == "dismissed" and amt not in (None, Decimal(0)):
        return "a dismissed item recovers nothing / 不属实不应追回金额"
    if d.status == "closed":
        if amt is None:
            return "closing needs the recovered amount / 结案须填写追回金额"
        if case.status == "dismissed" and amt != 0:
            return "a dismissed item closes with 0 recovered / 不属实结案追回金额应为0"
    return None


def _check_fields(d: Decision) -> tuple[str, str] | None:
    if d.status == "disputed":
        if not (d.reason or "").strip():
            return "reason", "a dispute needs a reason / 申诉须填写理由"
        if not (d.evidence_ref or "").strip():
            return "evidence_ref", "a dispute needs an evidence reference / 申诉须提供证据材料编号"
    if d.status in VERDICTS and not (d.actor or "").strip():
        return "actor", "a verification needs the inspectors / 核查须注明检查人员"
    return None


def decide(cases: dict[str, CaseState], decisions: list[Decision], *, batch_id: str,
           recorded_at: dt.datetime, first_seq: int, unpublished: frozenset[str] = frozenset()
           ) -> tuple[list[dict], list[Reject]]:
    """Check decisions in order against the cases; return (events to append, rejects).

    `cases` holds every published case a decision names (a missing id is unknown or unpublished);
    `unpublished` are ids known from staging but never published (a clearer reason).
    """
    state = dict(cases)
    events: list[dict] = []
    rejects: list[Reject] = []
    for d in decisions:
        def reject(fld: str, reason: str) -> None:
            rejects.append(Reject(d.source_file, d.source_line, fld, reason, d.suspect_id, d.raw))

        case = state.get(d.suspect_id)
        if case is None:
            if d.suspect_id in unpublished:
                reject("suspect_id", f"suspect {d.suspect_id} was screened but never published / 疑点未发布")
            else:
                reject("suspect_id", f"unknown suspect id {d.suspect_id} / 疑点编号不存在")
            continue
        if d.institution and d.institution != case.fixmedins_code:
            reject("suspect_id", f"suspect {d.suspect_id} belongs to another institution, not {d.institution} / "
                                 f"疑点不属于本机构")
            continue
        problem = check_transition(case.status, d.status)
        if problem:
            reject("status", problem)
            continue
        bad = _check_fields(d)
        if bad:
            reject(*bad)
            continue
        problem = _check_amount(d, case)
        if problem:
            reject("amount", problem)
            continue
        if case.status_at is not None and d.decided_at.date() < case.status_at.date():
            reject("decided_at", f"dated {d.decided_at.date()} before the previous step "
                                 f"({case.status}, {case.status_at.date()}) / 日期早于上一环节")
            continue
        events.append({
            "event_id": event_id(d), "seq": first_seq + len(events), "suspect_id": d.suspect_id,
            "fixmedins_code": case.fixmedins_code, "period": case.period, "rule_id": case.rule_id,
            "status": d.status, "actor": d.actor, "decided_at": d.decided_at, "amount": d.amount,
            "reason": d.reason, "evidence_ref": d.evidence_ref, "source_file": d.source_file,
            "source_line": d.source_line, "batch_id": batch_id, "recorded_at": recorded_at,
        })
        state[d.suspect_id] = CaseState(case.suspect_id, case.fixmedins_code, case.period, case.rule_id,
                                        case.amount, d.status, d.decided_at)
    return events, rejects


def events_table(events: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(events, schema=EVENT_SCHEMA)


def rejects_table(rejects: list[Reject], *, kind: str, institution: str | None, batch_id: str,
                  recorded_at: dt.datetime) -> pa.Table:
    rows = [{"batch_id": batch_id, "kind": kind, "fixmedins_code": institution, "source_file": r.source_file,
             "source_line": r.source_line, "suspect_id": r.suspect_id, "field": r.field, "reason": r.reason,
             "raw": json.dumps(r.raw, ensure_ascii=False, default=str), "recorded_at": recorded_at}
            for r in rejects]
    return pa.Table.from_pylist(rows, schema=REJECT_SCHEMA)


# ------------------------------------------------------------------ derived state

def _to_decimal(v) -> Decimal:
    return Decimal(str(v)) if v is not None and not pd.isna(v) else Decimal(0)


def case_states(suspects: pd.DataFrame, events: pd.DataFrame) -> dict[str, CaseState]:
    """Current CaseState of each suspect (suspects: suspect_id, fixmedins_code, period, rule_id, amount,
    published_at; events: the log rows of those suspects)."""
    cur = current_cases(suspects, events)
    out = {}
    for r in cur.itertuples(index=False):
        at = r.status_at if not pd.isna(r.status_at) else None
        out[r.suspect_id] = CaseState(r.suspect_id, r.fixmedins_code, r.period, r.rule_id,
                                      _to_decimal(r.amount), r.status,
                                      pd.Timestamp(at).to_pydatetime() if at is not None else None)
    return out


def _lookup(keys: pd.Series, values: pd.Series) -> pd.Series:
    """values[key] for each key, None where absent (object dtype: Decimals and timestamps kept as they are)."""
    d = values.to_dict()
    return pd.Series([d.get(k) for k in keys], index=keys.index, dtype=object)


def current_cases(suspects: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per suspect with its current state (latest event by seq) and the facts of each step.

    `outcome`: positive (confirmed or upheld: the latest of answer/verdict), negative (dismissed),
    pending (disputed, not yet verified), unanswered (published only).
    """
    s = suspects.copy()
    if "published_at" not in s.columns:
        s["published_at"] = pd.NaT
    if events is None or events.empty:
        ev = pd.DataFrame(columns=EVENT_SCHEMA.names)
    else:
        ev = events[events["suspect_id"].isin(s["suspect_id"])].sort_values("seq")
    last = ev.groupby("suspect_id").tail(1).set_index("suspect_id")
    s["status"] = _lookup(s["suspect_id"], last["status"]).fillna("published")
    at = _lookup(s["suspect_id"], last["decided_at"])
    s["status_at"] = [a if a is not None and not pd.isna(a) else p for a, p in zip(at, s["published_at"])]
    prev = {k: (x.iloc[-2] if len(x) > 1 else "published") for k, x in ev.groupby("suspect_id")["status"]}
    s["prior_status"] = [prev.get(k) for k in s["suspect_id"]]

    def latest(statuses) -> pd.DataFrame:
        return ev[ev["status"].isin(statuses)].groupby("suspect_id").tail(1).set_index("suspect_id")

    ans, ver, clo = latest(ANSWERS), latest(VERDICTS), latest(["closed"])
    s["answer"] = _lookup(s["suspect_id"], ans["status"])
    s["answer_amount"] = _lookup(s["suspect_id"], ans["amount"])
    s["answered_at"] = _lookup(s["suspect_id"], ans["decided_at"])
    s["answer_reason"] = _lookup(s["suspect_id"], ans["reason"])
    s["answer_evidence"] = _lookup(s["suspect_id"], ans["evidence_ref"])
    s["verdict"] = _lookup(s["suspect_id"], ver["status"])
    s["verdict_amount"] = _lookup(s["suspect_id"], ver["amount"])
    s["inspectors"] = _lookup(s["suspect_id"], ver["actor"])
    s["verified_at"] = _lookup(s["suspect_id"], ver["decided_at"])
    s["recovered_amount"] = _lookup(s["suspect_id"], clo["amount"])
    s["closed_at"] = _lookup(s["suspect_id"], clo["decided_at"])
    final = s["verdict"].where(s["verdict"].notna(), s["answer"])
    s["outcome"] = final.map({"confirmed": "positive", "upheld": "positive", "dismissed": "negative",
                              "disputed": "pending"}).fillna("unanswered")
    return s


def history(suspect: dict, events: pd.DataFrame) -> list[dict]:
    """The full history of one case: the publication, then its events in order."""
    first = {"status": "published", "decided_at": suspect.get("published_at"), "actor": "publisher",
             "amount": suspect.get("amount"), "reason": None, "evidence_ref": None}
    ev = events[events["suspect_id"] == suspect["suspect_id"]].sort_values("seq")
    return [first, *ev.to_dict("records")]
