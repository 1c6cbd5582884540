"""On-site worksheets (现场检查工作底稿): one .xlsx per institution, pre-filled with the items to verify,
filled in by the inspection team and ingested back as verification results (upheld 属实 / dismissed 不属实).

Items to verify are the institution's open cases (published, confirmed or disputed): disputed first,
then amounts at or above `worksheet.high_amount`, then the rest, larger amounts first. The team block
above the table (检查人员 inspectors, 检查日期 inspection date) applies to every row; a worksheet without
them has every concluded row rejected. Rows with no conclusion are counted as not concluded, not lost.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd

from pipelines.contract.spreadsheet import IDENTIFIER_COLUMNS, put_cell
from pipelines.workflow.cases import STATUS_LABELS, Decision, Reject
from pipelines.workflow.sheets import (CellError, Form, FormError, RowReject, answer_rows, meta_value,
                                       parse_date, parse_decision_cells, text)

OPEN_STATES = ("published", "confirmed", "disputed")
PRIORITY_LABELS = {1: "申诉 disputed", 2: "大额 high amount", 3: "一般 other"}

#: (column, header) of the worksheet table; the last three are filled in on site.
COLUMNS = (
    ("no", "序号 no"), ("suspect_id", "疑点编号 suspect_id"), ("priority", "优先级 priority"),
    ("rule_id", "规则 rule_id"), ("category", "违规类别 category"), ("psn_no", "人员编号 psn_no"),
    ("mdtrt_id", "就诊ID mdtrt_id"), ("feedetl_sn", "费用明细流水号 feedetl_sn"),
    ("hilist_code", "医保目录编码 hilist_code"), ("event_time", "发生时间 event_time"),
    ("amount", "涉及金额 amount"), ("evidence", "疑点依据 evidence"), ("status", "当前状态 status"),
    ("answer_amount", "机构退回金额 institution_refund"), ("answer_reason", "机构申诉理由 institution_reason"),
    ("answer_evidence", "机构证据 institution_evidence"),
    ("conclusion", "核查结论 conclusion (属实/不属实)"), ("recovered_amount", "应追回金额 recovered_amount"),
    ("notes", "备注 notes"),
)
FIELDS: dict[str, tuple[str, ...]] = {
    "suspect_id": ("疑点编号",),
    "conclusion": ("核查结论", "结论"),
    "recovered_amount": ("应追回金额", "追回金额"),
    "notes": ("备注", "核查说明"),
}
CONCLUSIONS: dict[str, tuple[str, ...]] = {"upheld": ("属实", "uphold"), "dismissed": ("不属实", "dismiss")}
META = {"institution": ("机构编号", "institution"), "inspectors": ("检查人员", "inspectors"),
        "date": ("检查日期", "inspection_date")}


def items_to_verify(cases: pd.DataFrame, *, high_amount: Decimal, max_items: int = 0) -> pd.DataFrame:
    """Open cases in the order the team checks them (disputed, high amount, the rest; larger first)."""
    open_ = cases[cases["status"].isin(OPEN_STATES)].copy()
    amt = open_["amount"].map(lambda v: Decimal(str(v)))
    open_["priority"] = [1 if s == "disputed" else 2 if a >= high_amount else 3
                         for s, a in zip(open_["status"], amt)]
    open_["_amt"] = amt
    open_ = open_.sort_values(["priority", "_amt", "suspect_id"], ascending=[True, False, True]).drop(columns="_amt")
    if max_items:
        open_ = open_.head(max_items)
    return open_.reset_index(drop=True)


def worksheet_id(institution: str, period: str, suspect_ids) -> str:
    return hashlib.sha256("|".join([institution, period, *suspect_ids]).encode()).hexdigest()[:16]


FILL_IN = "FFF2CC"          # background of the cells the team fills in
TEAM_BLOCK_ROWS = 7         # the title row and the six labelled cells under it
ON_SITE = ("conclusion", "recovered_amount", "notes")
INSTRUCTIONS = (
    ("检查人员 inspectors", "全部检查人员姓名，用顿号分隔 / every inspector of the team"),
    ("检查日期 inspection_date", "yyyy-mm-dd"),
    ("核查结论 conclusion", "属实 (upheld) 或 不属实 (dismissed)；未核查的留空 / leave blank if not checked"),
    ("应追回金额 recovered_amount", "属实时必填，不超过涉及金额，可为0；不属实留空 / upheld: required, ≤ amount"),
    ("备注 notes", "核查情况说明 / what was found"),
    ("其他列 other columns", "预填信息，勿改 / pre-filled, do not change"),
)


def item_row(no: int, item: dict) -> list:
    """The worksheet row of one item to verify: pre-filled values as Excel takes them, on-site cells empty
    (written by contract.spreadsheet.put_cell: text never a formula, identifiers as text cells)."""
    values = []
    for col, _ in COLUMNS:
        if col == "no":
            v = no
        elif col == "priority":
            v = PRIORITY_LABELS[item["priority"]]
        elif col in ON_SITE:
            v = None
        else:
            v = item.get(col)
            if v is not None and not isinstance(v, (str, int, float)) and pd.isna(v):
                v = None
            if isinstance(v, Decimal):
                v = float(v)
            if isinstance(v, pd.Timestamp):
                v = v.to_pydatetime().replace(tzinfo=None)
            if col == "status":
                v = f"{STATUS_LABELS[v]} {v}"
        values.append(v)
    return values


def _write_team_block(ws, *, institution: str, institution_name: str, period: str, inspectors: str | None,
                      inspection_date: dt.date | None, suspect_ids: list[str]) -> None:
    """Title and the block above the table; inspectors and date are highlighted for the team to fill in."""
    from openpyxl.styles import Font, PatternFill

    put_cell(ws, 1, 1, "现场检查工作底稿 On-site inspection worksheet").font = Font(bold=True, size=14)
    block = [("机构编号 institution", institution), ("机构名称 institution_name", institution_name),
             ("检查期间 period", period), ("检查人员 inspectors", inspectors),
             ("检查日期 inspection_date", inspection_date),
             ("底稿编号 worksheet_id", worksheet_id(institution, period, suspect_ids))]
    for row, (label, value) in enumerate(block, start=2):
        put_cell(ws, row, 1, label)
        put_cell(ws, row, 2, value, text=row in (2, 4, 7))       # institution, period, worksheet_id
    for r in (5, 6):
        ws.cell(row=r, column=2).fill = PatternFill("solid", fgColor=FILL_IN)
    ws.cell(row=6, column=2).number_format = "yyyy-mm-dd"


def _write_items(ws, items: pd.DataFrame) -> tuple[int, int]:
    """The table header and one row per item; returns the first and last item row (one row when empty)."""
    from openpyxl.styles import Alignment, Font

    header_row = TEAM_BLOCK_ROWS + 2                    # the title, the team block, one empty row
    for j, (_, h) in enumerate(COLUMNS, start=1):
        c = put_cell(ws, header_row, j, h)
        c.font = Font(bold=True)
        c.alignment = Alignment(wrap_text=True, vertical="top")
    text = [col in IDENTIFIER_COLUMNS for col, _ in COLUMNS]
    for i, r in enumerate(items.to_dict("records"), start=1):
        for j, v in enumerate(item_row(i, r), start=1):
            put_cell(ws, header_row + i, j, v, text=text[j - 1])
    return header_row + 1, max(header_row + len(items), header_row + 1)


def _format_items(ws, first: int, last: int) -> None:
    """Drop-down for the conclusion, highlighted on-site cells, number formats, widths, frozen header."""
    from openpyxl.styles import PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    names = [c for c, _ in COLUMNS]
    letter = {c: get_column_letter(names.index(c) + 1) for c in names}
    dv = DataValidation(type="list", formula1='"属实,不属实"', allow_blank=True, showErrorMessage=True,
                        error="属实(upheld) 或 不属实(dismissed)")
    ws.add_data_validation(dv)
    dv.add(f"{letter['conclusion']}{first}:{letter['conclusion']}{last}")
    fill_in = PatternFill("solid", fgColor=FILL_IN)
    for col in ON_SITE:
        for row in range(first, last + 1):
            ws[f"{letter[col]}{row}"].fill = fill_in
    for col in ("amount", "answer_amount", "recovered_amount"):
        for row in range(first, last + 1):
            ws[f"{letter[col]}{row}"].number_format = "#,##0.00"
    for row in range(first, last + 1):
        ws[f"{letter['event_time']}{row}"].number_format = "yyyy-mm-dd hh:mm:ss"
    widths = {"suspect_id": 26, "evidence": 40, "answer_reason": 24, "notes": 30, "conclusion": 16,
              "event_time": 19, "priority": 14}
    for c in names:
        ws.column_dimensions[letter[c]].width = widths.get(c, 14)
    ws.column_dimensions["A"].width = 26
    ws.freeze_panes = ws.cell(row=first, column=3)


def build_worksheet(items: pd.DataFrame, *, institution: str, institution_name: str, period: str,
                    inspectors: str | None = None, inspection_date: dt.date | None = None) -> bytes:
    """The worksheet as .xlsx bytes (team block, items, drop-down for the conclusion, instructions)."""
    import openpyxl

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "工作底稿"
    _write_team_block(ws, institution=institution, institution_name=institution_name, period=period,
                      inspectors=inspectors, inspection_date=inspection_date,
                      suspect_ids=items["suspect_id"].tolist())
    first, last = _write_items(ws, items)
    _format_items(ws, first, last)
    guide = wb.create_sheet("填写说明 Instructions")
    for row in INSTRUCTIONS:
        guide.append(list(row))
    guide.column_dimensions["A"].width = 28
    guide.column_dimensions["B"].width = 80
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


@dataclass
class ParsedWorksheet:
    institution: str
    inspectors: str | None
    inspection_date: dt.date | None
    decisions: list[Decision] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    not_concluded: list[int] = field(default_factory=list)


def parse_worksheet(form: Form, *, institution: str | None = None) -> ParsedWorksheet:
    """A filled worksheet → verification decisions (actor: the inspectors; date: the inspection date)."""
    inst = text(meta_value(form.meta, *META["institution"]))
    if not inst:
        raise FormError(f"{form.path.name}: no 机构编号 institution in the team block / 底稿缺少机构编号")
    if institution and institution != inst:
        raise FormError(f"{form.path.name}: worksheet of institution {inst}, not {institution} / 底稿机构不符")
    inspectors = text(meta_value(form.meta, *META["inspectors"]))
    team_problem = None if inspectors else ("inspectors", "worksheet has no inspectors / 底稿未填写检查人员")
    day = None
    try:
        day = parse_date(meta_value(form.meta, *META["date"]))
        if day is None and not team_problem:
            team_problem = ("inspection_date", "worksheet has no inspection date / 底稿未填写检查日期")
    except CellError as exc:
        team_problem = team_problem or ("inspection_date", str(exc))
    out = ParsedWorksheet(inst, inspectors, day)
    name = form.path.name
    for line, row, sid, raw, reject in answer_rows(form, out.rejects):
        if not any(text(row.get(k)) for k in ("conclusion", "recovered_amount", "notes")):
            out.not_concluded.append(line)
            continue
        try:
            conclusion, amount = parse_decision_cells(
                row, choice_field="conclusion", choices=CONCLUSIONS, amount_field="recovered_amount",
                missing="conclusion missing (属实 upheld / 不属实 dismissed) / 缺少核查结论")
        except RowReject as exc:
            reject(exc.field, exc.reason)
            continue
        if team_problem:
            reject(*team_problem)
            continue
        out.decisions.append(Decision(
            suspect_id=sid, status=conclusion, actor=inspectors,
            decided_at=dt.datetime.combine(day, dt.time(), dt.timezone.utc), source_file=name, source_line=line,
            amount=amount, reason=text(row.get("notes")), institution=inst, raw=raw))
    return out


def ingest_worksheet(lake, path, *, recorded_at: dt.datetime, batch_id: str, institution: str | None = None):
    from pipelines.workflow import store
    from pipelines.workflow.sheets import read_form

    form = read_form(path, FIELDS, key="suspect_id")
    parsed = parse_worksheet(form, institution=institution)
    return store.record_decisions(lake, parsed.decisions, parsed.rejects, kind="worksheet", file=form.path.name,
                                  institution=parsed.institution, batch_id=batch_id, recorded_at=recorded_at,
                                  not_answered=len(parsed.not_concluded))
