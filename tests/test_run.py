"""`fundguard run` as its users meet it (contract §6): exit 0 when published, non-zero with the reason
when not; a refused drop names the file and loads nothing; a failed gate leaves gold/suspects as it was."""
from __future__ import annotations

import shutil


from pipelines import config
from pipelines.cli import main
from pipelines.storage import Lake


def test_run_publishes_and_prints_a_summary(small_drop, tmp_path, capsys):
    lake = tmp_path / "lake"
    assert main(["run", "--landing", str(small_drop), "--lake", str(lake), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "入库对账 reconciliation" in out and "已发布 Published" in out
    assert "规则族 family" in out and "违规类别 category" in out and "定点医药机构 institution" in out
    gold = Lake(lake).read("gold/suspects")
    assert gold.num_rows > 0
    assert set(gold.column("run_id").to_pylist()) and None not in gold.column("published_at").to_pylist()


def test_bad_period_is_a_usage_error(small_drop, tmp_path, capsys):
    assert main(["run", "--landing", str(small_drop), "--lake", str(tmp_path / "l"), "--period", "2023-13"]) == 2
    assert "YYYY or YYYY-MM" in capsys.readouterr().err
    assert not (tmp_path / "l" / "silver").exists()


def test_refused_file_names_it_and_loads_nothing(small_drop, tmp_path, capsys):
    drop = tmp_path / "landing"
    shutil.copytree(small_drop, drop)
    (drop / "claims_extra.csv").write_text("a,b\n1,2\n", encoding="utf-8")  # unknown entity `claims`
    lake = tmp_path / "lake"
    assert main(["run", "--landing", str(drop), "--lake", str(lake), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "claims_extra.csv" in err
    assert not Lake(lake).exists("silver/fee_list") and not Lake(lake).exists("gold/suspects")


def test_failed_gate_exits_1_and_leaves_gold_as_it_was(small_drop, tmp_path, capsys, monkeypatch):
    lake = tmp_path / "lake"
    assert main(["run", "--landing", str(small_drop), "--lake", str(lake), "--quiet"]) == 0
    version = Lake(lake).version("gold/suspects")
    # a conf layer where any rule with a hit "jumps": band 0.5 of the published list, from 1 hit on
    conf = tmp_path / "conf"
    shutil.copytree(config.conf_dir(), conf, ignore=shutil.ignore_patterns("local"))
    (conf / "local").mkdir()
    (conf / "local" / "fundguard.yml").write_text("gate:\n  hit_rate_band: 0.5\n  hit_rate_min_hits: 1\n")
    monkeypatch.setenv("FUNDGUARD_CONF_DIR", str(conf))
    capsys.readouterr()
    assert main(["run", "--landing", str(small_drop), "--lake", str(lake), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "quality gate failed" in captured.err and "band" in captured.err
    assert Lake(lake).version("gold/suspects") == version
