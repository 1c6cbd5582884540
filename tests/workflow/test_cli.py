"""The thin commands: wiring and exit codes (0 all loaded, 1 some rows rejected, 2 refused)."""
from __future__ import annotations

import openpyxl

from pipelines.cli import main
from pipelines.workflow import store
from tests.workflow.conftest import write_csv


def test_feedback_worksheet_case_commands(lake, tmp_path, capsys):
    root = str(lake.root)
    ok = write_csv(tmp_path / "ok.csv", ["suspect_id", "answer", "refund_amount"], [["S-H1-1", "确认", "100"]])
    assert main(["feedback", "--lake", root, "--institution", "H1", "--file", str(ok), "--at", "2024-02-01"]) == 0
    bad = write_csv(tmp_path / "bad.csv", ["suspect_id", "answer", "refund_amount"], [["S-H2-1", "确认", "1"]])
    assert main(["feedback", "--lake", root, "--institution", "H1", "--file", str(bad), "--at", "2024-02-01"]) == 1
    assert "line     2" in capsys.readouterr().out
    assert main(["feedback", "--lake", root, "--institution", "H1", "--file", str(tmp_path / "nope.csv")]) == 2

    assert main(["worksheet", "make", "--lake", root, "--period", "2023", "--out", str(tmp_path / "ws"),
                 "--institution", "H1"]) == 0
    path = tmp_path / "ws" / "worksheet_H1_2023.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws["B5"], ws["B6"] = "张三、李四", "2024-03-01"
    ws["Q10"], ws["R10"] = "属实", 100          # first item: S-H1-1 (confirmed 1200 ≥ high amount)
    wb.save(path)
    assert ws["B10"].value == "S-H1-1"
    assert main(["worksheet", "ingest", "--lake", root, "--file", str(path), "--institution", "H1"]) == 0
    assert main(["worksheet", "ingest", "--lake", root, "--file", str(path), "--institution", "H2"]) == 2

    rec = write_csv(tmp_path / "rec.csv", ["疑点编号", "追回金额", "结案日期", "经办人"], [["S-H1-1", "100", "2024-03-05", "王五"]])
    assert main(["case", "close", "--lake", root, "--file", str(rec)]) == 0
    capsys.readouterr()
    assert main(["case", "status", "--lake", root, "--period", "2023", "--out", str(tmp_path / "cases.csv")]) == 0
    out = capsys.readouterr().out
    assert out.split("closed")[1].split()[1] == "1" and (tmp_path / "cases.csv").exists()
    assert main(["case", "history", "--lake", root, "--suspect", "S-H1-1"]) == 0
    assert store.read_events(lake).sort_values("seq")["status"].tolist() == ["confirmed", "upheld", "closed"]
