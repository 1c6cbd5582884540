"""Publishing: blocked lists leave gold as it was; a clean list replaces exactly the scope its screening
recorded, once."""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest

from fg_lakes import clean_rows, gate_catalog, suspect, table

from pipelines import config
from pipelines.app.publication import gate_and_publish
from pipelines.publish.publisher import GOLD, PublishError, months_of, publication, publish, scope_predicate
from pipelines.screen.pipeline import scope_table

CATALOG = gate_catalog()
RULES = CATALOG.select()
CONF = {"gate": {"hit_rate_band": 10.0, "hit_rate_min_hits": 20}, "pii_key": config.pii_key()}
T1 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
T2 = dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.timezone.utc)
#: every (institution, month) of the hand-made silver (tests/fg_lakes.py) with its input rows
SILVER_PAIRS = {("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H2", "2023-03"): 3}


def scope(versions=None, run_id="R1", pairs=None, institutions=None):
    return scope_table(SILVER_PAIRS if pairs is None else pairs, run_id=run_id, fingerprint="fp1",
                       input_versions=json.dumps(versions or {}), institutions=institutions)


def gold(lk):
    return lk.read(GOLD).sort_by([("suspect_id", "ascending")])


def test_months_of_expands_years():
    assert months_of("2023") == [f"2023-{m:02d}" for m in range(1, 13)]
    assert months_of("2023-03") == ["2023-03"]
    with pytest.raises(PublishError):
        months_of("2023-13")


def test_scope_predicate_names_exactly_the_pairs():
    assert scope_predicate({"H1": {"2023-03"}}) == "fixmedins_code IN ('H1') AND period IN ('2023-03')"
    assert scope_predicate({"H1": {"2023-03", "2023-04"}, "H2": {"2023-04", "2023-03"}}) == \
        "fixmedins_code IN ('H1', 'H2') AND period IN ('2023-03', '2023-04')"
    assert scope_predicate({"H1": {"2023-03"}, "H2": {"2023-04"}}) == \
        "(fixmedins_code IN ('H1') AND period IN ('2023-03')) OR (fixmedins_code IN ('H2') AND period IN ('2023-04'))"


def test_clean_list_is_gated_then_published(silver_lake, tmp_path):
    lk, versions = silver_lake
    out = gate_and_publish(lk, table(clean_rows(versions, run_id="R1")), scope=scope(versions), staging_version=None,
                           catalog=CATALOG, rules=RULES, conf=CONF, published_at=T1, report_dir=tmp_path / "r")
    assert out.gate.success, out.gate.failures
    assert out.version == lk.version(GOLD) == 0
    g = gold(lk)
    assert g.num_rows == 6
    assert set(g.column("published_at").to_pylist()) == {T1}
    assert g.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    _, meta = publication(lk, "R1")
    assert meta["rule_ids"] == sorted(r.id for r in RULES)
    assert meta["months"] == ["2023-01", "2023-03", "2023-04"]  # the recorded scope's months
    assert meta["scope_pairs"] == "4" and "institutions" not in meta  # all institutions were screened


