"""The state machine: legal paths, illegal transitions rejected with a reason, amounts and dates checked."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pytest

from pipelines.workflow import cases as C

UTC = dt.timezone.utc
T0 = dt.datetime(2024, 1, 15, tzinfo=UTC)


def case(status="published", amount="100.00", inst="H1", at=T0):
    return C.CaseState("S1", inst, "2023-03", "r1", Decimal(amount), status, at)


def dec(status, amount=None, day=20, inst="H1", reason=None, evidence=None, actor="A", line=2):
    return C.Decision("S1", status, actor, dt.datetime(2024, 1, day, tzinfo=UTC), "f.csv", line,
                      amount=None if amount is None else Decimal(amount), reason=reason, evidence_ref=evidence,
                      institution=inst)


def run(state, *decisions):
    return C.decide({"S1": state}, list(decisions), batch_id="b", recorded_at=T0, first_seq=1)


@pytest.mark.parametrize("path", [
    ["confirmed", "closed"],
    ["confirmed", "upheld", "closed"],
    ["disputed", "upheld", "closed"],
    ["disputed", "dismissed", "closed"],
    ["upheld", "closed"],            # unanswered, checked on site
])
def test_legal_paths(path):
    state = "published"
    for step in path:
        state = C.transition(state, step)
    assert state == path[-1]


@pytest.mark.parametrize("current,new", [
    ("published", "closed"),      # nothing closes before an answer or a check
    ("confirmed", "disputed"),    # an answer is not changed afterwards
    ("confirmed", "confirmed"),   # answered twice
    ("disputed", "closed"),       # a dispute must be verified on site first
    ("upheld", "dismissed"),      # a verdict is final
    ("closed", "upheld"),         # a closed case stays closed
    ("published", "published"),
])
def test_illegal_transitions_raise_with_reason(current, new):
    assert C.check_transition(current, new)
    with pytest.raises(C.TransitionError, match="→|unknown status"):
        C.transition(current, new)


def test_decide_rejects_illegal_transition_and_keeps_going():
    events, rejects = run(case(), dec("confirmed", "50.00"), dec("disputed", reason="r", evidence="e", line=3),
                          dec("closed", "50.00", day=25, inst=None, line=4))
    assert [e["status"] for e in events] == ["confirmed", "closed"]
    assert [e["seq"] for e in events] == [1, 2]
    assert len(rejects) == 1 and rejects[0].source_line == 3 and rejects[0].field == "status"
    assert "confirmed → disputed" in rejects[0].reason


def test_amount_rules():
    _, rej = run(case(), dec("confirmed", "100.01"))
    assert rej[0].field == "amount" and "exceeds" in rej[0].reason
    _, rej = run(case(), dec("confirmed"))
    assert rej[0].field == "amount"
    ev, rej = run(case(), dec("confirmed", "100.00"))
    assert ev and not rej
    _, rej = run(case("upheld"), dec("closed", "-1.00", inst=None))
    assert "negative" in rej[0].reason
    _, rej = run(case("dismissed"), dec("closed", "5.00", inst=None))
    assert rej and "0" in rej[0].reason


def test_dispute_needs_reason_and_evidence():
    _, rej = run(case(), dec("disputed", evidence="E1"))
    assert rej[0].field == "reason"
    _, rej = run(case(), dec("disputed", reason="医嘱齐全"))
    assert rej[0].field == "evidence_ref"


def test_other_institution_and_unknown():
    _, rej = run(case(inst="H2"), dec("confirmed", "1.00", inst="H1"))
    assert "another institution" in rej[0].reason
    events, rej = C.decide({}, [dec("confirmed", "1.00")], batch_id="b", recorded_at=T0, first_seq=1,
                           unpublished=frozenset({"S1"}))
    assert not events and "never published" in rej[0].reason


def test_decision_dated_before_previous_step_rejected():
    _, rej = run(case(at=dt.datetime(2024, 2, 1, tzinfo=UTC)), dec("confirmed", "1.00", day=20))
    assert rej[0].field == "decided_at"


def test_current_cases_latest_event_and_outcome():
    suspects = pd.DataFrame({"suspect_id": ["A", "B", "C", "D"], "fixmedins_code": "H1", "period": "2023-01",
                             "rule_id": "r", "amount": [Decimal("10")] * 4, "published_at": T0})
    ev = pd.DataFrame([
        {"suspect_id": "A", "seq": 1, "status": "confirmed", "amount": Decimal("10"), "decided_at": T0, "actor": "H1"},
        {"suspect_id": "A", "seq": 4, "status": "closed", "amount": Decimal("10"), "decided_at": T0, "actor": "x"},
        {"suspect_id": "B", "seq": 2, "status": "disputed", "amount": None, "decided_at": T0, "actor": "H1"},
        {"suspect_id": "C", "seq": 3, "status": "disputed", "amount": None, "decided_at": T0, "actor": "H1"},
        {"suspect_id": "C", "seq": 5, "status": "dismissed", "amount": None, "decided_at": T0, "actor": "张三"},
    ]).reindex(columns=C.EVENT_SCHEMA.names)
    cur = C.current_cases(suspects, ev).set_index("suspect_id")
    assert cur["status"].to_dict() == {"A": "closed", "B": "disputed", "C": "dismissed", "D": "published"}
    assert cur["outcome"].to_dict() == {"A": "positive", "B": "pending", "C": "negative", "D": "unanswered"}
    assert cur.loc["A", "recovered_amount"] == Decimal("10") and cur.loc["C", "inspectors"] == "张三"
    assert cur.loc["C", "prior_status"] == "disputed"
