"""`fundguard analyze` on the generated district: every planted provider anomaly in the top decile of
gold/institution_risk, every planted co-visit group found, the item watch flags the planted growth items and
no other item; the gold tables have the contract's shape."""
from __future__ import annotations

import csv
import json
import math

import pytest

from pipelines import config
from pipelines.app.analyze import RISK_COLUMNS, analyze
from pipelines.app.load import load_drop
from pipelines.storage import Lake
from pipelines.synth.generator import generate
from pipelines.synth.providers import provider_key_path


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    drop = tmp_path_factory.mktemp("district") / "landing"
    generate(drop, scale=2, seed=7)
    lake = Lake(tmp_path_factory.mktemp("lake"))
    load_drop(drop, lake, config.load(), progress=False)
    res = analyze(lake, "2023")
    with provider_key_path(drop).open(encoding="utf-8") as fh:
        key = list(csv.DictReader(fh))
    return lake, res, key


def test_planted_institutions_in_top_decile(analysed):
    lake, res, key = analysed
    risk = lake.read("gold/institution_risk").to_pandas()
    year = risk[risk["period"] == "2023"]
    decile = math.ceil(len(year) / 10)
    ranks = year.set_index("fixmedins_code")["risk_rank"]
    planted = [r for r in key if r["level"] == "institution"]
    assert {r["kind"] for r in planted} == {"inflated_cost", "upcoded_mix", "phantom_covisit"}
    for r in planted:
        assert ranks[r["fixmedins_code"]] <= decile, (r["kind"], ranks[r["fixmedins_code"]], decile)
    assert set(year["model_name"]) == {"unsupervised_peer_composite"}   # 14 labelled: not enough for a model


def test_every_covisit_group_found(analysed):
    _, res, key = analysed
    groups = {}
    for r in res.computed.groups.to_pylist():
        groups.setdefault((r["fixmedins_code"], r["group_id"]), set()).add(r["psn_no"])
    planted = {}
    for r in key:
        if r["kind"] == "phantom_covisit" and r["level"] == "person":
            planted.setdefault(r["group_id"], set()).add(r["psn_no"])
    assert len(planted) >= 2
    found = list(groups.values())
    for members in planted.values():
        assert members in found, members


def test_item_watch_flags_planted_growth_only(analysed):
    lake, _, key = analysed
    w = lake.read("gold/item_watch").to_pandas()
    district = w[w["scope"] == "district"]
    flagged = set(district.loc[district["abnormal"], "hilist_code"])
    planted = {r["hilist_code"] for r in key if r["kind"] == "item_growth"}
    assert flagged == planted
    months = district[district["abnormal"]].groupby("hilist_code")["period"].min()
    assert (months >= "2023-07").all()
    drivers = json.loads(district[district["abnormal"]].iloc[0]["drivers"])
    assert drivers and drivers[0]["increase"] > 0


def test_gold_tables_shape(analysed):
    lake, res, _ = analysed
    risk = lake.read("gold/institution_risk")
    assert tuple(risk.schema.names) == RISK_COLUMNS
    assert lake.delta("gold/institution_risk").metadata().partition_columns == ["period"]
    assert set(risk.column("run_id").to_pylist()) == {res.run_id}
    ind = lake.read("gold/indicators").to_pandas()
    assert {"2023", "2023-01", "2023-12"} <= set(ind["period"])
    assert ind["absent_inputs"].fillna("").str.contains("gold/suspects").all()   # no screening ran
    assert ind["drug_share"].notna().any()
    peers = lake.read("gold/peer_outliers").to_pandas()
    flagged = peers[peers["flagged"]]
    assert (flagged["explanation_zh"].str.contains("中位数") & flagged["explanation_en"].str.contains("median")).all()