@pytest.mark.parametrize("corruption", ["duplicate", "orphan", "negative", "inactive", "jump", "pii"])
def test_blocked_list_leaves_gold_as_it_was(silver_lake, tmp_path, corruption):
    lk, versions = silver_lake
    publish(lk, table(clean_rows(versions, run_id="R1")), scope=scope(versions), published_at=T1)
    before_version, before_rows = lk.version(GOLD), gold(lk)
    rows = clean_rows(versions, run_id="R2")
    conf = CONF
    if corruption == "duplicate":      # the same finding twice
        rows.append(rows[0])
    elif corruption == "orphan":       # a fee line silver does not have
        rows.append(suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M1", sn="77"))
    elif corruption == "negative":     # a negative amount
        rows[0]["amount"] = -rows[0]["amount"]
    elif corruption == "inactive":     # a draft rule's finding
        rows.append(suspect("daily_cap_draft", "daily_cap", "H1", "2023-03", mdtrt="M1", sn="1"))
    elif corruption == "jump":         # 3 hits vs 1 published last time, band ×2 from 2 hits
        lk.delete(GOLD, "suspect_id <> '" + rows[0]["suspect_id"] + "'")
        before_version, before_rows = lk.version(GOLD), gold(lk)
        conf = {"gate": {"hit_rate_band": 2.0, "hit_rate_min_hits": 2}, "pii_key": config.pii_key()}
    t = table(rows)
    if corruption == "pii":            # a personal-data column
        t = t.append_column("certno", pa.array(["110101199003071234"] * t.num_rows))
    out = gate_and_publish(lk, t, scope=scope(versions, run_id="R2"), staging_version=None, catalog=CATALOG,
                           rules=RULES, conf=conf, published_at=T2, report_dir=tmp_path / "r")
    assert not out.gate.success and out.gate.failures
    assert out.version is None
    assert lk.version(GOLD) == before_version
    assert gold(lk).equals(before_rows)


def test_publishing_twice_is_idempotent(silver_lake):
    lk, versions = silver_lake
    t = table(clean_rows(versions, run_id="R1"))
    v1 = publish(lk, t, scope=scope(versions), published_at=T1)
    first = gold(lk)
    v2 = publish(lk, t, scope=scope(versions), published_at=T1)
    assert v2 == v1 + 1  # one commit per publication
    again = gold(lk)
    assert again.num_rows == first.num_rows == 6
    assert again.column("suspect_id").to_pylist() == first.column("suspect_id").to_pylist()
    assert again.equals(first)


def test_only_the_recorded_scope_is_replaced(silver_lake):
    lk, versions = silver_lake
    publish(lk, table(clean_rows(versions, run_id="R1")), scope=scope(versions), published_at=T1)
    # R2 screened H1 for 2023-03 only and found just line M1/2: M1/1 disappeared
    r2 = [r for r in clean_rows(versions, run_id="R2") if r["feedetl_sn"] == "2"]
    v_before = lk.version(GOLD)
    v = publish(lk, table(r2), scope=scope(versions, "R2", {("H1", "2023-03"): 4}, ["H1"]), published_at=T2)
    assert v == v_before + 1
    g = gold(lk).to_pylist()
    by_part = {}
    for r in g:
        by_part.setdefault((r["fixmedins_code"], r["period"]), set()).add((r["run_id"], r["feedetl_sn"]))
    assert by_part[("H1", "2023-03")] == {("R2", "2")}            # replaced: the finding on line 1 is gone
    assert by_part[("H2", "2023-03")] == {("R1", "10")}           # other institution: untouched
    assert {x[0] for x in by_part[("H1", "2023-04")]} == {"R1"}   # other month: untouched
    assert len(g) == 5
    assert publication(lk, "R2")[1]["institutions"] == ["H1"]


def test_an_empty_list_clears_its_scope_only(silver_lake):
    lk, versions = silver_lake
    publish(lk, table(clean_rows(versions, run_id="R1")), scope=scope(versions), published_at=T1)
    publish(lk, table([]), scope=scope(versions, "R3", {("H1", "2023-04"): 3}), published_at=T2, run_id="R3")
    assert {(r["fixmedins_code"], r["period"]) for r in gold(lk).to_pylist()} == {("H1", "2023-03"), ("H2", "2023-03")}
    assert publication(lk, "R3")[1]["rows"] == "0"


def test_an_empty_scope_replaces_nothing(silver_lake):
    lk, versions = silver_lake
    v = publish(lk, table(clean_rows(versions, run_id="R1")), scope=scope(versions), published_at=T1)
    assert publish(lk, table([]), scope=scope(versions, "R3", {}), published_at=T2, run_id="R3") == v
    assert gold(lk).num_rows == 6


def test_suspects_outside_the_scope_are_refused(silver_lake):
    lk, versions = silver_lake
    with pytest.raises(PublishError, match="outside the recorded scope"):
        publish(lk, table(clean_rows(versions)), scope=scope(versions, pairs={("H1", "2023-03"): 4}),
                published_at=T1)
    assert not lk.exists(GOLD)


def test_two_runs_in_one_list_are_refused_without_a_traceback(silver_lake):
    lk, versions = silver_lake
    rows = clean_rows(versions, run_id="R1")
    rows[0]["run_id"] = "R9"
    with pytest.raises(PublishError, match="one run per publication"):
        publish(lk, table(rows), scope=scope(versions), published_at=T1)
    assert not lk.exists(GOLD)
