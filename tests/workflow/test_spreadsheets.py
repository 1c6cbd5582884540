"""The workflow's spreadsheets (issues #13, #18): the feedback form with Chinese headers goes out with the
export and comes back through `fundguard feedback`; worksheets and the public sample list never carry a
formula from hospital text; identifiers stay text."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal

import openpyxl
import pandas as pd
import pytest

from pipelines.cli import main
from pipelines.contract import FEEDBACK_FORM
from pipelines.workflow import sampling, store
from pipelines.workflow.feedback import FIELDS, parse_feedback
from pipelines.workflow.sheets import read_form
from pipelines.workflow.worksheet import COLUMNS, build_worksheet, parse_worksheet
from pipelines.workflow import worksheet as wsheet
from tests.workflow.conftest import write_csv

UTC = dt.timezone.utc
FORMULA_STARTS = "=+-@\t\r\n"


def export_h1(lake, out) -> openpyxl.Workbook:
    assert main(["export", "--lake", str(lake.root), "--institution", "H1", "--period", "2023",
                 "--out", str(out)]) == 0
    return out / "H1_2023" / "feedback.xlsx"


def columns_by_header(ws) -> dict[str, int]:
    """Column number of each Chinese header of row 1 (what a clerk reads)."""
    return {c.value: c.column for c in ws[1] if c.value}


def fill(ws, answers: dict[str, dict[str, object]]) -> None:
    """Fill the form as a clerk does: find the row by 疑点编号 and the column by its Chinese header."""
    col = columns_by_header(ws)
    rows = {ws.cell(row=r, column=col["疑点编号"]).value: r for r in range(3, ws.max_row + 1)}
    for sid, cells in answers.items():
        for header, value in cells.items():
            ws.cell(row=rows[sid], column=col[header], value=value)


def test_feedback_form_round_trip_with_chinese_headers(lake, tmp_path, capsys):
    """export → the institution fills the Chinese-headed form → `fundguard feedback` loads every answer."""
    path = export_h1(lake, tmp_path / "out")
    wb = openpyxl.load_workbook(path)
    ws = wb["feedback"]
    labels = [c.value for c in ws[1]][:len(FEEDBACK_FORM)]
    assert labels == [FEEDBACK_FORM[c][0] for c in FEEDBACK_FORM]              # Chinese first
    assert all(re.search(r"[\u4e00-\u9fff]", str(c.value)) for c in ws[1] if c.value)
    assert [c.value for c in ws[2]][:len(FEEDBACK_FORM)] == list(FEEDBACK_FORM)  # English under them
    assert ws.cell(row=1, column=2).comment.text.startswith("answer:")
    fill(ws, {
        "S-H1-1": {"答复(确认/申诉)": "确认", "退回金额(元)": 1000},
        "S-H1-2": {"答复(确认/申诉)": "申诉", "理由说明": "医嘱齐全", "佐证材料编号": "00123"},
        "S-H1-4": {"答复(确认/申诉)": "确认", "退回金额(元)": 45.5, "理由说明": "-已退费"},
    })                                                                           # S-H1-3: not answered
    filled = tmp_path / "H1_feedback_filled.xlsx"
    wb.save(filled)
    capsys.readouterr()
    assert main(["feedback", "--lake", str(lake.root), "--institution", "H1", "--file", str(filled),
                 "--at", "2024-02-01"]) == 0
    out = capsys.readouterr().out
    assert "rows 行 4 = loaded 入库 3 + rejected 拒收 0 + not answered 未填写 1" in out
    ev = store.read_events(lake).set_index("suspect_id")
    assert ev.loc["S-H1-1", "status"] == "confirmed" and ev.loc["S-H1-1", "amount"] == Decimal("1000.00")
    assert (ev.loc["S-H1-2", "status"], ev.loc["S-H1-2", "evidence_ref"]) == ("disputed", "00123")
    assert ev.loc["S-H1-4", "reason"] == "-已退费" and set(ev["source_line"]) == {3, 4, 6}


def test_the_form_saved_as_csv_with_both_header_rows_is_read(lake, tmp_path):
    """A clerk may send the form back as CSV: both header rows come along; the English one is no answer."""
    path = export_h1(lake, tmp_path / "out")
    ws = openpyxl.load_workbook(path)["feedback"]
    fill(ws, {"S-H1-3": {"答复(确认/申诉)": "确认", "退回金额(元)": 60}})
    rows = [["" if v is None else v for v in r] for r in ws.iter_rows(values_only=True)]
    f = write_csv(tmp_path / "feedback.csv", rows[0], rows[1:])
    form = read_form(f, FIELDS, key="suspect_id")
    assert [line for line, _ in form.rows] == [3, 4, 5, 6]                       # row 2 is a header
    parsed = parse_feedback(form, institution="H1", received_at=dt.datetime(2024, 2, 1, tzinfo=UTC))
    assert [(d.suspect_id, d.status, d.amount, d.source_line) for d in parsed.decisions] == [
        ("S-H1-3", "confirmed", Decimal("60.00"), 5)]
    assert not parsed.rejects and parsed.unanswered == [3, 4, 6]


def test_a_second_header_row_names_a_column_the_first_does_not(tmp_path):
    f = write_csv(tmp_path / "fb.csv", ["疑点编号", "自查结果", "备用"],
                  [["suspect_id", "answer", ""], ["S-1", "确认", "x"]])
    form = read_form(f, FIELDS, key="suspect_id")
    assert form.rows == [(3, {"suspect_id": "S-1", "answer": "确认"})] and form.unknown_columns == ["备用"]


def test_a_first_answer_row_is_never_taken_for_a_header(tmp_path):
    f = write_csv(tmp_path / "fb.csv", ["疑点编号", "答复"], [["S-1", "answer"], ["S-2", "确认"]])
    form = read_form(f, FIELDS, key="suspect_id")
    assert [r["suspect_id"] for _, r in form.rows] == ["S-1", "S-2"]


# ------------------------------------------------------------------ worksheets and the sample list

def item(sid, **over):
    base = {"suspect_id": sid, "priority": 3, "rule_id": "daily_cap_x", "category": "超量收费",
            "psn_no": "3301030000000001", "mdtrt_id": "0330100000000000077", "feedetl_sn": "000045",
            "hilist_code": "00123", "event_time": pd.Timestamp("2023-03-10 09:00:00"),
            "amount": Decimal("120.00"), "evidence": "同日床位费计 2 次", "status": "published",
            "answer_amount": None, "answer_reason": None, "answer_evidence": None}
    return {**base, **over}


HOSTILE_ITEMS = pd.DataFrame([
    item("S-1", evidence='=HYPERLINK("http://evil.example","点此")', category="+1+1"),
    item("S-2", status="disputed", priority=1, answer_reason="-2+3", answer_evidence="@SUM(A1)"),
    item("S-3", evidence="\t=1+1", rule_id="\r=1"),
])


def no_formula(data: bytes, wb) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert not [n for n in z.namelist() if n.startswith("xl/worksheets/") and re.search(rb"<f[ >]", z.read(n))]
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    assert c.value[0] not in FORMULA_STARTS, (ws.title, c.coordinate, c.value)
                    texts.append(c.value)
    return texts


def test_worksheet_never_carries_a_formula_and_keeps_identifiers_as_text(tmp_path):
    data = build_worksheet(HOSTILE_ITEMS, institution="H1", institution_name="=cmd|' /C calc'!A0", period="2023")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    texts = no_formula(data, wb)
    for payload in ('=HYPERLINK("http://evil.example","点此")', "+1+1", "-2+3", "@SUM(A1)", "=cmd|' /C calc'!A0"):
        assert "'" + payload in texts, payload
    ws = wb.worksheets[0]
    header = 9                                                   # title, six labelled cells, one empty row
    names = [c for c, _ in COLUMNS]
    assert [ws.cell(row=header, column=j + 1).value for j in range(len(names))] == [h for _, h in COLUMNS]
    first = {names[j]: ws.cell(row=header + 1, column=j + 1) for j in range(len(names))}
    for col, value in (("psn_no", "3301030000000001"), ("mdtrt_id", "0330100000000000077"),
                       ("feedetl_sn", "000045"), ("hilist_code", "00123")):
        assert (first[col].value, first[col].data_type, first[col].number_format) == (value, "s", "@"), col
    assert first["amount"].data_type == "n" and first["no"].value == 1
    assert ws["B2"].number_format == "@" and ws["B2"].value == "H1"

    ws["B5"], ws["B6"] = "张三、李四", "2024-03-01"                 # the team fills it in and sends it back
    ws.cell(row=header + 1, column=names.index("conclusion") + 1, value="属实")
    ws.cell(row=header + 1, column=names.index("recovered_amount") + 1, value=100)
    path = tmp_path / "worksheet.xlsx"
    wb.save(path)
    parsed = parse_worksheet(read_form(path, wsheet.FIELDS, key="suspect_id"), institution="H1")
    assert [(d.suspect_id, d.status, d.amount) for d in parsed.decisions] == [("S-1", "upheld", Decimal("100.00"))]
    assert parsed.not_concluded == [header + 2, header + 3] and not parsed.rejects


@pytest.fixture
def hostile_draw():
    targets = pd.DataFrame([
        {"stratum": "三级", "fixmedins_code": "H001", "fixmedins_name": '=HYPERLINK("http://x","医院")',
         "hosp_lv": "02", "inspector_ids": "I1|I2", "inspector_names": "@张三|李四", "inspector_units": "-监管科|稽核科"},
        {"stratum": "二级", "fixmedins_code": "H002", "fixmedins_name": "第二人民医院", "hosp_lv": "05",
         "inspector_ids": "I3|I4", "inspector_names": "王五|赵六", "inspector_units": "监管科|稽核科"},
    ])
    return sampling.Draw(seed=7, targets=targets, strata=[], coverage=[])


def test_public_sample_list_neutralises_text_and_keeps_numbers(hostile_draw):
    t = sampling.public_list(hostile_draw, "2023")
    assert t.loc[0, "定点医药机构名称"] == "'=HYPERLINK(\"http://x\",\"医院\")"
    assert t.loc[0, "检查人员"] == "'@张三、李四" and t.loc[0, "检查人员单位"] == "'-监管科、稽核科"
    assert t.loc[1, "定点医药机构名称"] == "第二人民医院" and t["序号"].tolist() == [1, 2]
    text = t.to_csv(index=False)
    rows = list(csv.reader(io.StringIO(text)))
    assert all(not cell or cell[0] not in FORMULA_STARTS for row in rows for cell in row)
    html = sampling.public_html(hostile_draw, "2023", {"seed": 7, "drawn_at": "2023-03-01", "inputs": {}})
    assert "=HYPERLINK(&#34;http://x&#34;,&#34;医院&#34;)" in html and "'=HYPERLINK" not in html  # the page: as written
