"""The service's error answers (outside test of issue 17, defects D2, D4, D6, D8, D9, D10): a crash is a 500
with the request's id and one JSON log line; a batch answers a claim's schema error in its own `results[i]`;
a streamed oversize body is a 413; a body that is not UTF-8 JSON (or not JSON at all) gets a clear 4xx in
the usual shape; `X-Request-ID` comes once; 404 and 405 carry the request id in the body."""
from __future__ import annotations

import copy
import json
import logging

import pytest
from fastapi.testclient import TestClient

from pipelines.serve.replay import lake_claims

from .conftest import AUTH, LIMITS

JSON = {**AUTH, "Content-Type": "application/json"}
LIMIT = LIMITS["max_body_bytes"]


@pytest.fixture(scope="module")
def good(sample_lake) -> list[dict]:
    """Two claims of different persons, each with a Chinese name sent for the person (non-ASCII text)."""
    out, people = [], set()
    for c in lake_claims(sample_lake, limit=200):
        if c["fee_list"] and len(c["fee_list"]) <= 20 and c["mdtrt"]["psn_no"] not in people:
            people.add(c["mdtrt"]["psn_no"])
            out.append(dict(c, psn={"psn_no": c["mdtrt"]["psn_no"], "psn_name": "张三", "certno": "110101199001011234",
                                    "gend": "1", "brdy": "1990-01-01"}))
        if len(out) == 2:
            return out
    raise AssertionError("no claims")


def in_usual_shape(r, status: int, field: str, *words: str) -> dict:
    """`r` is `status` with `{"detail": [{"field", "msg"}, ...], "request_id"}`, the id once in the header."""
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["detail"], list) and body["detail"], body
    assert body["request_id"] and body["request_id"] != "-"
    assert r.headers.get_list("x-request-id") == [body["request_id"]]
    hit = next((d for d in body["detail"] if d["field"] == field), None)
    assert hit is not None, body
    for w in words:
        assert w in hit["msg"], hit
    return hit


def serve_log(caplog) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "fundguard.serve"]


def test_d2_a_crash_is_a_500_with_the_request_id_and_one_json_log_line(client, good, monkeypatch, caplog):
    """The 500 and its log line carry the request's id; the app does not re-raise (uvicorn's plain-text
    traceback), the traceback is a field of the JSON line."""
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(client.app.state.service, "check_many", broken)
    caplog.set_level(logging.INFO, logger="fundguard.serve")
    caplog.clear()
    raw = TestClient(client.app)            # raises what the app raises (no lifespan: the service is running)
    r = raw.post("/v1/check", json=good[0], headers={**AUTH, "X-Request-ID": "crash-7"})
    assert r.status_code == 500 and r.json()["request_id"] == "crash-7"
    assert r.headers.get_list("x-request-id") == ["crash-7"]
    lines = serve_log(caplog)
    error = [x for x in lines if x["event"] == "error"]
    assert len(error) == 1 and error[0]["request_id"] == "crash-7" and error[0]["error"] == "RuntimeError"
    assert "broken" in error[0]["traceback"] and "check_many" in error[0]["traceback"]
    assert [(x["request_id"], x["status"]) for x in lines if x["event"] == "access"] == [("crash-7", 500)]
    assert all(r.name == "fundguard.serve" for r in caplog.records if r.levelno >= logging.WARNING)
    monkeypatch.undo()
    assert client.post("/v1/check", json=good[0], headers=AUTH).status_code == 200


def test_d4_a_schema_error_in_a_batch_is_that_claims_error(client, good):
    bad = copy.deepcopy(good[0])
    del bad["mdtrt"]["begntime"]
    r = client.post("/v1/check:batch", json={"claims": [good[0], bad, good[1]]}, headers=AUTH)
    assert r.status_code == 200, r.text
    res = r.json()["results"]
    assert "violations" in res[0] and "violations" in res[2] and "violations" not in res[1]
    assert [(e["field"], e["loc"]) for e in res[1]["error"]] == [("mdtrt.begntime", ["body", "mdtrt", "begntime"])]
    assert [x["index"] for x in res] == [0, 1, 2]
    typed = copy.deepcopy(good[0])
    typed["fee_list"][0]["cnt"] = "x"                  # a typing error: the same shape
    r = client.post("/v1/check:batch", json={"claims": [typed, "not a claim", {"mdtrt": {}, "x": 1}]}, headers=AUTH)
    res = r.json()["results"]
    assert r.status_code == 200 and set(res[0]["error"][0]) == set(res[1]["error"][0]) == {"loc", "field", "msg"}
    assert [e["field"] for e in res[1]["error"]] == ["claims.1"]
    assert {"x", "mdtrt.mdtrt_id"} <= {e["field"] for e in res[2]["error"]}
    for envelope in ([good[0]], {}, {"claims": "x"}, {"claims": []}, {"claims": [good[0]] * 4},
                     {"claims": [good[0]], "more": 1}):          # the envelope: the whole request
        r = client.post("/v1/check:batch", json=envelope, headers=AUTH)
        assert r.status_code == 422 and r.json()["request_id"], (envelope, r.text)


