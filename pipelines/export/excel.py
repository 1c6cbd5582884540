"""The package's Excel files: the suspect list (suspects.xlsx) and the self-inspection form (feedback.xlsx)."""
from __future__ import annotations

import datetime as dt
import io
import unicodedata
from typing import Mapping, Sequence


from pipelines.contract import SEVERITY_LABELS
from pipelines.contract.spreadsheet import IDENTIFIER_COLUMNS, put_cell
from pipelines.export.records import (FEEDBACK_CHOICES, FEEDBACK_COLUMNS, FEEDBACK_LABELS, FEEDBACK_REF_COLUMNS, FORMAT,
                                      LIST_COLUMNS, PackageInfo, text_of, total_amount)

# ------------------------------------------------------------------------------------------ Excel

def _display_width(value) -> int:
    s = value if isinstance(value, str) else text_of("", value)
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


_WIDTH_CAP = {"evidence": 70, "input_versions": 40, "rule_name": 36}


def _set_widths(ws, columns: Sequence[str], headers: Sequence[str], records: Sequence[Mapping],
                sample: int = 500) -> None:
    from openpyxl.utils import get_column_letter
    for i, (col, head) in enumerate(zip(columns, headers), start=1):
        widest = max([_display_width(head)] + [_display_width(r.get(col)) for r in records[:sample]])
        if col in ("event_time", "published_at", "ref_event_time"):
            widest = max(widest, 19)
        ws.column_dimensions[get_column_letter(i)].width = min(widest + 2, _WIDTH_CAP.get(col, 48))


def _header(ws, labels: Sequence[str], row: int = 1, *, second: bool = False) -> None:
    """A header row (bold); `second`: the English names under the Chinese labels (grey italic)."""
    from openpyxl.styles import Alignment, Font, PatternFill
    fill = PatternFill("solid", fgColor="DDEBF7")
    font = Font(italic=True, color="595959") if second else Font(bold=True)
    for i, label in enumerate(labels, start=1):
        c = put_cell(ws, row, i, label)
        c.font = font
        c.fill = fill
        c.alignment = Alignment(vertical="center")
    ws.freeze_panes = f"A{row + 1}"


def _workbook(info: PackageInfo):
    from openpyxl import Workbook
    wb = Workbook()
    stamp = info.generated_at.astimezone(dt.timezone.utc).replace(tzinfo=None) \
        if info.generated_at.tzinfo else info.generated_at
    wb.properties.created = stamp
    wb.properties.modified = stamp
    wb.properties.creator = "FundGuard"
    return wb


def _save(wb) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _excel_value(col: str, value):
    if value is None:
        return None
    if col == "severity":
        return SEVERITY_LABELS.get(value, value)
    if col == "amount":
        return float(value)
    if col == "published_at" and isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    return value


def _about_rows(info: PackageInfo, records: Sequence[Mapping], run_ids: Sequence[str],
                fingerprints: Sequence[str]) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [
        ("机构编号 Institution", info.institution),
        ("机构名称 Name", info.institution_name or ""),
        ("期间 Period", info.period),
        ("疑点数 Suspects", len(records)),
        ("涉及金额合计(元) Total amount (CNY)", float(total_amount(records))),
        ("运行编号 Run ids", ", ".join(run_ids)),
        ("规则集指纹 Rule-set fingerprint", ", ".join(fingerprints)),
        ("生成时间(UTC) Generated at", info.generated_iso),
        ("表头 Headers", "本表为中文表头；suspects.csv 使用英文标准字段名 (contract §5) / Chinese headers here, "
                         "English canonical names in suspects.csv"),
        ("时间 Times", "发生时间为就诊地时间；发布时间为 UTC / event_time local, published_at UTC"),
        ("编号 Identifiers", "编号列为文本单元格，保留前导零与全部位数 / identifier columns are text cells: "
                             "leading zeros and every digit kept"),
        ("公式 Formulas", "以 = + - @ 开头的文字前加 ' 显示为文本 / text beginning with = + - @ carries a "
                          "leading ' and is shown as text, never run as a formula"),
    ]
    if not records:
        rows.insert(0, ("说明 Note", "本期该机构无疑点 / No suspects for this institution in this period"))
    return rows


