"""The dispatcher under more claims than it can check: a claim that waited past `max_wait` is answered
Overloaded without being checked, a withdrawn claim is skipped, and the workers keep serving. The passes are a
stand-in that takes a fixed time, so that what is checked, and what is not, can be seen."""
from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import pytest

from pipelines.serve import dispatch
from pipelines.serve.claim import Claim
from pipelines.serve.dispatch import Dispatcher, Overloaded

PASS_SECONDS = 0.4


class SlowSession:
    """A pass that takes PASS_SECONDS and records the claims it was given."""
    seen: list[str] = []
    gate: threading.Event | None = None

    def __init__(self, warm, program):
        pass

    def check_many(self, claims):
        if SlowSession.gate is not None:
            SlowSession.gate.wait(5)
        time.sleep(PASS_SECONDS)
        SlowSession.seen.extend(c.mdtrt_id for c in claims)
        return [SimpleNamespace(mdtrt_id=c.mdtrt_id) for c in claims]


class Holder:
    def __init__(self):
        self.warm = SimpleNamespace(sessions=[], spare=[])

    def acquire(self):
        return self.warm

    def release(self, warm):
        pass


@pytest.fixture
def dispatcher(monkeypatch):
    monkeypatch.setitem(dispatch.ENGINES, "slow", SlowSession)
    SlowSession.seen, SlowSession.gate = [], None
    made = []

    def make(max_wait):
        d = Dispatcher(Holder(), program=None, workers=1, max_pass=1, max_wait=max_wait, engine="slow")
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop(timeout=5)


def claim(i: int) -> Claim:
    return Claim(mdtrt_id=f"v{i}", psn_no=f"p{i}", fixmedins_code="H1")


def test_claims_that_waited_too_long_are_answered_overloaded_and_not_checked(dispatcher):
    d = dispatcher(max_wait=PASS_SECONDS / 4)
    futures = d.submit([claim(1), claim(2), claim(3)])      # one pass at a time, one claim each
    assert futures[0].result(timeout=5).mdtrt_id == "v1"
    for f in futures[1:]:
        with pytest.raises(Overloaded, match="waited over"):
            f.result(timeout=5)
    assert SlowSession.seen == ["v1"]
    # and the worker goes on serving what comes next
    assert d.submit([claim(4)])[0].result(timeout=5).mdtrt_id == "v4"
    assert SlowSession.seen == ["v1", "v4"]


def test_without_a_limit_every_claim_waits_its_turn(dispatcher):
    d = dispatcher(max_wait=0)
    futures = d.submit([claim(1), claim(2), claim(3)])
    assert [f.result(timeout=10).mdtrt_id for f in futures] == ["v1", "v2", "v3"]
    assert SlowSession.seen == ["v1", "v2", "v3"]


def test_a_withdrawn_claim_is_not_checked(dispatcher):
    d = dispatcher(max_wait=None)
    SlowSession.gate = threading.Event()
    first = d.submit([claim(1)])[0]
    time.sleep(0.1)                                         # the worker holds v1 (waiting at the gate)
    second, third = d.submit([claim(2), claim(3)])
    assert second.cancel()                                  # its caller gave up before a pass took it
    assert not first.cancel()                               # already in a pass: cannot be withdrawn
    SlowSession.gate.set()
    assert first.result(timeout=5).mdtrt_id == "v1" and third.result(timeout=5).mdtrt_id == "v3"
    assert SlowSession.seen == ["v1", "v3"]


def test_a_request_that_already_waited_too_long_is_refused_at_once(dispatcher):
    """Time spent before the queue (the HTTP server's threads) counts: the wait runs from the request's arrival."""
    d = dispatcher(max_wait=PASS_SECONDS / 4)
    with pytest.raises(Overloaded):
        d.submit([claim(1)], since=time.monotonic() - PASS_SECONDS)
    assert d.submit([claim(2)], since=time.monotonic())[0].result(timeout=5).mdtrt_id == "v2"
    assert SlowSession.seen == ["v2"]


class FailingSession(SlowSession):
    """A pass that fails whenever it holds the claim `bad` (as a claim DuckDB cannot type would)."""

    def check_many(self, claims):
        if any(c.mdtrt_id == "bad" for c in claims):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return super().check_many(claims)


def test_a_claim_that_fails_its_pass_fails_alone(monkeypatch):
    """The pass is re-run claim by claim: the other callers' claims that shared it are answered (they were
    all answered with the bad claim's error)."""
    monkeypatch.setitem(dispatch.ENGINES, "failing", FailingSession)
    FailingSession.seen, FailingSession.gate = [], threading.Event()
    d = Dispatcher(Holder(), program=None, workers=1, max_pass=8, max_wait=0, engine="failing")
    try:
        futures = d.submit([claim(1), Claim(mdtrt_id="bad", psn_no="pb", fixmedins_code="H1"), claim(2)])
        FailingSession.gate.set()          # all three queued before the first pass is taken
        assert futures[0].result(timeout=10).mdtrt_id == "v1"
        assert futures[2].result(timeout=10).mdtrt_id == "v2"
        with pytest.raises(UnicodeEncodeError):
            futures[1].result(timeout=10)
        assert d.submit([claim(3)])[0].result(timeout=10).mdtrt_id == "v3"
    finally:
        d.stop(timeout=5)


def test_claims_of_one_person_wait_for_each_other_not_for_capacity(dispatcher):
    """One pass checks a person once, so four visits of one person take four passes; each waits for its
    predecessor, which is not overload: none is answered Overloaded though the last is checked after more
    than `max_wait` (it was, with the wait counted from its request's arrival)."""
    d = dispatcher(max_wait=PASS_SECONDS * 1.5)
    d.max_pass = 4
    visits = [Claim(mdtrt_id=f"v{i}", psn_no="p", fixmedins_code="H1") for i in range(4)]
    futures = d.submit(visits)
    assert [f.result(timeout=10).mdtrt_id for f in futures] == ["v0", "v1", "v2", "v3"]
    assert SlowSession.seen == ["v0", "v1", "v2", "v3"]
