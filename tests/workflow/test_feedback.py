"""Feedback ingestion: every row ends loaded, rejected (with file, line, field, reason) or not answered."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import openpyxl

from pipelines.workflow import store
from pipelines.workflow.feedback import ingest_feedback
from tests.workflow.conftest import write_csv

UTC = dt.timezone.utc
RECEIVED = dt.datetime(2024, 2, 20, 10, 0, tzinfo=UTC)
HEADER = ["suspect_id", "answer", "refund_amount", "reason", "evidence_ref"]


def ingest(lake, path, inst="H1", batch="b1"):
    return ingest_feedback(lake, path, institution=inst, received_at=RECEIVED, recorded_at=RECEIVED, batch_id=batch)


def test_feedback_csv_row_by_row(lake, tmp_path):
    f = write_csv(tmp_path / "feedback_H1.csv", HEADER, [
        ["S-H1-1", "confirmed", "1000.00", "", ""],             # line 2 loaded
        ["S-H1-2", "disputed", "", "医嘱齐全", "EV-001"],          # line 3 loaded
        ["S-NOPE", "confirmed", "1.00", "", ""],                # line 4 unknown id
        ["S-H2-1", "confirmed", "10.00", "", ""],               # line 5 another institution's
        ["S-H1-3", "confirmed", "12,3a", "", ""],               # line 6 malformed amount
        ["S-H1-4", "confirmed", "50.00", "", ""],               # line 7 above the suspect's 45.50
        ["S-H1-staged", "confirmed", "1.00", "", ""],           # line 8 screened, never published
        ["S-H1-3", "", "", "", ""],                             # line 9 listed, not answered yet
        ["S-H1-4", "maybe", "", "", ""],                        # line 10 unknown answer
        ["", "confirmed", "1.00", "", ""],                      # line 11 no suspect id
    ])
    r = ingest(lake, f)
    assert (r.rows, r.loaded, r.rejected, r.not_answered) == (10, 2, 7, 1)
    assert r.reconciles
    by_line = {x.source_line: (x.field, x.reason) for x in r.rejects}
    assert set(by_line) == {4, 5, 6, 7, 8, 10, 11}
    assert "unknown suspect id" in by_line[4][1]
    assert "another institution" in by_line[5][1]
    assert by_line[6][0] == "refund_amount" and "malformed amount" in by_line[6][1]
    assert by_line[7][0] == "amount" and "exceeds" in by_line[7][1]
    assert "never published" in by_line[8][1]
    assert by_line[10][0] == "answer"
    assert by_line[11][0] == "suspect_id"
    # what the lake holds: the two events and the seven rejections, with file and line
    ev = store.read_events(lake)
    assert sorted(ev["suspect_id"]) == ["S-H1-1", "S-H1-2"]
    assert ev.set_index("suspect_id").loc["S-H1-1", "amount"] == Decimal("1000.00")
    assert set(ev["source_file"]) == {"feedback_H1.csv"} and set(ev["source_line"]) == {2, 3}
    rej = store.read_rejects(lake, "b1")
    assert sorted(rej["source_line"]) == [4, 5, 6, 7, 8, 10, 11] and set(rej["source_file"]) == {"feedback_H1.csv"}
    cur = store.read_cases(lake, institution="H1", period="2023").set_index("suspect_id")
    assert cur.loc["S-H1-1", "status"] == "confirmed" and cur.loc["S-H1-2", "status"] == "disputed"
    assert cur.loc["S-H1-3", "status"] == "published"


def test_resending_the_same_file_adds_nothing(lake, tmp_path):
    f = write_csv(tmp_path / "fb.csv", HEADER, [["S-H1-1", "confirmed", "1000", "", ""]])
    assert ingest(lake, f).loaded == 1
    again = ingest(lake, f, batch="b2")
    assert (again.loaded, again.rejected) == (0, 1)
    assert "confirmed → confirmed" in again.rejects[0].reason
    assert len(store.read_events(lake)) == 1


def test_feedback_xlsx_with_title_rows_and_chinese_labels(lake, tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["疑点自查反馈表 H2"])
    ws.append(["机构编号", "H2"])
    ws.append(["疑点编号 suspect_id", "规则", "涉及金额", "反馈结论 answer", "退回金额 refund_amount",
               "申诉理由 reason", "证据材料编号 evidence_ref"])
    ws.append(["S-H2-1", "duplicate_x", 2500, "确认 confirmed", 2500, None, None])    # line 4
    ws.append(["S-H2-2", "daily_cap_x", 30, "申诉", None, "系统重复上传", "EV-9"])      # line 5
    ws.append([None] * 7)                                                           # blank: not a row
    ws.append(["S-H2-3", "duplicate_x", 70, "确认", 70.001, None, None])              # line 7: 3 decimals
    f = tmp_path / "feedback.xlsx"
    wb.save(f)
    r = ingest(lake, f, inst="H2")
    assert (r.rows, r.loaded, r.rejected) == (3, 2, 1) and r.reconciles
    assert r.rejects[0].source_line == 7 and r.rejects[0].field == "refund_amount"
    ev = store.read_events(lake).set_index("suspect_id")
    assert ev.loc["S-H2-1", "status"] == "confirmed" and ev.loc["S-H2-2", "evidence_ref"] == "EV-9"


def test_feedback_with_the_templates_chinese_labels(lake, tmp_path):
    f = write_csv(tmp_path / "fb.csv", ["疑点编号", "答复(确认/申诉)", "退回金额(元)", "理由说明", "佐证材料编号", "涉及金额(元)(参考)"],
                  [["S-H3-1", "申诉", "", "已退费", "附件1", "15.00"]])
    r = ingest(lake, f, inst="H3")
    assert (r.loaded, r.rejected) == (1, 0)
    ev = store.read_events(lake).iloc[0]
    assert (ev["status"], ev["reason"], ev["evidence_ref"]) == ("disputed", "已退费", "附件1")


def test_a_file_without_the_key_column_is_refused_whole(lake, tmp_path):
    import pytest

    from pipelines.workflow.sheets import FormError
    f = write_csv(tmp_path / "fb.csv", ["id", "answer"], [["S-H1-1", "confirmed"]])
    with pytest.raises(FormError, match="suspect_id"):
        ingest(lake, f)
    assert not lake.exists(store.EVENTS) and not lake.exists(store.REJECTS)
