"""The service's HTTP contract: answers, bad requests (each a clear 4xx naming the field, the service serving
on), the token, limits, request ids, logs without personal data, readiness and the refresh on new versions."""
from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time

import pytest
from fastapi.testclient import TestClient

from pipelines.app.serve import create_app
from pipelines.catalog import load_catalog
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.serve import claim_time
from pipelines.serve.replay import lake_claims
from pipelines.serve.service import Settings

from .conftest import AUTH, TOKEN
from .drops import resend_and_refund_drop


@pytest.fixture(scope="module")
def claims(sample_lake):
    return lake_claims(sample_lake)


@pytest.fixture(scope="module")
def suspect_visits(sample_lake) -> dict[str, set]:
    """family -> the visits batch screening flags (to pick test claims; the equivalence test compares)."""
    catalog = load_catalog()
    found = screen(sample_lake, DuckDBEngine(), catalog, catalog.select(), run_id="t", write_staging=False,
                   progress=False).suspects
    out: dict[str, set] = {}
    for r in found.select(["family", "mdtrt_id"]).to_pylist():
        out.setdefault(r["family"], set()).add(r["mdtrt_id"])
    return out


@pytest.fixture(scope="module")
def flagged(claims, suspect_visits):
    def pick(family: str) -> dict:
        """A claim (of at most 40 lines) of a visit batch screening flags for `family`."""
        return next(c for c in claims if c["mdtrt"]["mdtrt_id"] in suspect_visits[family]
                    and len(c["fee_list"]) <= 40)
    return pick


def fields_of(response) -> set[str]:
    return {d["field"] for d in response.json()["detail"]}


def assert_still_serving(client, claim):
    r = client.post("/v1/check", json=claim, headers=AUTH)
    assert r.status_code == 200, r.text


def test_a_flagged_claim_gets_the_violation_in_the_national_shape(client, flagged):
    claim = flagged("gender_restricted")
    r = client.post("/v1/check", json=claim, headers={**AUTH, "X-Request-ID": "req-0001"})
    assert r.status_code == 200
    body = r.json()
    assert body["request_id"] == "req-0001" and r.headers["X-Request-ID"] == "req-0001"
    v = next(v for v in body["violations"] if v["family"] == "gender_restricted")
    assert {"rule_id", "family", "category", "severity", "feedetl_sn", "hilist_code", "amount", "evidence",
            "suspect_id"} <= set(v)
    assert v["feedetl_sn"] in {line["feedetl_sn"] for line in claim["fee_list"]}
    assert v["category"] == "超医保支付范围" and float(v["amount"]) > 0 and "限" in v["evidence"]
    assert body["kb_release"].startswith("kb_hilist@") and len(body["rule_set_fingerprint"]) == 16
    assert {u["family"] for u in body["undecidable_families"]} >= {"daily_cap", "inventory_shortfall"}


def test_the_submitted_visit_replaces_the_lakes_version(client, flagged):
    """Remove the flagged line from the claim: the lake still holds it, yet the answer no longer flags it."""
    claim = flagged("price_above_cap")
    r = client.post("/v1/check", json=claim, headers=AUTH).json()
    sn = next(v["feedetl_sn"] for v in r["violations"] if v["family"] == "price_above_cap")
    fewer = dict(claim, fee_list=[f for f in claim["fee_list"] if f["feedetl_sn"] != sn])
    again = client.post("/v1/check", json=fewer, headers=AUTH).json()
    assert sn not in {v["feedetl_sn"] for v in again["violations"]}


def test_a_claim_with_its_person_sent_uses_it(client, flagged):
    """The sent person (not the lake's) decides: one gender flags the gender-restricted line, the other not."""
    claim = flagged("gender_restricted")
    hits = {}
    for gend in ("1", "2"):
        psn = {"psn_no": claim["mdtrt"]["psn_no"], "psn_name": "张三", "certno": "110101199001011234",
               "gend": gend, "brdy": "1990-01-01"}
        r = client.post("/v1/check", json=dict(claim, psn=psn), headers=AUTH)
        assert r.status_code == 200, r.text
        hits[gend] = sum(v["family"] == "gender_restricted" for v in r.json()["violations"])
    assert sorted(hits.values())[0] == 0 and sorted(hits.values())[1] >= 1


