"""双随机: same seed → same draw; another seed → another; coverage targets and conflicts of interest hold."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from pipelines import config
from pipelines.workflow import sampling, store
from tests.workflow.conftest import fixmedins_table, write_csv

CONF = config.load("workflow")["sampling"]
LEVELS = ["02"] * 7 + ["03"] * 3 + ["05"] * 12 + ["07"] * 3 + ["08"] * 15 + ["11"] * 20   # 60 institutions


def institutions():
    rows = [(f"H{i:03d}", f"医院{i}", lv) for i, lv in enumerate(LEVELS)]
    return pd.DataFrame(rows, columns=["fixmedins_code", "fixmedins_name", "hosp_lv"])


def register(n=8, linked=None):
    linked = linked or {}
    return [sampling.Inspector(f"I{k:02d}", f"检查员{k}", f"单位{k % 3}", frozenset(linked.get(f"I{k:02d}", ())))
            for k in range(n)]


def test_same_seed_same_draw_other_seed_differs():
    inst, insp = institutions(), register()
    a = sampling.draw(inst, insp, 20231, CONF)
    b = sampling.draw(inst.sample(frac=1, random_state=3), list(reversed(insp)), 20231, CONF)  # input order irrelevant
    pd.testing.assert_frame_equal(a.targets, b.targets)
    c = sampling.draw(inst, insp, 20232, CONF)
    assert a.targets["fixmedins_code"].tolist() != c.targets["fixmedins_code"].tolist()
    assert a.targets["inspector_ids"].tolist() != c.targets["inspector_ids"].tolist()


def test_strata_sizes_and_coverage_targets():
    d = sampling.draw(institutions(), register(), 7, CONF)
    by = d.targets.groupby("stratum").size().to_dict()
    # 三级 10 × 20% = 2, 二级 15 × 20% = 3, 一级 15 × 10% = 2 (ceil 1.5), 无等级 20 × 5% = 1
    assert by == {"三级": 2, "二级": 3, "一级": 2, "无等级": 1}
    (cov,) = d.coverage
    assert cov["label"] == "二级及以上" and cov["met"] and cov["drawn"] / cov["institutions"] >= 0.20
    # every target's level matches its stratum
    for r in d.targets.itertuples():
        assert sampling.stratum_of(r.hosp_lv, CONF["strata"]) == r.stratum


def test_coverage_rate_raises_a_lower_stratum_rate():
    conf = {**CONF, "strata": {**CONF["strata"], "二级": {"levels": ["05", "06", "07"], "rate": 0.05}},
            "coverage": [{"strata": ["三级", "二级"], "min_rate": 0.30}]}
    d = sampling.draw(institutions(), register(), 1, conf)
    by = d.targets.groupby("stratum").size().to_dict()
    assert by["二级"] == math.ceil(0.30 * 15) and by["三级"] == 3
    assert d.coverage[0]["met"]


def test_no_inspector_is_sent_to_a_linked_institution_and_teams_are_full():
    inst = institutions()
    linked = {"I00": [f"H{i:03d}" for i in range(0, 60, 2)], "I01": [f"H{i:03d}" for i in range(0, 30)],
              "I02": ["H000", "H001", "H010"]}
    insp = register(5, linked)
    for seed in range(20):
        d = sampling.draw(inst, insp, seed, CONF)
        for r in d.targets.itertuples():
            team = r.inspector_ids.split("|")
            assert len(team) == CONF["team_size"] == len(set(team))
            assert all(r.fixmedins_code not in linked.get(i, ()) for i in team)


def test_least_loaded_first_spreads_the_work():
    d = sampling.draw(institutions(), register(8), 3, CONF)      # 8 targets × 2 = 16 places for 8 inspectors
    assert set(d.load.values()) == {2}


def test_impossible_team_fails_clearly():
    inst = institutions()
    everyone = {f"I{k:02d}": inst["fixmedins_code"].tolist() for k in range(2)}
    with pytest.raises(sampling.SamplingError, match="not linked"):
        sampling.draw(inst, register(3, everyone), 5, CONF)


def test_parse_register_and_hashes_ignore_order():
    raw = "inspector_id,name,unit,linked_institutions\nI2,李四,稽核科,H001|H002\nI1,张三,监管科,\n".encode("gbk")
    insp = sampling.parse_inspectors(raw)
    assert [i.inspector_id for i in insp] == ["I1", "I2"] and insp[1].linked == {"H001", "H002"}
    inst = institutions()
    assert sampling.institutions_sha256(inst) == sampling.institutions_sha256(inst.iloc[::-1])
    with pytest.raises(sampling.SamplingError, match="repeated"):
        sampling.parse_inspectors(b"inspector_id,name\nI1,a\nI1,b\n")


def test_sample_command_writes_public_list_and_record(tmp_path):
    from pipelines.cli import main
    from pipelines.storage import Lake

    lake = Lake(tmp_path / "lake")
    lake.append("silver/fixmedins", fixmedins_table([(c, n, lv) for c, n, lv in institutions().itertuples(index=False)]))
    reg = write_csv(tmp_path / "inspectors.csv", ["inspector_id", "name", "unit", "linked_institutions"],
                    [[f"I{k}", f"检查员{k}", "监管科", "H000|H001" if k == 0 else ""] for k in range(6)])
    args = ["sample", "--lake", str(lake.root), "--period", "2023", "--seed", "42", "--inspectors", str(reg),
            "--at", "2023-03-01T09:00:00"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    a = (tmp_path / "a" / "inspection_2023_seed42.csv").read_bytes()
    assert a == (tmp_path / "b" / "inspection_2023_seed42.csv").read_bytes()
    text = a.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("序号,抽查期间,定点医药机构编号")
    html = (tmp_path / "a" / "inspection_2023_seed42.html").read_text(encoding="utf-8")
    assert "双随机抽查名单" in html and "检查人员" in html
    rec = json.loads((tmp_path / "a" / "inspection_2023_seed42.json").read_text(encoding="utf-8"))
    assert rec["seed"] == 42 and len(rec["inputs"]["fixmedins"]["sha256"]) == 64
    assert rec["inputs"]["inspectors"]["rows"] == 6 and len(rec["targets"]) == 8
    draws = store.read_draws(lake, "2023")
    assert sorted(draws["fixmedins_code"]) == sorted(t["fixmedins_code"] for t in rec["targets"])


def test_sample_risk_top_writes_the_risk_list_next_to_the_unchanged_draw(tmp_path):
    import pyarrow as pa

    from pipelines.cli import main
    from pipelines.storage import Lake

    lake = Lake(tmp_path / "lake")
    lake.append("silver/fixmedins", fixmedins_table([(c, n, lv) for c, n, lv in institutions().itertuples(index=False)]))
    reg = write_csv(tmp_path / "inspectors.csv", ["inspector_id", "name", "unit", "linked_institutions"],
                    [[f"I{k}", f"检查员{k}", "监管科", ""] for k in range(6)])
    args = ["sample", "--lake", str(lake.root), "--period", "2023", "--seed", "42", "--inspectors", str(reg),
            "--at", "2023-03-01T09:00:00"]
    assert main(args + ["--out", str(tmp_path / "no_risk"), "--risk-top", "3"]) == 2   # no ranking yet
    assert not (tmp_path / "no_risk").exists()
    drivers = '[{"indicator": "cost_per_visit", "label_zh": "次均费用", "label_en": "cost per visit", "value": 812.5, ' \
              '"peer_median": 300.0, "percentile": 99.0, "robust_z": 6.1}]'
    codes = ["H005", "=H006", "H007", "H008"]       # H007 riskiest; "=H006" a formula-looking code
    lake.append("gold/institution_risk", pa.table({
        "fixmedins_code": codes, "period": ["2023"] * 4, "peer_group": ["全部机构"] * 4,
        "risk_score": [0.7, 0.5, 0.9, 0.1], "risk_rank": [2, 3, 1, 4], "model_name": ["m_year"] * 4,
        "model_version": ["3", "3-oof", "3", "3"], "drivers": [drivers, "[]", drivers, "[]"], "run_id": ["r1"] * 4}))
    assert main(args + ["--out", str(tmp_path / "plain")]) == 0
    assert main(args + ["--out", str(tmp_path / "risk"), "--risk-top", "3"]) == 0
    stem = "inspection_2023_seed42"
    assert not (tmp_path / "plain" / f"{stem}_risk.csv").exists()
    assert (tmp_path / "plain" / f"{stem}.csv").read_bytes() == (tmp_path / "risk" / f"{stem}.csv").read_bytes()
    risk = pd.read_csv(tmp_path / "risk" / f"{stem}_risk.csv", encoding="utf-8-sig", dtype=str)
    assert list(risk.columns)[:3] == ["风险排名 risk rank", "定点医药机构编号 institution code",
                                      "定点医药机构名称 institution name"]
    assert risk["定点医药机构编号 institution code"].tolist() == ["H007", "H005", "'=H006"]
    assert risk["风险排名 risk rank"].tolist() == ["1", "2", "3"]
    assert risk["定点医药机构名称 institution name"].tolist()[:2] == ["医院7", "医院5"]
    assert "次均费用 cost per visit 812.5 (z=6.1)" in risk["主要风险指标 main indicators"][0]
    drawn = set(pd.read_csv(tmp_path / "risk" / f"{stem}.csv", encoding="utf-8-sig", dtype=str)["定点医药机构编号"])
    assert risk["同时被双随机抽中 also drawn at random"].tolist() == [
        "是 yes" if c in drawn else "否 no" for c in ["H007", "H005", "=H006"]]
