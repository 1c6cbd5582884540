"""A pass of several claims on both engines (pipelines.serve.passes): a claim refused in typing leaves the
pass, the others are answered as they would be alone, and identical copies of a line count once."""
from __future__ import annotations

import copy

import pytest

from pipelines.app.serve import claim_service
from pipelines.serve.claim import build_claim, claim_model
from pipelines.serve.replay import lake_claims
from pipelines.serve.service import Settings

MODEL = claim_model(5000)


@pytest.fixture(scope="module", params=["sqlite", "duckdb"])
def session(sample_lake, request):
    service = claim_service(sample_lake, Settings(token="t", refresh_seconds=0, background_load=False,
                                                  engine=request.param))
    warm = service._load(sample_lake)
    yield warm.spare[0]
    for s in warm.sessions:
        s.close()


@pytest.fixture(scope="module")
def bodies(sample_lake) -> list[dict]:
    """Claims with several lines, of different persons, the flagged ones first."""
    out, people = [], set()
    for b in lake_claims(sample_lake):
        if 3 <= len(b["fee_list"]) <= 60 and b["mdtrt"]["psn_no"] not in people:
            people.add(b["mdtrt"]["psn_no"])
            out.append(b)
    return out


def answers(session, bodies: list[dict]) -> list:
    found = session.check_many([build_claim(MODEL.model_validate(b)) for b in bodies])
    return [(o.error.problems if o.error else None,
             o.claim_time, None if o.suspects is None else sorted(map(str, o.suspects.to_pylist())))
            for o in found]


def flagged(session, bodies: list[dict], n: int) -> list[dict]:
    """`n` claims that have suspects when checked (in passes of 50: the claims are of different persons)."""
    out = []
    for k in range(0, len(bodies), 50):
        out += [b for b, a in zip(bodies[k:k + 50], answers(session, bodies[k:k + 50])) if a[2]]
        if len(out) >= n:
            return out[:n]
    raise AssertionError(f"fewer than {n} flagged claims")


def test_a_refused_claim_leaves_the_others_of_its_pass_as_they_are_alone(session, bodies):
    a, b, c = flagged(session, bodies, 3)
    bad = copy.deepcopy(b)
    bad["fee_list"][1]["pric"] = "x"
    alone = answers(session, [a]) + answers(session, [c])
    together = answers(session, [a, bad, c])
    assert [together[0], together[2]] == alone
    problems, _, suspects = together[1]
    assert [p.loc for p in problems] == [("fee_list", 1, "pric")] and suspects is None


def test_an_identical_copy_of_a_line_counts_once(session, bodies):
    a, b = flagged(session, bodies, 2)
    twice = copy.deepcopy(a)
    twice["fee_list"] = twice["fee_list"] + [dict(line) for line in twice["fee_list"]]
    assert answers(session, [twice, b]) == answers(session, [a, b])
    clash = copy.deepcopy(a)
    clash["fee_list"].append(dict(clash["fee_list"][0], cnt="77"))
    problems = answers(session, [clash])[0][0]
    assert [p.loc for p in problems] == [("fee_list", len(clash["fee_list"]) - 1, "feedetl_sn")]