def build_xlsx(records: Sequence[Mapping], info: PackageInfo, run_ids: Sequence[str] = (),
               fingerprints: Sequence[str] = ()) -> bytes:
    """The suspect list for people: Chinese headers, severity labels, numeric amounts, frozen header."""
    from openpyxl.styles import PatternFill
    wb = _workbook(info)
    ws = wb.active
    ws.title = "疑点清单"
    columns = [c for c, _ in LIST_COLUMNS]
    labels = [label for _, label in LIST_COLUMNS]
    _header(ws, labels)
    formats = {"amount": "#,##0.00", "event_time": "yyyy-mm-dd hh:mm:ss", "published_at": "yyyy-mm-dd hh:mm:ss"}
    high_fill = PatternFill("solid", fgColor="FCE4D6")
    amount_col = columns.index("amount") + 1
    for i, r in enumerate(records, start=2):
        for j, col in enumerate(columns, start=1):
            cell = put_cell(ws, i, j, _excel_value(col, r[col]), text=col in IDENTIFIER_COLUMNS)
            if col in formats:
                cell.number_format = formats[col]
        if info.high_amount is not None and r["amount"] is not None and r["amount"] >= info.high_amount:
            ws.cell(row=i, column=amount_col).fill = high_fill
    if records:
        ws.auto_filter.ref = ws.dimensions
    _set_widths(ws, columns, labels, records)

    about = wb.create_sheet("说明 About")
    for i, (k, v) in enumerate(_about_rows(info, records, run_ids, fingerprints), start=1):
        put_cell(about, i, 1, k)
        put_cell(about, i, 2, v)
    about.column_dimensions["A"].width = 36
    about.column_dimensions["B"].width = 90
    return _save(wb)


#: what to enter in each column of the feedback form (the header's comment and the instructions sheet)
FEEDBACK_HELP = {
    "suspect_id": "勿改 / do not change",
    "answer": "下拉选择：确认(认可疑点, confirmed) 或 申诉(不认可, disputed)",
    "refund_amount": "确认时应退回医保基金的金额，数字，≥0 / amount to refund, CNY",
    "reason": "申诉理由或整改说明 / reason for a dispute or the correction made",
    "evidence_ref": "随附材料的文件名或编号 / file name or number of supporting documents",
}
_REF_HELP = "仅供参考，导入时忽略 / context only, ignored on import"
#: the form's first data row: row 1 the Chinese headers, row 2 the canonical English names
FEEDBACK_FIRST_ROW = 3


def build_feedback_xlsx(records: Sequence[Mapping], info: PackageInfo) -> bytes:
    """Template for the institution's answers: Chinese headers (contract.FEEDBACK_FORM's first label) over
    the English names, one row per suspect id, a 确认/申诉 dropdown on `answer`."""
    from openpyxl.comments import Comment
    wb = _workbook(info)
    ws = wb.active
    ws.title = "feedback"
    columns = list(FEEDBACK_COLUMNS + FEEDBACK_REF_COLUMNS)
    labels = [FEEDBACK_LABELS[c] for c in columns]
    _header(ws, labels)
    _header(ws, columns, row=2, second=True)
    for j, col in enumerate(columns, start=1):
        ws.cell(row=1, column=j).comment = Comment(f"{col}: {FEEDBACK_HELP.get(col, _REF_HELP)}", "FundGuard")
    last = _feedback_rows(ws, records, columns)
    _feedback_validations(ws, last)
    _set_widths(ws, columns, labels, [
        {"suspect_id": r["suspect_id"], "ref_rule_name": r["rule_name"], "ref_category": r["category"],
         "ref_amount": r["amount"], "ref_event_time": r["event_time"], "ref_evidence": r["evidence"]}
        for r in records])
    for col, width in (("B", 16), ("C", 16), ("D", 40), ("E", 20)):
        ws.column_dimensions[col].width = width
    _feedback_guide(wb.create_sheet("填写说明 Instructions"), records, info)
    meta = wb.create_sheet("meta")
    for i, (k, v) in enumerate((("format", FORMAT + "/feedback"), ("institution", info.institution),
                                ("period", info.period), ("generated_at", info.generated_iso),
                                ("suspects", len(records))), start=1):
        put_cell(meta, i, 1, k)
        put_cell(meta, i, 2, v, text=k == "institution")
    return _save(wb)