def everywhere(claim: dict, key: str, value: str) -> None:
    """Set `key` on the visit and on every record of the claim that carries it."""
    for part in ("mdtrt", "setl"):
        if key in (claim.get(part) or {}):
            claim[part][key] = value
    for line in claim["fee_list"]:
        line[key] = value


@pytest.mark.parametrize("mutate, status, field", [
    (lambda c: c["fee_list"][0].pop("hilist_code"), 422, "fee_list.0.hilist_code"),        # missing field
    (lambda c: c["mdtrt"].pop("begntime"), 422, "mdtrt.begntime"),
    (lambda c: c.pop("mdtrt"), 422, "mdtrt"),
    (lambda c: c["fee_list"][0].update(cnt={"n": 1}), 422, "fee_list.0.cnt"),               # wrong types
    (lambda c: c.update(fee_list="lines"), 422, "fee_list"),
    (lambda c: c["fee_list"][0].update(cnt="three"), 422, "fee_list.0.cnt"),               # not a number
    (lambda c: c["fee_list"][0].update(fee_ocur_time="yesterday"), 422, "fee_list.0.fee_ocur_time"),
    (lambda c: c["fee_list"][0].update(med_chrgitm_type="99"), 422, "fee_list.0.med_chrgitm_type"),  # unknown code
    (lambda c: c["fee_list"][0].update(feedetl_no="1"), 422, "fee_list.0.feedetl_no"),     # unknown field
    (lambda c: everywhere(c, "fixmedins_code", "H_NOWHERE"), 422, "mdtrt.fixmedins_code"),  # unknown institution
    (lambda c: everywhere(c, "psn_no", "NOBODY"), 422, "psn"),                             # unknown person
    (lambda c: c["fee_list"][0].update(mdtrt_id="OTHER"), 422, "fee_list.0.mdtrt_id"),     # not the visit's line
    (lambda c: c["fee_list"].append(dict(c["fee_list"][0], cnt="77")), 422, "fee_list.LAST.feedetl_sn"),  # same key
])
def test_bad_claims_get_a_4xx_naming_the_field_and_the_service_keeps_serving(client, claims, mutate, status, field):
    good = next(c for c in claims if c["fee_list"] and 1 < len(c["fee_list"]) < 30)
    bad = copy.deepcopy(good)
    mutate(bad)
    r = client.post("/v1/check", json=bad, headers=AUTH)
    assert r.status_code == status, r.text
    want = field.replace("LAST", str(len(bad["fee_list"]) - 1)) if isinstance(bad.get("fee_list"), list) else field
    assert want in fields_of(r), r.json()
    assert r.json()["request_id"]
    assert_still_serving(client, good)


