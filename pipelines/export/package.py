"""One institution's audit package (机构疑点包): pure builders from published suspect rows to file bytes.

`build_package(rows, institution, period, rules=..., generated_at=...)` returns `{file name: bytes}` for

    suspects.xlsx    the suspect list, Chinese headers (contract.SUSPECT_COLUMNS), 明确违规/可疑, rule names
    suspects.csv     the same rows, English canonical headers, UTF-8 with BOM (Excel opens the Chinese)
    violations.json  one object per suspect in the national 3101/3102 violation result shape
    summary.html     bilingual summary, charts embedded as base64 PNG, tables by category, month and rule
    feedback.xlsx    template for the institution's self-inspection answers (确认/申诉)
    manifest.json    SHA-256 and size of every other file, institution, period, run ids, counts, total

Nothing here reads the lake or the clock: the caller passes the rows (already read through
`pipelines.storage.Lake`), the rule metadata and the time. `write_package` and `verify_manifest` are the
only functions touching the file system, and only the package's own folder.
"""
from __future__ import annotations

import base64
import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.contract import (UsageError, FEEDBACK_ANSWERS, FEEDBACK_FORM, FEEDBACK_REF_LABELS, SEVERITY_LABELS, SUSPECT_COLUMNS,
                                SUSPECT_SCHEMA)
from pipelines.catalog import CATEGORY_EN

FORMAT = "fundguard-export/1"
_PACKAGE_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}_\d{4}(-\d{2})?$")

XLSX, CSV, JSON, HTML, FEEDBACK, MANIFEST = (
    "suspects.xlsx", "suspects.csv", "violations.json", "summary.html", "feedback.xlsx", "manifest.json")
PACKAGE_FILES = (XLSX, CSV, JSON, HTML, FEEDBACK)

#: Columns of the list files: the contract's columns with the rule's Chinese name after rule_id.
LIST_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    col for c in SUSPECT_COLUMNS for col in ([c, ("rule_name", "规则名称")] if c[0] == "rule_id" else [c]))

#: The feedback template (contract.FEEDBACK_FORM; the workflow ingests it): columns the institution fills,
#: then read-only context.
FEEDBACK_COLUMNS = tuple(FEEDBACK_FORM)
FEEDBACK_REF_COLUMNS = tuple(FEEDBACK_REF_LABELS)
FEEDBACK_LABELS = {**{c: labels[0] for c, labels in FEEDBACK_FORM.items()}, **FEEDBACK_REF_LABELS}
FEEDBACK_CHOICES = tuple(spellings[0] for spellings in FEEDBACK_ANSWERS.values())

#: National 3101/3102 violation result keys (rules-catalog §1.3) plus our record keys.
NATIONAL_KEYS = ("jr_id", "rule_id", "rule_name", "vola_cont", "vola_amt", "vola_amt_stas", "sev_deg",
                 "vola_evid", "vola_bhvr_type", "mdtrt_id", "patn_id", "task_id",
                 "fixmedins_code", "setl_id", "feedetl_sn", "hilist_code", "event_time", "period")


_TS_FMT = "%Y-%m-%d %H:%M:%S"
CJK_FONT_HINTS = ("Noto Sans CJK", "Noto Serif CJK", "Source Han", "WenQuanYi", "SimHei", "SimSun",
                  "Microsoft YaHei", "PingFang", "Hiragino", "AR PL", "Droid Sans Fallback", "Sarasa")


class ExportError(UsageError):
    """A request the export refuses (bad institution code, bad period, unsafe target)."""


# ------------------------------------------------------------------------------------------ arguments

def check_institution(code) -> str:
    """One plain institution code (contract.check_institution), else ExportError."""
    try:
        return contract.check_institution(code)
    except UsageError as exc:
        raise ExportError(f"{exc}; only one institution per package (只能导出单个机构)") from None


def period_months(period: str) -> list[str]:
    """The `YYYY-MM` partitions a period covers (contract.period_months), else ExportError."""
    try:
        return contract.period_months(period)
    except UsageError as exc:
        raise ExportError(str(exc)) from None


def package_name(institution: str, period: str) -> str:
    period_months(period)
    return f"{check_institution(institution)}_{period}"


