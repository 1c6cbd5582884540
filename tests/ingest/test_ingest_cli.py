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
