"""Publishing: blocked lists leave gold as it was; a clean list replaces exactly its partitions, once."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from fg_lakes import clean_rows, gate_catalog, suspect, table

from pipelines.app.publication import gate_and_publish
from pipelines.publish.publisher import (GOLD, PublishError, months_of, publication, publish,
                                         scope_predicate)

CATALOG = gate_catalog()
RULES = CATALOG.select()
CONF = {"gate": {"hit_rate_band": 10.0, "hit_rate_min_hits": 20}}
T1 = dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
T2 = dt.datetime(2024, 2, 1, 12, 0, tzinfo=dt.timezone.utc)


def gold(lk):
    return lk.read(GOLD).sort_by([("suspect_id", "ascending")])


def test_months_of_expands_years():
    assert months_of("2023") == [f"2023-{m:02d}" for m in range(1, 13)]
    assert months_of("2023-03") == ["2023-03"]
    with pytest.raises(PublishError):
        months_of("2023-13")
    assert scope_predicate(["2023-03"], ["H1"]) == "period IN ('2023-03') AND fixmedins_code IN ('H1')"


def test_clean_list_is_gated_then_published(silver_lake, tmp_path):
    lk, versions = silver_lake
    out = gate_and_publish(lk, table(clean_rows(versions, run_id="R1")), catalog=CATALOG, rules=RULES, conf=CONF,
                           periods=None, institutions=None, published_at=T1, report_dir=tmp_path / "r")
    assert out.gate.success, out.gate.failures
    assert out.version == lk.version(GOLD) == 0
    g = gold(lk)
    assert g.num_rows == 6
    assert set(g.column("published_at").to_pylist()) == {T1}
    assert g.schema.field("published_at").type == pa.timestamp("us", tz="UTC")
    _, meta = publication(lk, "R1")
    assert meta["rule_ids"] == sorted(r.id for r in RULES)
    assert meta["months"] == ["2023-01", "2023-03", "2023-04"]  # suspects' months + silver's (inv 2023-01)


@pytest.mark.parametrize("corruption", ["duplicate", "orphan", "negative", "inactive", "jump", "pii"])
def test_blocked_list_leaves_gold_as_it_was(silver_lake, tmp_path, corruption):
    lk, versions = silver_lake
    publish(lk, table(clean_rows(versions, run_id="R1")), periods=None, institutions=None, published_at=T1)
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
        conf = {"gate": {"hit_rate_band": 2.0, "hit_rate_min_hits": 2}}
    t = table(rows)
    if corruption == "pii":            # a personal-data column
        t = t.append_column("certno", pa.array(["110101199003071234"] * t.num_rows))
    out = gate_and_publish(lk, t, catalog=CATALOG, rules=RULES, conf=conf, periods=None, institutions=None,
                           published_at=T2, report_dir=tmp_path / "r")
    assert not out.gate.success and out.gate.failures
    assert out.version is None
    assert lk.version(GOLD) == before_version
    assert gold(lk).equals(before_rows)


def test_publishing_twice_is_idempotent(silver_lake):
    lk, versions = silver_lake
    t = table(clean_rows(versions, run_id="R1"))
    v1 = publish(lk, t, periods=["2023"], institutions=None, published_at=T1)
    first = gold(lk)
    v2 = publish(lk, t, periods=["2023"], institutions=None, published_at=T1)
    assert v2 == v1 + 1  # one commit per publication
    again = gold(lk)
    assert again.num_rows == first.num_rows == 6
    assert again.column("suspect_id").to_pylist() == first.column("suspect_id").to_pylist()
    assert again.equals(first)


def test_only_the_computed_partitions_are_replaced(silver_lake):
    lk, versions = silver_lake
    publish(lk, table(clean_rows(versions, run_id="R1")), periods=None, institutions=None, published_at=T1)
    # R2 screened H1 for 2023-03 only and found just line M1/2: M1/1 disappeared
    r2 = [r for r in clean_rows(versions, run_id="R2") if r["feedetl_sn"] == "2"]
    v_before = lk.version(GOLD)
    v = publish(lk, table(r2), periods=["2023-03"], institutions=["H1"], published_at=T2)
    assert v == v_before + 1
    g = gold(lk).to_pylist()
    by_part = {}
    for r in g:
        by_part.setdefault((r["fixmedins_code"], r["period"]), set()).add((r["run_id"], r["feedetl_sn"]))
    assert by_part[("H1", "2023-03")] == {("R2", "2")}            # replaced: the finding on line 1 is gone
    assert by_part[("H2", "2023-03")] == {("R1", "10")}           # other institution: untouched
    assert {x[0] for x in by_part[("H1", "2023-04")]} == {"R1"}   # other month: untouched
    assert len(g) == 5


def test_an_empty_run_clears_its_scope(silver_lake):
    lk, versions = silver_lake
    publish(lk, table(clean_rows(versions, run_id="R1")), periods=None, institutions=None, published_at=T1)
    publish(lk, table([]), periods=["2023-04"], institutions=None, published_at=T2, run_id="R3")
    assert {r["period"] for r in gold(lk).to_pylist()} == {"2023-03"}
    assert publication(lk, "R3")[1]["rows"] == "0"


def test_suspects_outside_the_scope_are_refused(silver_lake):
    lk, versions = silver_lake
    with pytest.raises(PublishError, match="outside the computed scope"):
        publish(lk, table(clean_rows(versions)), periods=["2023-03"], institutions=None, published_at=T1)
    assert not lk.exists(GOLD)
