"""Values a claim may not carry, found by an outside attack: each a 422 naming the field, with the field's own
message, and the service serving on (a lone surrogate failed every claim of its pass with a 500)."""
from __future__ import annotations

import copy
import json

import pytest

from pipelines.serve.claim import MAX_TEXT
from pipelines.serve.replay import lake_claims

from .conftest import AUTH


@pytest.fixture(scope="module")
def good(sample_lake) -> dict:
    return next(c for c in lake_claims(sample_lake) if c["fee_list"] and c["diag"] and 1 < len(c["fee_list"]) < 30)


def problems(r) -> dict[str, str]:
    assert r.status_code == 422, r.text
    return {d["field"]: d["msg"] for d in r.json()["detail"]}


def test_a_lone_surrogate_is_a_422_naming_the_field_and_spares_the_pass(client, good):
    body = json.dumps(dict(good, diag=[dict(good["diag"][0], diag_name="@@")] + good["diag"][1:]),
                      ensure_ascii=True).replace("@@", "\\ud800abc")
    r = client.post("/v1/check", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert "lone surrogate" in problems(r)["diag.0.diag_name"]
    assert client.post("/v1/check", json=good, headers=AUTH).status_code == 200


def test_an_over_long_value_is_refused(client, good):
    bad = copy.deepcopy(good)
    bad["mdtrt"]["mdtrt_id"] = "M" * (MAX_TEXT + 1)
    assert f"longer than {MAX_TEXT}" in problems(client.post("/v1/check", json=bad, headers=AUTH))["mdtrt.mdtrt_id"]


@pytest.mark.parametrize("med_type, ok", [("abc", False), ("1", False), ("2x", False), ("9901", True),
                                          ("140104", True)])
def test_med_type_must_be_a_code_of_two_to_six_digits(client, good, med_type, ok):
    bad = copy.deepcopy(good)
    bad["mdtrt"]["med_type"] = med_type
    r = client.post("/v1/check", json=bad, headers=AUTH)
    if ok:
        assert r.status_code == 200, r.text
    else:
        assert "not a code of 2 to 6 digits" in problems(r)["mdtrt.med_type"]


def test_a_fractional_integer_is_refused(client, good):
    bad = copy.deepcopy(good)
    bad["mdtrt"]["ipt_days"] = "1.5"
    assert "not an integer" in problems(client.post("/v1/check", json=bad, headers=AUTH))["mdtrt.ipt_days"]


def test_each_field_gets_its_own_message_whatever_the_values_hold(client, good):
    """The messages were split on '; ', which a value (or the decimal-comma hint) may hold: 'a; b' gave cnt
    half its message and pric the other half, and the Chinese label came twice (数量数量不是数字)."""
    bad = copy.deepcopy(good)
    bad["fee_list"][0].update(cnt="a; b", pric="x")
    got = problems(client.post("/v1/check", json=bad, headers=AUTH))
    assert got["fee_list.0.cnt"].startswith("cnt: not a number 'a; b'") and got["fee_list.0.cnt"].endswith("/ 数量不是数字")
    assert got["fee_list.0.pric"].startswith("pric: not a number 'x'") and "单价单价" not in got["fee_list.0.pric"]
    bad["fee_list"][0].update(cnt="1", pric="12,80")
    assert "ambiguous numeral '12,80'" in problems(client.post("/v1/check", json=bad, headers=AUTH))["fee_list.0.pric"]


def test_a_time_outside_the_contracts_range_is_refused_as_a_load_would_be(client, good):
    """A fee time of 9999-12-31 (a placeholder) made the claim time 9999 and the person's whole history its
    past; the silver suite fails a load with such a time, the service answers 422 naming it."""
    bad = copy.deepcopy(good)
    bad["fee_list"][0]["fee_ocur_time"] = "9999-12-31 00:00:00"
    assert "outside 1990-01-01..2100-01-01" in problems(client.post("/v1/check", json=bad, headers=AUTH))[
        "fee_list.0.fee_ocur_time"]
    bad = copy.deepcopy(good)
    bad["mdtrt"]["begntime"] = "0001-01-01"
    assert "mdtrt.begntime" in problems(client.post("/v1/check", json=bad, headers=AUTH))