def test_not_json_and_wrong_token_and_oversized_bodies(client, claims):
    good = next(c for c in claims if c["fee_list"])
    r = client.post("/v1/check", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        r = client.post("/v1/check", json=good, headers=headers)
        assert r.status_code == 401 and "Authorization" in fields_of(r)
        assert r.headers["WWW-Authenticate"] == "Bearer"
    assert client.get("/v1/rules").status_code == 401
    huge = dict(good, fee_list=[dict(good["fee_list"][0], feedetl_sn=str(i)) for i in range(400)])
    r = client.post("/v1/check", json=huge, headers=AUTH)
    assert r.status_code == 413 and "request_id" in r.json()
    many = dict(good, fee_list=[dict(good["fee_list"][0], feedetl_sn=str(i)) for i in range(41)])
    r = client.post("/v1/check", json=many, headers=AUTH)
    assert r.status_code == 422 and "fee_list" in fields_of(r)
    r = client.post("/v1/check:batch", json={"claims": [good] * 4}, headers=AUTH)
    assert r.status_code == 422 and "claims" in fields_of(r)
    assert_still_serving(client, good)


def test_a_batch_answers_each_claim_on_its_own(client, claims):
    good = [c for c in claims if c["fee_list"]][:2]
    bad = copy.deepcopy(good[0])
    bad["fee_list"][0]["cnt"] = "x"
    r = client.post("/v1/check:batch", json={"claims": [good[0], bad, good[1]]}, headers=AUTH)
    assert r.status_code == 200
    res = r.json()["results"]
    assert "violations" in res[0] and "violations" in res[2]
    assert [e["field"] for e in res[1]["error"]] == ["fee_list.0.cnt"]


def test_logs_carry_request_ids_and_no_personal_data(client, flagged, caplog):
    claim = flagged("after_death")
    caplog.set_level(logging.INFO, logger="fundguard.serve")
    caplog.clear()
    client.post("/v1/check", json=claim, headers={**AUTH, "X-Request-ID": "trace-42"})
    bad = copy.deepcopy(claim)
    bad["fee_list"][0]["cnt"] = "secret-value"
    client.post("/v1/check", json=bad, headers=AUTH)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fundguard.serve"]
    access = [x for x in lines if x["event"] == "access"]
    assert len(access) == 2 and access[0]["request_id"] == "trace-42" and access[0]["status"] == 200
    assert access[0]["violations"] >= 1 and len(access[0]["psn_hash"][0]) == 16
    assert access[0]["pass_claims"] == 1                    # the claims checked in its pass: it came alone
    assert access[1]["status"] == 422 and access[1]["bad_fields"] == ["fee_list.0.cnt"]
    text = caplog.text
    assert claim["mdtrt"]["psn_no"] not in text and "secret-value" not in text


def test_health_readiness_rules_and_openapi(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] and ready.json()["rows"]["fee_list"] > 1000
    held = ready.json()["history_bytes"]
    assert set(held) == {"fee_list", "mdtrt", "diag", "psn"}
    assert 20 * ready.json()["rows"]["fee_list"] < held["fee_list"] < 400 * ready.json()["rows"]["fee_list"]
    rules = client.get("/v1/rules", headers=AUTH).json()
    fams = {f["family"]: f for f in rules["families"]}
    assert set(fams) == set(claim_time.FAMILIES) and not fams["inventory_shortfall"]["decidable"]
    checked = {r["family"] for r in rules["rules"] if r["checked_at_claim_time"]}
    assert checked == {f for f, d in claim_time.FAMILIES.items() if d.decidable} & {r["family"] for r in rules["rules"]}
    schema = client.get("/openapi.json").json()
    assert {"/v1/check", "/v1/check:batch", "/v1/rules", "/healthz", "/readyz"} <= set(schema["paths"])


def test_no_token_refuses_to_start(sample_lake):
    with pytest.raises(ValueError, match="token"):
        create_app(sample_lake, Settings(token=None))
    app = create_app(sample_lake, Settings(token=None, insecure_local=True, background_load=False, refresh_seconds=0))
    with TestClient(app) as c:
        assert c.get("/v1/rules").status_code == 200


def test_not_ready_until_loaded_and_refreshed_on_new_versions(sample_drop, tmp_path):
    from pipelines import config
    from pipelines.app.load import load_drop
    from pipelines.storage import Lake

    lake = Lake(tmp_path / "lake")
    load_drop(sample_drop, lake, config.load(), progress=False)
    app = create_app(lake, Settings(token=TOKEN, background_load=False, refresh_seconds=0))
    service = app.state.service
    claim = lake_claims(lake, limit=1)[0]
    with TestClient(app) as c:
        before = c.post("/v1/check", json=claim, headers=AUTH).json()["input_versions"]
        resend_and_refund_drop(sample_drop, tmp_path / "second")
        load_drop(tmp_path / "second", lake, config.load(), progress=False)
        assert service.holder.refresh_if_changed()
        after = c.post("/v1/check", json=claim, headers=AUTH).json()["input_versions"]
        assert after["silver/fee_list_net"] > before["silver/fee_list_net"]
        assert not service.holder.refresh_if_changed()
    cold = create_app(lake, Settings(token=TOKEN, background_load=True, refresh_seconds=0))
    cold.state.service.holder.current = None
    with TestClient(cold) as c:
        cold.state.service.holder.current = None          # as if still loading
        assert c.get("/readyz").status_code == 503
        assert c.post("/v1/check", json=claim, headers=AUTH).status_code == 503


def test_claims_not_checked_in_time_get_503_with_retry_after_and_are_withdrawn(client, claims, monkeypatch, caplog):
    """More claims than the service can check: 503 + Retry-After, never a 500 or an unbounded wait; the
    request's claims still waiting are withdrawn; the service keeps serving."""
    from concurrent.futures import Future

    from pipelines.serve.dispatch import Overloaded

    service = client.app.state.service
    handed: list[Future] = []
    arrivals: list[float] = []

    def shed(batch, since=None):        # the first claim waited too long; the others are still waiting
        arrivals.append(since)
        futures = [Future() for _ in batch]
        futures[0].set_exception(Overloaded("not checked: waited over 2 s for a pass"))
        handed.extend(futures)
        return futures
    monkeypatch.setattr(service.dispatcher, "submit", shed)
    caplog.set_level(logging.INFO, logger="fundguard.serve")
    caplog.clear()
    r = client.post("/v1/check:batch", json={"claims": claims[:3]}, headers=AUTH)
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    access = [x for x in (json.loads(m.getMessage()) for m in caplog.records if m.name == "fundguard.serve")
              if x["event"] == "access"]
    assert [(x["status"], x.get("overloaded")) for x in access] == [(503, True)]     # operators can count them
    assert "waited over" in r.json()["detail"] and r.json()["request_id"]
    assert all(f.cancelled() for f in handed[1:])
    assert arrivals[0] is not None and arrivals[0] <= time.monotonic()   # the wait counts from the request's arrival

    def stuck(batch, since=None):       # a pass that does not end
        handed[:] = [Future() for _ in batch]
        return handed
    monkeypatch.setattr(service.dispatcher, "submit", stuck)
    monkeypatch.setattr(service, "settings", dataclasses.replace(service.settings, check_timeout_seconds=0.05))
    r = client.post("/v1/check", json=claims[0], headers=AUTH)
    assert r.status_code == 503 and "审核超时" in r.json()["detail"] and handed[0].cancelled()

    monkeypatch.undo()
    assert_still_serving(client, claims[0])


def test_concurrent_requests_are_checked_in_one_pass_without_a_thread_each(sample_lake, claims, monkeypatch):
    """A request waiting for its pass holds no thread: with two threads for the whole application, six
    concurrent single-claim requests all reach the queue and are checked together in one pass."""
    import asyncio

    import anyio.to_thread
    import httpx

    from pipelines.serve.dispatch import Dispatcher

    six, people = [], set()
    for c in claims:
        if c["mdtrt"]["psn_no"] not in people and len(c["fee_list"]) <= 40:
            people.add(c["mdtrt"]["psn_no"])
            six.append(c)
        if len(six) == 6:
            break
    passes: list[int] = []
    take = Dispatcher._take

    def take_when_all_queued(self):       # the pass starts once six claims wait (or after 20 s)
        deadline = time.monotonic() + 20
        while len(self._queue) < len(six) and time.monotonic() < deadline:
            time.sleep(0.01)
        batch = take(self)
        passes.append(len(batch or ()))
        return batch
    monkeypatch.setattr(Dispatcher, "_take", take_when_all_queued)
    settings = Settings(token=TOKEN, refresh_seconds=0, background_load=False, workers=1, max_pass=8,
                        max_wait_seconds=0)
    app = create_app(sample_lake, settings)

    async def run():
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        app.state.service.start()
        try:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
                return await asyncio.gather(*(client.post("/v1/check", json=c, headers=AUTH, timeout=60)
                                              for c in six))
        finally:
            app.state.service.stop()
    answers = asyncio.run(run())
    assert [r.status_code for r in answers] == [200] * 6
    assert [r.json()["mdtrt_id"] for r in answers] == [c["mdtrt"]["mdtrt_id"] for c in six]
    assert passes[0] == 6