def _feedback_rows(ws, records: Sequence[Mapping], columns: Sequence[str]) -> int:
    """One row per suspect: its id (text), empty cells to fill (reason and evidence number as text, so a
    file number keeps its zeros), then the grey read-only context. Returns the last row (one when empty)."""
    from openpyxl.styles import Font, PatternFill
    grey = Font(color="808080")
    ref_fill = PatternFill("solid", fgColor="F2F2F2")
    formats = {"ref_amount": "#,##0.00", "ref_event_time": "yyyy-mm-dd hh:mm:ss"}
    for i, r in enumerate(records, start=FEEDBACK_FIRST_ROW):
        put_cell(ws, i, 1, r["suspect_id"], text=True)
        ws.cell(row=i, column=3).number_format = "#,##0.00"
        for j in (4, 5):
            ws.cell(row=i, column=j).number_format = "@"
        refs = (r["rule_name"], r["category"], _excel_value("amount", r["amount"]), r["event_time"], r["evidence"])
        for j, v in enumerate(refs, start=len(FEEDBACK_COLUMNS) + 1):
            c = put_cell(ws, i, j, v)
            c.font, c.fill = grey, ref_fill
            if columns[j - 1] in formats:
                c.number_format = formats[columns[j - 1]]
    return FEEDBACK_FIRST_ROW + max(len(records), 1) - 1


def _feedback_validations(ws, last: int) -> None:
    """The 确认/申诉 drop-down on `answer` (B) and amount ≥ 0 on `refund_amount` (C)."""
    from openpyxl.worksheet.datavalidation import DataValidation
    answer = DataValidation(type="list", formula1='"' + ",".join(FEEDBACK_CHOICES) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="答复 answer",
                            error="请选择 确认(confirmed) 或 申诉(disputed)",
                            promptTitle="答复 answer", prompt="确认 = confirmed, 申诉 = disputed",
                            showInputMessage=True)
    refund = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                            showErrorMessage=True, errorTitle="退回金额 refund_amount", error="金额应 ≥ 0 / amount ≥ 0")
    for dv, col in ((answer, "B"), (refund, "C")):
        ws.add_data_validation(dv)
        dv.add(f"{col}{FEEDBACK_FIRST_ROW}:{col}{last}")


def _feedback_guide(guide, records: Sequence[Mapping], info: PackageInfo) -> None:
    """The form's instructions sheet: what to enter in each column, and the package it belongs to."""
    lines = [
        ("字段 Column", "表头 Header", "填写要求 What to enter"),
        *((col, FEEDBACK_LABELS[col], FEEDBACK_HELP[col]) for col in FEEDBACK_COLUMNS),
        ("ref_*", "…(参考)", _REF_HELP),
        ("表头 Headers", "第1行中文，第2行英文字段名", "两行表头均勿改，从第3行起填写 / row 1 Chinese headers, "
                                             "row 2 English names: keep both, answer from row 3"),
        ("", "", ""),
        ("机构 Institution", info.institution, info.institution_name or ""),
        ("期间 Period", info.period, ""),
        ("疑点数 Suspects", len(records), "本期无疑点，无需填写 / nothing to answer" if not records else ""),
    ]
    for i, row in enumerate(lines, start=1):
        for j, v in enumerate(row, start=1):
            put_cell(guide, i, j, v, text=j == 2 and row[0] == "机构 Institution")
    for col, width in (("A", 18), ("B", 28), ("C", 80)):
        guide.column_dimensions[col].width = width
