"""`fundguard ingest`: exit codes and the printed reconciliation."""
from __future__ import annotations

from pipelines.cli import main

from . import drops


def test_cli_loads_and_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FUNDGUARD_PII_SALT", "cli-salt")
    d = drops.write_canonical_drop(tmp_path / "d", {"psn": drops.PSN})
    rc = main(["ingest", "--landing", str(d), "--lake", str(tmp_path / "lake"), "--no-progress",
               "--kb-dir", str(tmp_path / "nokb")])
    out = capsys.readouterr().out
    assert rc == 0
    assert "入库 loaded" in out and "隔离 quarantined" in out and "psn.csv" in out


def test_cli_refused_file(tmp_path, capsys):
    d = drops.write_canonical_drop(tmp_path / "d", {"psn": drops.PSN})
    (d / "claims.csv").write_text("a\n1\n")
    rc = main(["ingest", "--landing", str(d), "--lake", str(tmp_path / "lake"), "--no-progress"])
    assert rc != 0
    assert "claims.csv" in capsys.readouterr().err


def test_cli_reports_the_visits_of_a_quarantined_person_as_incomplete(tmp_path, capsys, monkeypatch):
    """Contract §1 through `fundguard ingest` (the silver suite ran only under `run` and the DAG): P2's row is
    quarantined (gend 9), its visits M2 and M3 stay loaded and are reported as incomplete."""
    monkeypatch.setenv("FUNDGUARD_PII_SALT", "cli-salt")
    psn = [row[:] for row in drops.PSN]
    psn[2][3] = "9"
    d = drops.write_canonical_drop(tmp_path / "d", {**drops.CANONICAL, "psn": psn})
    rc = main(["ingest", "--landing", str(d), "--lake", str(tmp_path / "lake"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    assert any("incomplete visit" in line and "M2, M3" in line for line in out.splitlines()), out


def test_cli_rolls_back_a_load_the_silver_suite_fails(tmp_path, capsys, monkeypatch):
    """A settlement whose total differs from its fee lines fails the silver suite: exit 2, the failure named,
    and silver as it was before the load (nothing of the drop kept)."""
    from pipelines.storage import Lake

    monkeypatch.setenv("FUNDGUARD_PII_SALT", "cli-salt")
    setl = [row[:] for row in drops.SETL]
    setl[2][5] = "99.99"                      # S2's medfee_sumamt; its one fee line F5 is 25.50
    d = drops.write_canonical_drop(tmp_path / "d", {**drops.CANONICAL, "setl": setl})
    lake = tmp_path / "lake"
    rc = main(["ingest", "--landing", str(d), "--lake", str(lake), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "S2" in err and "校验未通过" in err, err
    assert not Lake(lake).exists("silver/setl") or Lake(lake).read("silver/setl").num_rows == 0

