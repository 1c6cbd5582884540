"""The package's Excel files: the suspect list (suspects.xlsx) and the self-inspection form (feedback.xlsx)."""
from __future__ import annotations

import datetime as dt
import io
import unicodedata
from typing import Mapping, Sequence


from pipelines.contract import (SEVERITY_LABELS)
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


def _put(ws, row: int, col: int, value):
    """Write a cell; text is always text (a value starting with '=' never becomes a formula)."""
    cell = ws.cell(row=row, column=col, value=value)
    if isinstance(value, str) and cell.data_type == "f":
        cell.data_type = "s"
    return cell


def _header(ws, labels: Sequence[str]) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    fill = PatternFill("solid", fgColor="DDEBF7")
    for i, label in enumerate(labels, start=1):
        c = _put(ws, 1, i, label)
        c.font = Font(bold=True)
        c.fill = fill
        c.alignment = Alignment(vertical="center")
    ws.freeze_panes = "A2"


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
            cell = _put(ws, i, j, _excel_value(col, r[col]))
            if col in formats:
                cell.number_format = formats[col]
        if info.high_amount is not None and r["amount"] is not None and r["amount"] >= info.high_amount:
            ws.cell(row=i, column=amount_col).fill = high_fill
    if records:
        ws.auto_filter.ref = ws.dimensions
    _set_widths(ws, columns, labels, records)

    about = wb.create_sheet("说明 About")
    for i, (k, v) in enumerate(_about_rows(info, records, run_ids, fingerprints), start=1):
        _put(about, i, 1, k)
        _put(about, i, 2, v)
    about.column_dimensions["A"].width = 36
    about.column_dimensions["B"].width = 90
    return _save(wb)


def build_feedback_xlsx(records: Sequence[Mapping], info: PackageInfo) -> bytes:
    """Template for the institution's answers: one row per suspect id, a 确认/申诉 dropdown on `answer`."""
    from openpyxl.comments import Comment
    from openpyxl.styles import Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation
    wb = _workbook(info)
    ws = wb.active
    ws.title = "feedback"
    columns = list(FEEDBACK_COLUMNS + FEEDBACK_REF_COLUMNS)
    _header(ws, columns)
    for j, col in enumerate(columns, start=1):
        ws.cell(row=1, column=j).comment = Comment(FEEDBACK_LABELS[col], "FundGuard")
    grey = Font(color="808080")
    ref_fill = PatternFill("solid", fgColor="F2F2F2")
    for i, r in enumerate(records, start=2):
        _put(ws, i, 1, r["suspect_id"])
        refs = (r["rule_name"], r["category"], _excel_value("amount", r["amount"]), r["event_time"], r["evidence"])
        for j, v in enumerate(refs, start=len(FEEDBACK_COLUMNS) + 1):
            c = _put(ws, i, j, v)
            c.font, c.fill = grey, ref_fill
            if columns[j - 1] == "ref_amount":
                c.number_format = "#,##0.00"
            if columns[j - 1] == "ref_event_time":
                c.number_format = "yyyy-mm-dd hh:mm:ss"
        ws.cell(row=i, column=3).number_format = "#,##0.00"
    last = max(len(records), 1) + 1
    answer = DataValidation(type="list", formula1='"' + ",".join(FEEDBACK_CHOICES) + '"', allow_blank=True,
                            showErrorMessage=True, errorTitle="答复 answer",
                            error="请选择 确认(confirmed) 或 申诉(disputed)",
                            promptTitle="答复 answer", prompt="确认 = confirmed, 申诉 = disputed",
                            showInputMessage=True)
    refund = DataValidation(type="decimal", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                            showErrorMessage=True, errorTitle="退回金额 refund_amount", error="金额应 ≥ 0 / amount ≥ 0")
    for dv, col in ((answer, "B"), (refund, "C")):
        ws.add_data_validation(dv)
        dv.add(f"{col}2:{col}{last}")
    _set_widths(ws, columns, columns, [
        {"suspect_id": r["suspect_id"], "ref_rule_name": r["rule_name"], "ref_category": r["category"],
         "ref_amount": r["amount"], "ref_event_time": r["event_time"], "ref_evidence": r["evidence"]}
        for r in records])
    for col, width in (("B", 14), ("C", 16), ("D", 40), ("E", 20)):
        ws.column_dimensions[col].width = width
    _feedback_guide(wb.create_sheet("填写说明 Instructions"), records, info)
    meta = wb.create_sheet("meta")
    for i, (k, v) in enumerate((("format", FORMAT + "/feedback"), ("institution", info.institution),
                                ("period", info.period), ("generated_at", info.generated_iso),
                                ("suspects", len(records))), start=1):
        _put(meta, i, 1, k)
        _put(meta, i, 2, v)
    return _save(wb)


def _feedback_guide(guide, records: Sequence[Mapping], info: PackageInfo) -> None:
    """The form's instructions sheet: what to enter in each column, and the package it belongs to."""
    lines = [
        ("字段 Column", "中文", "填写要求 What to enter"),
        ("suspect_id", "疑点编号", "勿改 / do not change"),
        ("answer", "答复", "下拉选择：确认(认可疑点, confirmed) 或 申诉(不认可, disputed)"),
        ("refund_amount", "退回金额(元)", "确认时应退回医保基金的金额，数字，≥0 / amount to refund, CNY"),
        ("reason", "理由说明", "申诉理由或整改说明 / reason for a dispute or the correction made"),
        ("evidence_ref", "佐证材料编号", "随附材料的文件名或编号 / file name or number of supporting documents"),
        ("ref_*", "参考信息", "仅供参考，导入时忽略 / context only, ignored on import"),
        ("", "", ""),
        ("机构 Institution", info.institution, info.institution_name or ""),
        ("期间 Period", info.period, ""),
        ("疑点数 Suspects", len(records), "本期无疑点，无需填写 / nothing to answer" if not records else ""),
    ]
    for i, row in enumerate(lines, start=1):
        for j, v in enumerate(row, start=1):
            _put(guide, i, j, v)
    for col, width in (("A", 18), ("B", 16), ("C", 80)):
        guide.column_dimensions[col].width = width