def suspects_filter(institution: str, period: str) -> pc.Expression:
    """The pyarrow filter selecting one institution and period of gold/suspects (partition pruning)."""
    return (pc.field("fixmedins_code") == check_institution(institution)) & \
        pc.field("period").isin(period_months(period))


def select_suspects(rows: pa.Table, institution: str, period: str) -> pa.Table:
    """Exactly the institution's rows of the period, in SUSPECT_SCHEMA, sorted by period, time, rule, id."""
    rows = rows.select(SUSPECT_SCHEMA.names).cast(SUSPECT_SCHEMA)
    rows = rows.filter(suspects_filter(institution, period))
    if rows.num_rows == 0:
        return rows
    return rows.take(pc.sort_indices(rows, sort_keys=[
        ("period", "ascending"), ("event_time", "ascending"), ("rule_id", "ascending"),
        ("suspect_id", "ascending")]))


def rule_info(catalog) -> dict[str, dict]:
    """rule_id → {name, category, legal_basis, severity} from a loaded rule catalog."""
    return {r.id: {"name": r.name, "category": r.category, "legal_basis": r.legal_basis, "severity": r.severity}
            for r in catalog.rules}


# ------------------------------------------------------------------------------------------ records

@dataclass(frozen=True)
class PackageInfo:
    institution: str
    period: str
    generated_at: dt.datetime
    institution_name: str | None = None
    source_version: int | None = None       # Delta version of gold/suspects read
    high_amount: Decimal | None = None      # amounts at or above are highlighted

    @property
    def generated_iso(self) -> str:
        return _iso_utc(self.generated_at)


def list_records(rows: pa.Table, rules: Mapping[str, Mapping]) -> list[dict]:
    """Suspect rows as dicts with the rule name added (Python values: Decimal amounts, datetimes)."""
    out = []
    for r in rows.to_pylist():
        r["rule_name"] = (rules.get(r["rule_id"]) or {}).get("name") or r["rule_id"]
        out.append({c: r.get(c) for c, _ in LIST_COLUMNS})
    return out


def total_amount(records: Iterable[Mapping]) -> Decimal:
    return sum((r["amount"] for r in records if r["amount"] is not None), Decimal("0.00"))


def _iso_utc(ts: dt.datetime | None) -> str | None:
    if ts is None:
        return None
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(col: str, value) -> str:
    """A value as CSV text: exact decimals, contract time format, UTC ISO for published_at."""
    if value is None:
        return ""
    if col == "published_at":
        return _iso_utc(value)
    if isinstance(value, dt.datetime):
        return value.strftime(_TS_FMT)
    return str(value)


# ------------------------------------------------------------------------------------------ CSV / JSON

