"""`fundguard maintain`: optimize and vacuum a lake, keeping what `reproduce` needs; refuse a non-lake."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from pipelines.cli import main
from pipelines.storage import Lake


def test_maintain_keeps_referenced_versions_and_removes_the_rest(tmp_path, capsys):
    lake = Lake(tmp_path / "lake")
    lake.append("silver/psn", pa.table({"psn_no": ["P1"]}))                     # v0, referenced below
    lake.overwrite("silver/psn", pa.table({"psn_no": ["P2"]}))                  # v1 tombstones v0's file
    lake.append("silver/diag", pa.table({"mdtrt_id": ["M1"]}))
    [unreferenced] = lake.file_uris("silver/diag", version=0)
    lake.overwrite("silver/diag", pa.table({"mdtrt_id": ["M2"]}))               # v0's file not referenced
    lake.append("gold/suspects", pa.table({"input_versions": [json.dumps({"silver/psn": 0})]}))

    assert main(["maintain", "--lake", str(lake.root), "--retention-hours", "0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run" in out and "silver/diag" in out
    assert len(lake.vacuum("silver/diag", 0, dry_run=True)) == 1                # the dry run removed nothing
    assert Path(unreferenced.removeprefix("file://")).exists()

    assert main(["maintain", "--lake", str(lake.root), "--retention-hours", "0"]) == 0
    assert not Path(unreferenced.removeprefix("file://")).exists()              # the unreferenced file is gone
    assert lake.read("silver/diag").column("mdtrt_id").to_pylist() == ["M2"]
    assert lake.read("silver/psn", version=0).column("psn_no").to_pylist() == ["P1"]   # reproduce still can


def test_maintain_refuses_what_is_not_a_lake(tmp_path, capsys):
    assert main(["maintain", "--lake", str(tmp_path / "nowhere")]) == 2
    assert "not a lake" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["maintain", "--lake", str(tmp_path / "empty")]) == 2
