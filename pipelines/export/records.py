"""The package's rows: what a package holds (file names, columns, the national keys), which rows it takes
(institution, period), and the CSV and national-JSON builders. Pure functions."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Mapping, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.contract.spreadsheet import neutralise
from pipelines.contract import (UsageError, FEEDBACK_ANSWERS, FEEDBACK_FORM, FEEDBACK_REF_LABELS, SEVERITY_LABELS, SUSPECT_COLUMNS,
                                SUSPECT_SCHEMA)

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


def text_of(col: str, value) -> str:
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
    """English canonical headers, one row per suspect, UTF-8 with BOM, CRLF (what Excel expects).

    Text that a spreadsheet would run as a formula carries a leading `'` (contract.spreadsheet.neutralise);
    amounts and times are written as they are. Identifiers are plain text (no `="…"` wrapper, itself a
    formula): Excel users open suspects.xlsx, or import this file with the identifier columns set to Text.
    """
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([c for c, _ in LIST_COLUMNS])
    for r in records:
        w.writerow([text_of(c, neutralise(r[c])) for c, _ in LIST_COLUMNS])
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
        "event_time": text_of("event_time", record["event_time"]) or None,
        "period": record["period"],
    }


def build_json(records: Sequence[Mapping], rules: Mapping[str, Mapping]) -> bytes:
    doc = [national_violation(r, rules) for r in records]
    return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
