"""Contract §5, what comes out: the published suspect list (疑点清单), the lake's table names, the
self-inspection feedback form; and the checks every command shares (a period, an institution code)."""
from __future__ import annotations

import re
from functools import lru_cache

# ---- labels used by outputs (suspect list, exports, summaries) ----
SUSPECT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("suspect_id", "疑点编号"), ("rule_id", "规则编号"), ("rule_version", "规则版本"), ("family", "规则族"),
    ("category", "违规类别"), ("severity", "严重程度"), ("fixmedins_code", "定点医药机构编号"),
    ("period", "期间"), ("psn_no", "人员编号"), ("mdtrt_id", "就诊ID"), ("setl_id", "结算ID"),
    ("feedetl_sn", "费用明细流水号"), ("hilist_code", "医保目录编码"), ("event_time", "发生时间"),
    ("amount", "涉及金额(元)"), ("evidence", "疑点依据"), ("run_id", "运行编号"),
    ("rule_set_fingerprint", "规则集指纹"), ("input_versions", "输入数据版本"), ("published_at", "发布时间"),
)
SUSPECT_COLUMN_NAMES = tuple(c for c, _ in SUSPECT_COLUMNS)
SEVERITY_LABELS = {"violation": "明确违规", "suspicious": "可疑"}

#: contract §5: the published list's partitions, and each column's Arrow type (names and order: SUSPECT_COLUMNS)
SUSPECT_PARTITION_BY = ("fixmedins_code", "period")
_SUSPECT_TYPES = {"rule_version": "int32", "event_time": "timestamp[us]", "amount": "decimal(16,2)",
                  "published_at": "timestamp[us, tz=UTC]"}


@lru_cache(maxsize=1)
def suspect_schema():
    """The published list's Arrow schema: SUSPECT_COLUMNS with each column's type (`contract.SUSPECT_SCHEMA`)."""
    import pyarrow as pa
    types = {"int32": pa.int32(), "timestamp[us]": pa.timestamp("us"), "decimal(16,2)": pa.decimal128(16, 2),
             "timestamp[us, tz=UTC]": pa.timestamp("us", tz="UTC")}
    return pa.schema([(c, types[_SUSPECT_TYPES[c]] if c in _SUSPECT_TYPES else pa.string())
                      for c in SUSPECT_COLUMN_NAMES])


# ---- the lake's tables (contract §5): every stage names them through these ----
STAGING_SUSPECTS = "staging/suspects"
GOLD_SUSPECTS = "gold/suspects"
QUARANTINE = "quarantine"


# ---- the self-inspection feedback form (机构自查反馈): written by the export, read back by the workflow ----
#: column → (the header the export writes, then every other header accepted when reading it back)
FEEDBACK_FORM: dict[str, tuple[str, ...]] = {
    "suspect_id": ("疑点编号", "疑点ID"),
    "answer": ("答复(确认/申诉)", "反馈结论", "答复", "反馈意见", "自查结论", "结论"),
    "refund_amount": ("退回金额(元)", "退回金额", "退款金额", "确认退回金额", "refund"),
    "reason": ("理由说明", "申诉理由", "理由", "说明"),
    "evidence_ref": ("佐证材料编号", "证据材料编号", "佐证材料", "证据材料", "证据编号", "evidence"),
}
#: read-only context the export pre-fills after the columns to fill (ignored when read back)
FEEDBACK_REF_LABELS: dict[str, str] = {
    "ref_rule_name": "规则名称(参考)", "ref_category": "违规类别(参考)", "ref_amount": "涉及金额(元)(参考)",
    "ref_event_time": "发生时间(参考)", "ref_evidence": "疑点依据(参考)",
}
#: canonical answer → its accepted spellings; the first is the choice offered in the form
FEEDBACK_ANSWERS: dict[str, tuple[str, ...]] = {
    "confirmed": ("确认", "confirm", "属实确认", "认可"),
    "disputed": ("申诉", "dispute", "异议", "有异议"),
}


# ---- exit codes every command shares (contract §6: 0 published, non-zero with the reason) ----
EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_LAKE_BUSY = 0, 1, 2, 3
EXIT_REJECTED = 1    # the workflow's forms and ingestion's reconciliation: some rows were rejected


# ---- shared checks: a period and an institution code ----
class UsageError(ValueError):
    """Bad input or usage (a command exits 2)."""


#: a period is a year `YYYY` or a month `YYYY-MM`; a partition of gold/suspects is always a month
PERIOD_RE = re.compile(r"^([0-9]{4})(?:-(0[1-9]|1[0-2]))?$")
MONTH_RE = re.compile(r"^[0-9]{4}-(?:0[1-9]|1[0-2])$")
INSTITUTION_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


def check_period(period: str | None) -> str | None:
    """The period when it is `YYYY` or `YYYY-MM`, None when absent or empty, else UsageError."""
    if period in (None, ""):
        return None
    if not isinstance(period, str) or not PERIOD_RE.fullmatch(period):
        raise UsageError(f"period {period!r} refused: use YYYY or YYYY-MM (期间格式应为 YYYY 或 YYYY-MM)")
    return period


def period_months(period: str) -> list[str]:
    """The `YYYY-MM` months a period covers: `2023` → 12 months, `2023-03` → one (UsageError otherwise)."""
    if check_period(period) is None:
        raise UsageError("a period is required (需要期间 YYYY 或 YYYY-MM)")
    year, month = PERIOD_RE.fullmatch(period).groups()
    return [f"{year}-{month}"] if month else [f"{year}-{i:02d}" for i in range(1, 13)]


def check_institution(code) -> str:
    """The institution code if it is one plain code (1–32 letters, digits, `_` or `-`), else UsageError."""
    if not isinstance(code, str) or not INSTITUTION_RE.fullmatch(code):
        raise UsageError(f"institution code {code!r} refused: one plain code of 1-32 letters, digits, '_' or '-' "
                         "(机构编号不合法)")
    return code


def check_institutions(codes) -> list[str] | None:
    """Every code checked; None when there are none (all institutions)."""
    return [check_institution(c) for c in codes] if codes else None
