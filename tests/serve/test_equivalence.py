"""Same rules, same answers: replaying a drop's visits through the service flags exactly what batch screening
flags for the families decidable at claim time (pipelines.serve.claim_time), and nothing else, on both
claim-time engines (`serve.engine`: SQLite with the translated SQL, DuckDB with the batch's own).

Reading: each visit is sent as a claim (its rows as received: bronze strings, newest version of each record)
in order of admission time, while the lake holds the whole district. The service checks a claim as of its
claim time (the latest of its settlement, discharge, admission and fee times): from the lake it takes only the
person's records dated at or before that time, and never the lake's own version of the visit. So each check
sees what the lake would have held when the claim was settled, and the order or grouping of the requests
cannot change an answer. The claims travel 50 to a request through /v1/check:batch (each is still checked on
its own); a sample also goes one by one through /v1/check and must get the same answer.
"""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from pipelines.app.serve import create_app
from pipelines.catalog import load_catalog
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.serve import claim_time
from pipelines.serve.replay import lake_claims
from pipelines.serve.service import Settings

TOKEN = "equivalence-token"
DECIDABLE = sorted(f for f, d in claim_time.FAMILIES.items() if d.decidable)


def batch_findings(lake) -> tuple[set, set, str]:
    catalog = load_catalog()
    result = screen(lake, DuckDBEngine(), catalog, catalog.select(), run_id="batch", write_staging=False,
                    progress=False)
    rows = result.suspects.to_pylist()
    decidable = {(r["suspect_id"], r["rule_id"], r["mdtrt_id"], f"{r['amount']:.2f}", r["evidence"])
                 for r in rows if claim_time.decidable(r["family"])}
    others = {r["suspect_id"] for r in rows if not claim_time.decidable(r["family"])}
    return decidable, others, result.fingerprint


def replay(lake, engine: str) -> tuple[set, list[dict], list[dict]]:
    # max_wait 0: every claim is checked however long a slow machine takes (overload is test_dispatch's)
    settings = Settings(token=TOKEN, salt="test-salt", refresh_seconds=0, background_load=False, max_batch=50,
                        max_wait_seconds=0, engine=engine)
    claims = lake_claims(lake)
    found, answers = set(), []
    with TestClient(create_app(lake, settings)) as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for k in range(0, len(claims), 50):
            r = client.post("/v1/check:batch", json={"claims": claims[k:k + 50]}, headers=auth)
            assert r.status_code == 200, r.text
            for res in r.json()["results"]:
                assert "error" not in res, res
                answers.append(res)
                found |= {(v["suspect_id"], v["rule_id"], v["mdtrt_id"], v["amount"], v["evidence"])
                          for v in res["violations"]}
        flagged = [i for i, a in enumerate(answers) if a["violations"]]
        sample = flagged[:25] + list(range(0, len(claims), max(1, len(claims) // 25)))
        for i in sample:                     # one by one: the same answer as in the batch
            r = client.post("/v1/check", json=claims[i], headers=auth)
            assert r.status_code == 200, r.text
            single, batched = r.json(), answers[i]
            assert single["violations"] == batched["violations"]
            assert single["claim_time"] == batched["claim_time"]
    return found, answers, claims


def assert_equivalent(lake, engine: str) -> None:
    want, undecidable_ids, fingerprint = batch_findings(lake)
    found, answers, claims = replay(lake, engine)
    missed, extra = want - found, found - want
    assert not missed and not extra, (f"missed {len(missed)}: {sorted(missed)[:3]}\n"
                                      f"extra {len(extra)}: {sorted(extra)[:3]}")
    assert len(answers) == len(claims)
    families = {r[1].rsplit("_", 1)[0] for r in want}
    assert len(want) >= 60 and len({f for f in DECIDABLE if any(r[1].startswith(f) for r in want)}) >= 15, families
    assert not {v[0] for v in found} & undecidable_ids          # never a finding of an undecidable family
    assert {a["rule_set_fingerprint"] for a in answers} == {fingerprint}
    listed = {u["family"] for u in answers[0]["undecidable_families"]}
    assert {f for f, d in claim_time.FAMILIES.items() if not d.decidable} <= listed


ENGINES = pytest.mark.parametrize("engine", ["sqlite", "duckdb"])   # serve.engine: the claim-time evaluator


@pytest.mark.slow
@ENGINES
def test_replay_of_the_sample_drop_flags_what_batch_screening_flags(sample_lake, engine):
    assert_equivalent(sample_lake, engine)


@pytest.mark.slow
@ENGINES
def test_replay_with_refunds_and_resent_files_flags_what_batch_screening_flags(resent_lake, engine):
    assert resent_lake.read("silver/fee_list").num_rows > resent_lake.read("silver/fee_list_net").num_rows
    assert_equivalent(resent_lake, engine)
