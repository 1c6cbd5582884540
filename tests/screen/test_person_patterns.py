"""The person-level pattern families of issue #16 on the generated district: every person the generator planted
(`pipelines/synth/providers.py`, key `<drop>.provider_key.csv`) is flagged — each drug_resale person, each
member of a co-visit group — and the figures of what else is flagged are printed (`pytest -s`). The co-visit
rule and `fundguard analyze` find the same persons (one definition, docs/decisions.md)."""
from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pytest

from pipelines import config
from pipelines.analytics.covisit import covisit_pairs
from pipelines.app.load import load_drop
from pipelines.app.screening import screen_gate_publish
from pipelines.storage import Lake
from pipelines.synth.providers import provider_key_path

FAMILIES = {"drug_resale": "drug_resale", "covisit_group": "phantom_covisit"}   # family -> planted kind


@pytest.fixture(scope="module")
def screened(district_drop: Path, tmp_path_factory):
    lake = Lake(tmp_path_factory.mktemp("lake"))
    load_drop(district_drop, lake, config.load(), progress=False)
    outcome = screen_gate_publish(lake, engine_name="duckdb", families=sorted(FAMILIES), progress=False)
    assert outcome.published, outcome.reason
    with provider_key_path(district_drop).open(encoding="utf-8") as fh:
        key = [r for r in csv.DictReader(fh) if r["level"] == "person"]
    return lake, outcome.suspects.to_pylist(), key


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_planted_person_is_flagged(screened, family):
    _, suspects, key = screened
    planted = {r["psn_no"] for r in key if r["kind"] == FAMILIES[family]}
    flagged = {r["psn_no"] for r in suspects if r["family"] == family}
    assert len(planted) >= 3
    print(f"\n{family}: planted {len(planted)}, flagged {len(planted & flagged)}, "
          f"unplanted persons flagged {len(flagged - planted)}")
    assert planted <= flagged, sorted(planted - flagged)
    assert not flagged - planted, f"unplanted persons flagged: {sorted(flagged - planted)[:5]}"


def test_resale_lines_and_evidence(screened):
    """Every fund line of the planted drug of a resale person is a suspect, at the pharmacy that sold it, with
    the figures that triggered in the evidence."""
    _, suspects, key = screened
    resale = [r for r in suspects if r["family"] == "drug_resale"]
    drug = {r["hilist_code"] for r in key if r["kind"] == "drug_resale"}
    assert {r["hilist_code"] for r in resale} == drug
    by_person: dict[str, set] = {}
    for r in resale:
        by_person.setdefault(r["psn_no"], set()).add(r["fixmedins_code"])
    assert all(len(insts) >= 2 for insts in by_person.values())
    ev = resale[0]["evidence"]
    assert "家机构累计使用" in ev and "疗程用量28（每日限量4×7日）" in ev and "超过1.2倍" in ev, ev
    assert all(r["rule_id"] == "drug_resale_cross_institution" and r["category"] == "倒卖医保药品" for r in resale)


def test_covisit_groups_are_whole_and_match_the_analysis(screened):
    """Each planted group is flagged at its institution, every member on each of its shared days; the persons the
    rule flags are the persons of `fundguard analyze`'s flagged pairs with the same kb thresholds."""
    lake, suspects, key = screened
    cv = [r for r in suspects if r["family"] == "covisit_group"]
    groups: dict[str, set] = {}
    for r in key:
        if r["kind"] == "phantom_covisit":
            groups.setdefault(r["group_id"], set()).add(r["psn_no"])
    for members in groups.values():
        visits = [r for r in cv if r["psn_no"] in members]
        assert len({r["fixmedins_code"] for r in visits}) == 1
        assert len(visits) == 6 * len(members)        # the generator's six shared days
    assert all(f"（{len(next(iter(groups.values()))) - 1}人）同日同院就诊" in r["evidence"] for r in cv)

    con = duckdb.connect()
    con.register("m", lake.read("silver/mdtrt").select(["mdtrt_id", "psn_no", "fixmedins_code", "begntime"]))
    con.execute("CREATE TEMP TABLE an_visit AS SELECT *, strftime(begntime, '%Y') AS year FROM m")
    params = {r["key"]: r["value"] for r in lake.read("silver/kb_param").to_pylist()}
    pairs = covisit_pairs(con, int(params["covisit_min_days"]), float(params["covisit_min_ratio"])).to_pylist()
    analysed = {(p["fixmedins_code"], p[k]) for p in pairs for k in ("psn_a", "psn_b")}
    assert analysed == {(r["fixmedins_code"], r["psn_no"]) for r in cv}