def test_d6_an_oversize_body_sent_in_chunks_is_a_413(client):
    def chunks():
        for _ in range(4):
            yield b" " * (LIMIT // 3)
    r = client.post("/v1/check", content=chunks(), headers=JSON)
    assert "content-length" not in {k.lower() for k in r.request.headers}
    in_usual_shape(r, 413, "body", str(LIMIT))
    r = client.post("/v1/check", content=b" " * (LIMIT + 1), headers=JSON)        # declared: the same answer
    in_usual_shape(r, 413, "body", str(LIMIT))


@pytest.mark.parametrize("name, status, field, words", [
    ("gbk", 422, "body", ("not UTF-8",)),
    ("gbk_declared", 422, "body", ("not UTF-8",)),
    ("malformed", 422, "body", ("malformed JSON at line 2 column 11",)),
    ("not_json", 422, "body", ("malformed JSON at line 1 column 1",)),
    ("empty", 422, "body", ("empty",)),
    ("deep_array", 422, "body", ("nesting deeper than",)),
    ("deep_object", 422, "body", ("nesting deeper than",)),
    ("long_number", 422, "body", ("digits",)),
    ("text_plain", 415, "Content-Type", ("application/json",)),
    ("form", 415, "Content-Type", ("application/json",)),
    ("no_content_type", 415, "Content-Type", ("application/json",)),
])
def test_d8_a_body_that_is_not_utf8_json_gets_a_clear_4xx(client, good, name, status, field, words):
    text = json.dumps(good[0], ensure_ascii=False)
    bodies = {
        "gbk": (text.encode("gbk"), JSON),
        "gbk_declared": (text.encode("gbk"), {**AUTH, "Content-Type": "application/json; charset=gbk"}),
        "malformed": (b'{"mdtrt":\n  {"a": 1,,}}', JSON),
        "not_json": (b"hello, service", JSON),
        "empty": (b"", JSON),
        "deep_array": (b"[" * 40_000 + b"]" * 40_000, JSON),
        "deep_object": (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, JSON),
        "long_number": (b'{"mdtrt": {"mdtrt_id": ' + b"7" * 5_000 + b"}}", JSON),
        "text_plain": (text.encode(), {**AUTH, "Content-Type": "text/plain"}),
        "form": (text.encode(), {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}),
        "no_content_type": (text.encode(), AUTH),
    }
    content, headers = bodies[name]
    for path in ("/v1/check", "/v1/check:batch"):
        r = client.post(path, content=content, headers=headers)
        in_usual_shape(r, status, field, *words)
    assert client.post("/v1/check", json=good[0], headers=AUTH).status_code == 200


def test_d8_utf16_and_a_utf8_bom_are_still_accepted(client, good):
    text = json.dumps(good[0], ensure_ascii=False)
    for content in (text.encode("utf-16"), text.encode("utf-16-le"), b"\xef\xbb\xbf" + text.encode()):
        r = client.post("/v1/check", content=content, headers=JSON)
        assert r.status_code == 200, r.text
    batch = json.dumps({"claims": good}, ensure_ascii=False)
    r = client.post("/v1/check:batch", content=b"\xef\xbb\xbf" + batch.encode(), headers=JSON)
    assert r.status_code == 200 and all("violations" in x for x in r.json()["results"])


def test_d9_every_answer_carries_the_request_id_header_once(client, good):
    bad = copy.deepcopy(good[0])
    bad["fee_list"][0]["cnt"] = "x"
    answers = [
        client.post("/v1/check", json=good[0], headers=AUTH),                               # 200
        client.post("/v1/check", json=good[0]),                                              # 401
        client.post("/v1/check", content=b" " * (LIMIT + 1), headers=JSON),                 # 413
        client.post("/v1/check", json={"mdtrt": {}}, headers=AUTH),                          # 422 (schema)
        client.post("/v1/check", json=bad, headers=AUTH),                                    # 422 (typing)
        client.post("/v1/check", content=b"x", headers={**AUTH, "Content-Type": "text/plain"}),   # 415
        client.get("/v1/nope"), client.get("/v1/check"),                                     # 404, 405
    ]
    assert [r.status_code for r in answers] == [200, 401, 413, 422, 422, 415, 404, 405]
    for r in answers:
        assert r.headers.get_list("x-request-id") == [r.json()["request_id"]], (r.status_code, r.headers)
    r = client.get("/healthz", headers={"X-Request-ID": "mine-1"})
    assert r.headers.get_list("x-request-id") == ["mine-1"]


def test_d10_404_and_405_carry_the_request_id_in_the_body(client):
    in_usual_shape(client.get("/v1/nope"), 404, "path", "/v1/nope")
    r = client.get("/v1/check", headers={"X-Request-ID": "r-405"})
    in_usual_shape(r, 405, "method", "GET")
    assert r.json()["request_id"] == "r-405" and r.headers["allow"] == "POST"