def build_csv(records: Sequence[Mapping]) -> bytes:
    """English canonical headers, one row per suspect, UTF-8 with BOM, CRLF (what Excel expects)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([c for c, _ in LIST_COLUMNS])
    for r in records:
        w.writerow([_text(c, r[c]) for c, _ in LIST_COLUMNS])
    return buf.getvalue().encode("utf-8-sig")


def national_violation(record: Mapping, rules: Mapping[str, Mapping]) -> dict:
    """One suspect in the national platform's violation result shape (3101/3102, rules-catalog §1.3).

    vola_amt_stas (违规金额计算状态): "1" amount computed, "0" not computed (no amount on the suspect).
    """
    info = rules.get(record["rule_id"]) or {}
    amount = record["amount"]
    return {
        "jr_id": record["suspect_id"],
        "rule_id": record["rule_id"],
        "rule_name": record["rule_name"],
        "vola_cont": record["evidence"],
        "vola_amt": float(amount) if amount is not None else None,
        "vola_amt_stas": "1" if amount is not None else "0",
        "sev_deg": SEVERITY_LABELS.get(record["severity"], record["severity"]),
        "vola_evid": info.get("legal_basis"),
        "vola_bhvr_type": record["category"],
        "mdtrt_id": record["mdtrt_id"],
        "patn_id": record["psn_no"],
        "task_id": record["run_id"],
        "fixmedins_code": record["fixmedins_code"],
        "setl_id": record["setl_id"],
        "feedetl_sn": record["feedetl_sn"],
        "hilist_code": record["hilist_code"],
        "event_time": _text("event_time", record["event_time"]) or None,
        "period": record["period"],
    }


def build_json(records: Sequence[Mapping], rules: Mapping[str, Mapping]) -> bytes:
    doc = [national_violation(r, rules) for r in records]
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------------------ Excel

def _display_width(value) -> int:
    s = value if isinstance(value, str) else _text("", value)
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

    guide = wb.create_sheet("填写说明 Instructions")
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

    meta = wb.create_sheet("meta")
    for i, (k, v) in enumerate((("format", FORMAT + "/feedback"), ("institution", info.institution),
                                ("period", info.period), ("generated_at", info.generated_iso),
                                ("suspects", len(records))), start=1):
        _put(meta, i, 1, k)
        _put(meta, i, 2, v)
    return _save(wb)


# ------------------------------------------------------------------------------------------ summary

def summarise(records: Sequence[Mapping], rules: Mapping[str, Mapping]) -> dict:
    """Counts and amounts by category, month, rule and severity (exact Decimal sums)."""
    def group(key) -> list[dict]:
        acc: dict = OrderedDict()
        for r in records:
            k = key(r)
            hits, amt = acc.get(k, (0, Decimal("0.00")))
            acc[k] = (hits + 1, amt + (r["amount"] or Decimal("0")))
        return [{"key": k, "hits": h, "amount": a} for k, (h, a) in acc.items()]

    by_category = sorted(group(lambda r: r["category"] or ""), key=lambda g: (-g["amount"], g["key"]))
    for g in by_category:
        g["label_en"] = CATEGORY_EN.get(g["key"], "")
    by_month = sorted(group(lambda r: r["period"]), key=lambda g: g["key"])
    by_rule = sorted(group(lambda r: r["rule_id"]), key=lambda g: (-g["amount"], g["key"]))
    for g in by_rule:
        info = rules.get(g["key"]) or {}
        sample = next(r for r in records if r["rule_id"] == g["key"])
        g.update(name=sample["rule_name"], category=sample["category"],
                 severity=SEVERITY_LABELS.get(sample["severity"], sample["severity"]),
                 legal_basis=info.get("legal_basis", ""))
    by_severity = group(lambda r: r["severity"])
    for g in by_severity:
        g["label"] = SEVERITY_LABELS.get(g["key"], g["key"])
    top = sorted(records, key=lambda r: (-(r["amount"] or 0), r["suspect_id"]))[:10]
    return {
        "hits": len(records),
        "amount": total_amount(records),
        "patients": len({r["psn_no"] for r in records if r["psn_no"]}),
        "visits": len({r["mdtrt_id"] for r in records if r["mdtrt_id"]}),
        "rules": len(by_rule),
        "by_category": by_category, "by_month": by_month, "by_rule": by_rule, "by_severity": by_severity,
        "top": top,
    }


@lru_cache(maxsize=1)
def find_cjk_font() -> str | None:
    """Family name of an installed font that draws Chinese (医疗), or None (charts then use English labels)."""
    import matplotlib
    from matplotlib import font_manager, ft2font
    bundled = str(Path(matplotlib.get_data_path()).resolve())
    fonts = sorted(font_manager.fontManager.ttflist,
                   key=lambda f: not any(h.lower() in f.name.lower() for h in CJK_FONT_HINTS))
    for f in fonts:
        # matplotlib's own fonts draw no Chinese; its "Last Resort" font maps every character to a box
        if "last resort" in f.name.lower() or str(Path(f.fname).resolve()).startswith(bundled):
            continue
        try:
            face = ft2font.FT2Font(f.fname)
        except Exception:  # unreadable font file: skip it
            continue
        if all(face.get_char_index(ord(ch)) for ch in "医疗疑点"):
            return f.name
    return None


def _chart_label(category: str, i: int, cjk: bool) -> str:
    if cjk:
        return category or "-"
    en = CATEGORY_EN.get(category)
    if en:
        return en
    return category if category.isascii() and category else f"category {i + 1}"


def build_charts(summary: Mapping, font: str | None) -> dict[str, bytes]:
    """PNG charts: hits and amounts by category, by month. Chinese labels only when `font` draws them."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not summary["hits"]:
        return {}
    cjk = font is not None
    t = (lambda zh, en: f"{zh} {en}") if cjk else (lambda zh, en: en)
    rc = {"font.family": [font, "DejaVu Sans"] if cjk else ["DejaVu Sans"], "axes.unicode_minus": False}
    charts: dict[str, bytes] = {}
    with matplotlib.rc_context(rc):
        cats = list(reversed(summary["by_category"]))
        labels = [_chart_label(g["key"], i, cjk) for i, g in enumerate(cats)]
        fig = Figure(figsize=(10, 1.2 + 0.45 * len(cats)), layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2, sharey=True)
        ax1.barh(labels, [g["hits"] for g in cats], color="#4472C4")
        ax1.set_title(t("疑点数", "Suspects"))
        ax2.barh(labels, [float(g["amount"]) for g in cats], color="#ED7D31")
        ax2.set_title(t("涉及金额(元)", "Amount (CNY)"))
        fig.suptitle(t("按违规类别", "By category"))
        charts["by_category"] = _png(fig)

        months = summary["by_month"]
        fig = Figure(figsize=(10, 3.6), layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        xs = [g["key"] for g in months]
        ax1.bar(xs, [g["hits"] for g in months], color="#4472C4")
        ax1.set_title(t("疑点数", "Suspects"))
        ax2.bar(xs, [float(g["amount"]) for g in months], color="#ED7D31")
        ax2.set_title(t("涉及金额(元)", "Amount (CNY)"))
        for ax in (ax1, ax2):
            ax.tick_params(axis="x", rotation=45 if len(xs) > 4 else 0)
        fig.suptitle(t("按月份", "By month"))
        charts["by_month"] = _png(fig)
    return charts


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()


def _template():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["money"] = lambda v: f"{Decimal(v):,.2f}" if v is not None else ""
    env.filters["ts"] = lambda v: _text("event_time", v)
    return env.get_template("summary.html.j2")


def build_html(summary: Mapping, charts: Mapping[str, bytes], info: PackageInfo, run_ids: Sequence[str],
               fingerprints: Sequence[str], font: str | None) -> str:
    images = {k: base64.b64encode(v).decode("ascii") for k, v in charts.items()}
    return _template().render(
        s=summary, info=info, images=images, run_ids=run_ids, fingerprints=fingerprints, font=font,
        files=PACKAGE_FILES, category_en=CATEGORY_EN)


# ------------------------------------------------------------------------------------------ package

def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_manifest(files: Mapping[str, bytes], info: PackageInfo, records: Sequence[Mapping],
                   run_ids: Sequence[str], fingerprints: Sequence[str], font: str | None) -> dict:
    n = len(records)
    rows = {XLSX: n, CSV: n, JSON: n, FEEDBACK: n}
    return {
        "format": FORMAT,
        "institution": info.institution,
        "institution_name": info.institution_name,
        "period": info.period,
        "months": period_months(info.period),
        "generated_at": info.generated_iso,
        "source": {"table": "gold/suspects", "delta_version": info.source_version},
        "empty": n == 0,
        "note": ("本期该机构无疑点 / no suspects for this institution in this period" if n == 0
                 else f"{n} suspects / 疑点 {n} 条"),
        "row_count": n,
        "total_amount": str(total_amount(records)),
        "currency": "CNY",
        "run_ids": list(run_ids),
        "rule_set_fingerprint": fingerprints[0] if len(fingerprints) == 1 else None,
        "rule_set_fingerprints": list(fingerprints),
        "headers": {
            XLSX: "Chinese labels (contract §5 SUSPECT_COLUMNS, 规则名称 added); severity as 明确违规/可疑",
            CSV: "English canonical column names (contract §5, rule_name added); UTF-8 with BOM; "
                 "severity as violation/suspicious; event_time yyyy-MM-dd HH:mm:ss, published_at UTC ISO 8601",
            JSON: "national 3101/3102 violation result shape, one object per suspect",
            FEEDBACK: f"columns {', '.join(FEEDBACK_COLUMNS)} to fill; answer 确认 (confirmed) / 申诉 (disputed)",
        },
        "charts": {"font": font, "labels": "zh+en" if font else "en (no CJK font installed)"},
        "files": [{"name": name, "sha256": sha256(data), "size": len(data), "rows": rows.get(name)}
                  for name, data in files.items()],
    }


def build_package(rows: pa.Table, institution: str, period: str, *, rules: Mapping[str, Mapping],
                  generated_at: dt.datetime, institution_name: str | None = None,
                  source_version: int | None = None, high_amount: Decimal | float | str | None = None,
                  font: str | None | bool = True) -> dict[str, bytes]:
    """Every file of the package, manifest last. `rows` may hold more than the institution and period:
    only the institution's rows of the period are used. `font=True` looks for an installed CJK font."""
    check_institution(institution)
    period_months(period)
    info = PackageInfo(institution, period, generated_at, institution_name, source_version,
                       Decimal(str(high_amount)) if high_amount is not None else None)
    selected = select_suspects(rows, institution, period)
    records = list_records(selected, rules)
    run_ids = sorted({r["run_id"] for r in records if r["run_id"]})
    fingerprints = sorted({r["rule_set_fingerprint"] for r in records if r["rule_set_fingerprint"]})
    if font is True:
        font = find_cjk_font()
    font = font or None
    summary = summarise(records, rules)
    files: dict[str, bytes] = {
        XLSX: build_xlsx(records, info, run_ids, fingerprints),
        CSV: build_csv(records),
        JSON: build_json(records, rules),
        HTML: build_html(summary, build_charts(summary, font), info, run_ids, fingerprints, font).encode("utf-8"),
        FEEDBACK: build_feedback_xlsx(records, info),
    }
    manifest = build_manifest(files, info, records, run_ids, fingerprints, font)
    files[MANIFEST] = (json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    return files


# ------------------------------------------------------------------------------------------ file system

def write_package(files: Mapping[str, bytes], out: str | Path, name: str) -> Path:
    """Write the files to `<out>/<name>/` atomically; a previous package of that name is replaced,
    any other existing folder of that name is left alone (ExportError)."""
    if not _PACKAGE_NAME_RE.fullmatch(name):
        raise ExportError(f"package name {name!r} refused (institution_period expected)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    target = out / name
    if target.exists() and not (target / MANIFEST).is_file():
        raise ExportError(f"{target} exists and is not an export package: refusing to overwrite it")
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out))
    try:
        for fname, data in files.items():
            (tmp / fname).write_bytes(data)
        os.chmod(tmp, 0o755)
        if target.exists():
            old = target.with_name(f".{name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def verify_manifest(directory: str | Path) -> list[str]:
    """Problems of an export package folder (empty when every file matches its manifest)."""
    d = Path(directory)
    if not d.is_dir():
        return [f"{d}: not a directory"]
    mpath = d / MANIFEST
    if not mpath.is_file():
        return [f"{d}: no {MANIFEST}"]
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
        entries = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{MANIFEST}: unreadable ({exc})"]
    problems: list[str] = []
    listed: set[str] = set()
    intact: set[str] = set()
    for e in entries:
        name = e.get("name") if isinstance(e, dict) else None
        if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith(".") \
                or name == MANIFEST:
            problems.append(f"{MANIFEST}: invalid file entry {e!r}")
            continue
        listed.add(name)
        p = d / name
        if not p.is_file():
            problems.append(f"{name}: missing")
            continue
        data = p.read_bytes()
        if len(data) != e.get("size"):
            problems.append(f"{name}: size {len(data)} differs from manifest {e.get('size')}")
        if sha256(data) != e.get("sha256"):
            problems.append(f"{name}: SHA-256 differs from manifest (file changed)")
        else:
            intact.add(name)
    for p in sorted(d.iterdir()):
        if p.name != MANIFEST and p.name not in listed:
            problems.append(f"{p.name}: not listed in {MANIFEST}")
    n = manifest.get("row_count")
    if CSV in intact:
        rows = list(csv.reader(io.StringIO((d / CSV).read_text(encoding="utf-8-sig"))))
        if len(rows) - 1 != n:
            problems.append(f"{CSV}: {len(rows) - 1} rows, manifest says {n}")
    if JSON in intact:
        doc = json.loads((d / JSON).read_text(encoding="utf-8"))
        if len(doc) != n:
            problems.append(f"{JSON}: {len(doc)} objects, manifest says {n}")
        total = sum((Decimal(str(o["vola_amt"])) for o in doc if o.get("vola_amt") is not None), Decimal("0.00"))
        if manifest.get("total_amount") is not None and total != Decimal(manifest["total_amount"]):
            problems.append(f"{JSON}: amounts sum to {total}, manifest says {manifest['total_amount']}")
    return problems
