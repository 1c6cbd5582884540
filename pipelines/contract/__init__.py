"""The data contract (../shared/contract.md) as data, written down once.

This module: what comes in (§1–3: entities, fields, types, keys, aliases, labels). `published`: what comes
out (§5: the suspect list's columns and schema, the lake's table names, the feedback form) and the checks
every command shares (a period, an institution code); its names are re-exported here. Nothing here reads
files or touches a session, and importing it loads no data library (the DAG files import it).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Iterable

from pipelines.contract.published import (  # noqa: F401  (re-exported: the contract in one place)
    SUSPECT_COLUMNS, SUSPECT_COLUMN_NAMES, SEVERITY_LABELS, SUSPECT_PARTITION_BY, STAGING_SUSPECTS, GOLD_SUSPECTS,
    QUARANTINE, FEEDBACK_FORM, FEEDBACK_REF_LABELS, FEEDBACK_ANSWERS, UsageError, PERIOD_RE,
    EXIT_OK, EXIT_GATE_FAILED, EXIT_BAD_INPUT, EXIT_LAKE_BUSY, EXIT_REJECTED,
    MONTH_RE, INSTITUTION_RE, check_period, period_months, check_institution, check_institutions,
)

# Logical types. Codes are strings; `code2` is left-padded to 2 characters when numeric.
STR, CODE2, TS, DATE, MONEY, PRIC, CNT, DEC, INT = (
    "str", "code2", "timestamp", "date", "money", "pric", "cnt", "decimal", "int")

#: Arrow / SQL type of each logical type once typed (silver).
SQL_TYPES = {
    STR: "VARCHAR", CODE2: "VARCHAR", TS: "TIMESTAMP", DATE: "DATE",
    MONEY: "DECIMAL(16,2)", PRIC: "DECIMAL(16,6)", CNT: "DECIMAL(16,4)", DEC: "DECIMAL(16,6)",
    INT: "BIGINT",
}

#: Time formats accepted by contract §1, in strptime notation (and their Spark equivalents).
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d", "%Y%m%d%H%M%S", "%Y/%m/%d %H:%M")


#: the times a record may carry (a birth date from BIRTH_MIN): outside, a typo or a placeholder (9999-12-31).
#: The silver suite fails a load holding one; the claim-time service answers 422.
TIME_MIN, TIME_MAX, BIRTH_MIN = dt.datetime(1990, 1, 1), dt.datetime(2100, 1, 1), dt.datetime(1900, 1, 1)


def time_bounds(name: str) -> tuple[dt.datetime, dt.datetime]:
    """The times field `name` may hold: (TIME_MIN, TIME_MAX), a birth date (`brdy`) from BIRTH_MIN."""
    return (BIRTH_MIN if name == "brdy" else TIME_MIN), TIME_MAX

#: the silver partition column of the period: the year of `period`
PERIOD_YEAR = "period_year"


@dataclass(frozen=True)
class Field:
    name: str
    type: str = STR
    required: bool = False
    label: str = ""                     # Chinese label (also accepted as a header)
    aliases: tuple[str, ...] = ()       # agency-side / national interface names
    codes: tuple[str, ...] | None = None  # allowed values after normalisation (None: open list)
    pattern: tuple[str, str] | None = None   # an open list's form: (regex the value must match, what it says)
    pii: bool = False                   # personal data: hashed when leaving bronze


@dataclass(frozen=True)
class Entity:
    name: str
    label: str
    key: tuple[str, ...]
    fields: tuple[Field, ...]
    institution: str | None = None      # partition column (institution)
    period_from: str | None = None      # timestamp/date `period` (YYYY-MM) and `period_year` derive from
    knowledge_base: bool = False
    value_maps: dict[str, dict[str, str]] = field(default_factory=dict)  # field -> raw value -> canonical

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    @property
    def required(self) -> list[str]:
        return [f.name for f in self.fields if f.required]

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def partition_by(self) -> list[str]:
        """Silver partitions: institution and period, the period being the year (`period_year`). Monthly
        partitions cut a district into files of a few hundred rows (942 institutions × 12 months: 11,304
        files for 10 M fee lines, 44 rows per settlement file), which cost more to write and 2–3× more
        to read than the rows themselves; `period` (YYYY-MM) stays a column."""
        return [c for c in (self.institution, PERIOD_YEAR if self.period_from else None) if c]


def _codes(*values: str) -> tuple[str, ...]:
    return tuple(values)


HOSP_LV = _codes(*[f"{i:02d}" for i in range(1, 12)])
CHRGITM_TYPES = _codes(*[f"{i:02d}" for i in range(1, 15)])
FLAG01 = _codes("0", "1")

F = Field  # short alias for the tables below
#: where a knowledge-base row came from: the release (`fundguard kb import`) and the batch/row of its points
KB_SOURCE_FIELDS = (Field("kb_release", STR, False, "知识库版本"), Field("kb_source", STR, False, "知识点来源"),
                    # the release's days in force: from its effective date to the next release's (null: always)
                    Field("kb_valid_from", DATE, False, "知识库生效日期"), Field("kb_valid_to", DATE, False, "知识库失效日期"))

ENTITIES: dict[str, Entity] = {e.name: e for e in (
    Entity("fixmedins", "定点医药机构", ("fixmedins_code",), (
        F("fixmedins_code", STR, True, "定点医药机构编号"),
        F("fixmedins_name", STR, True, "定点医药机构名称"),
        F("fixmedins_type", STR, False, "机构类型", codes=_codes("1", "2")),
        F("hosp_lv", CODE2, True, "医院等级", codes=HOSP_LV),
        F("medins_natu", STR, False, "机构性质", codes=_codes("1", "2")),
        F("aprv_bed_cnt", INT, False, "批准床位数", aliases=("aprv_bed_cnt",)),
        F("admdvs", STR, False, "所属医保区划"),
    )),
    Entity("psn", "参保人", ("psn_no",), (
        F("psn_no", STR, True, "人员编号"),
        F("psn_name", STR, False, "姓名", aliases=("人员姓名",), pii=True),
        F("certno", STR, False, "证件号码", pii=True),
        F("gend", STR, True, "性别", codes=_codes("1", "2")),
        F("brdy", DATE, True, "出生日期"),
        F("insutype", STR, False, "险种类型"),
        F("psn_type", STR, False, "人员类别"),
        F("insu_admdvs", STR, False, "参保地医保区划", aliases=("insuplc_admdvs",)),
        F("die_date", DATE, False, "死亡日期"),
    )),
    Entity("mdtrt", "就诊", ("mdtrt_id",), (
        F("mdtrt_id", STR, True, "就诊ID"),
        F("psn_no", STR, True, "人员编号"),
        F("fixmedins_code", STR, True, "定点医药机构编号"),
        # national and local codes (reference: 11, 21, 52, 2105, 140104, 9901 ...) are 2 to 6 digits
        F("med_type", STR, True, "医疗类别", pattern=("[0-9]{2,6}", "a code of 2 to 6 digits")),
        F("begntime", TS, True, "入院/就诊时间", aliases=("入院时间", "就诊时间", "开始时间")),
        F("endtime", TS, False, "出院时间", aliases=("结束时间",)),
        F("ipt_days", INT, False, "住院天数"),
        F("dscg_way", STR, False, "离院方式"),
        F("dscg_maindiag_code", STR, False, "主诊断", aliases=("住院主诊断代码",)),
        F("adm_dept_codg", STR, False, "入院科室", aliases=("入院科室编码",)),
        F("atddr_no", STR, False, "主治医师编码"),
        F("dise_codg", STR, False, "病种编码", aliases=("dise_no",)),
        F("internet_flag", STR, False, "互联网医院诊疗标志", codes=FLAG01),
    ), institution="fixmedins_code", period_from="begntime"),
    Entity("setl", "结算", ("setl_id",), (
        F("setl_id", STR, True, "结算ID"),
        F("mdtrt_id", STR, True, "就诊ID"),
        F("psn_no", STR, True, "人员编号"),
        F("fixmedins_code", STR, True, "定点医药机构编号"),
        F("setl_time", TS, True, "结算时间"),
        F("medfee_sumamt", MONEY, True, "医疗费总额"),
        F("fulamt_ownpay_amt", MONEY, False, "全自费金额"),
        F("overlmt_selfpay", MONEY, False, "超限价自费", aliases=("overlmt_amt", "超限价自费费用")),
        F("preselfpay_amt", MONEY, False, "先行自付", aliases=("先行自付金额",)),
        F("inscp_scp_amt", MONEY, False, "符合范围金额", aliases=("inscp_amt", "符合政策范围金额")),
        F("hifp_pay", MONEY, False, "统筹基金支出"),
        F("hifmi_pay", MONEY, False, "大病保险支出"),
        F("fund_pay_sumamt", MONEY, True, "基金支付总额"),
        F("psn_pay", MONEY, False, "个人支付", aliases=("psn_part_amt",)),
        F("acct_pay", MONEY, False, "个人账户支出"),
        F("refd_setl_flag", STR, False, "退费结算标志", codes=FLAG01),
        F("insutype", STR, False, "险种类型"),
    ), institution="fixmedins_code", period_from="setl_time"),
    Entity("diag", "诊断", ("mdtrt_id", "diag_code"), (
        F("mdtrt_id", STR, True, "就诊ID"),
        F("diag_code", STR, True, "诊断代码"),
        F("diag_name", STR, False, "诊断名称"),
        F("diag_type", STR, False, "诊断类别"),
        F("maindiag_flag", STR, False, "主诊断标志", codes=FLAG01),
    )),
    Entity("fee_list", "费用明细", ("mdtrt_id", "feedetl_sn"), (
        F("feedetl_sn", STR, True, "费用明细流水号", aliases=("bkkp_sn", "记账流水号")),
        F("mdtrt_id", STR, True, "就诊ID"),
        F("setl_id", STR, False, "结算ID"),
        F("psn_no", STR, True, "人员编号"),
        F("fixmedins_code", STR, True, "定点医药机构编号"),
        F("fee_ocur_time", TS, True, "费用发生时间"),
        F("hilist_code", STR, True, "医保目录编码", aliases=("med_list_codg", "医疗目录编码")),
        F("hilist_name", STR, False, "医保目录名称"),
        F("medins_list_codg", STR, False, "院内目录编码", aliases=("medins_list_code", "医药机构目录编码")),
        F("med_chrgitm_type", CODE2, False, "收费项目类别", aliases=("医疗收费项目类别",), codes=CHRGITM_TYPES),
        F("chrgitm_lv", CODE2, False, "收费项目等级", codes=_codes("01", "02", "03")),
        F("cnt", CNT, True, "数量"),
        F("pric", PRIC, True, "单价"),
        F("det_item_fee_sumamt", MONEY, True, "明细项目费用总额"),
        F("pric_uplmt_amt", PRIC, False, "定价上限", aliases=("定价上限金额",)),
        F("inscp_scp_amt", MONEY, False, "符合范围金额", aliases=("inscp_amt", "符合政策范围金额")),
        F("fulamt_ownpay_amt", MONEY, False, "全自费金额"),
        F("bilg_dept_codg", STR, False, "开单科室", aliases=("开单科室编码",)),
        F("bilg_dr_codg", STR, False, "开单医生", aliases=("bilg_dr_code", "开单医生编码")),
        F("dscg_tkdrug_flag", STR, False, "出院带药标志", codes=FLAG01),
        F("init_feedetl_sn", STR, False, "原费用流水号"),
    ), institution="fixmedins_code", period_from="fee_ocur_time"),
    Entity("inv_movement", "进销存", ("fixmedins_code", "hilist_code", "mvmt_type", "occur_time", "batch_no"), (
        F("fixmedins_code", STR, True, "定点医药机构编号"),
        F("hilist_code", STR, True, "医保目录编码", aliases=("med_list_codg",)),
        F("mvmt_type", STR, True, "进销存类型", aliases=("inv_chg_type", "库存变更类型"),
          codes=_codes("stocktake", "purchase", "purchase_return", "sale", "sale_return",
                       "adjust_in", "adjust_out")),
        F("cnt", CNT, True, "数量", aliases=("inv_cnt", "purc_retn_cnt", "sel_retn_cnt", "库存数量",
                                                "采购/退货数量", "销售/退货数量")),
        F("pric", PRIC, False, "单价", aliases=("finl_trns_pric", "最终成交单价")),
        F("occur_time", TS, True, "发生时间", aliases=("invdate", "inv_chg_time", "purc_retn_stoin_time",
                                                       "sel_retn_time", "盘存日期", "库存变更时间",
                                                       "采购/退货入库时间", "销售/退货时间")),
        F("batch_no", STR, False, "批次号", aliases=("fixmedins_bchno", "定点医药机构批次流水号")),
    ), institution="fixmedins_code", period_from="occur_time",
        value_maps={"mvmt_type": {
            "盘存": "stocktake", "采购": "purchase", "采购退货": "purchase_return", "销售": "sale",
            "销售退货": "sale_return", "库存变更入": "adjust_in", "库存变更出": "adjust_out",
            # national 3502 inv_chg_type codes (reference §9)
            "101": "adjust_in", "102": "adjust_out", "103": "adjust_in", "104": "adjust_out",
            "105": "adjust_out", "106": "adjust_in", "107": "adjust_out", "108": "purchase",
            "109": "purchase_return", "110": "adjust_in", "111": "adjust_out",
        }}),
    Entity("insp_result", "检查结果", ("fixmedins_code", "insp_date"), (
        F("fixmedins_code", STR, True, "定点医药机构编号"),
        F("insp_date", DATE, True, "检查日期"),
        F("result", STR, True, "检查结论", aliases=("违规结论",), codes=FLAG01),
        F("recovered_amt", MONEY, False, "追回金额"),
        F("insp_type", STR, False, "检查类型"),
    ), institution="fixmedins_code", period_from="insp_date",
        value_maps={"result": {"发现违规": "1", "未发现违规": "0", "未发现": "0"}}),
    # ---- knowledge base (§3) ----
    Entity("kb_hilist", "医保目录知识库", ("hilist_code",), (
        F("hilist_code", STR, True, "医保目录编码", aliases=("med_list_codg",)),
        F("hilist_name", STR, True, "医保目录名称"),
        F("list_type", STR, False, "目录类别", codes=_codes("101", "102", "103", "104", "105", "106",
                                                            "201", "301", "501")),
        F("med_chrgitm_type", CODE2, False, "收费项目类别", codes=CHRGITM_TYPES),
        F("chrgitm_lv", CODE2, False, "收费项目等级", codes=_codes("01", "02", "03")),
        F("pric_uplmt_amt", PRIC, False, "限价"),
        F("gend_lmt", STR, False, "限定性别", codes=_codes("1", "2")),
        F("age_min", DEC, False, "最小年龄"),
        F("age_max", DEC, False, "最大年龄"),
        F("ipt_only", STR, False, "限住院", codes=FLAG01),
        F("hosp_lv_min", STR, False, "限医院等级", codes=_codes("1", "2", "3")),
        F("lmt_diag", STR, False, "限定诊断"),
        F("max_cnt_per_day", CNT, False, "每日限量"),
        F("per_diem", STR, False, "按床日计费", codes=FLAG01),
        F("min_interval_days", INT, False, "最短间隔天数"),
        F("max_pay_days", INT, False, "最多支付天数"),
        F("markup_max_ratio", DEC, False, "加成上限比例"),
        F("focus_tags", STR, False, "重点领域"),
        # the national knowledge base's kinds (rules/kb/batches.yml) and where a row came from
        F("insutype_only", STR, False, "限险种"),
        F("med_type_only", STR, False, "限医疗类别"),
        F("second_line", STR, False, "限二线使用", codes=FLAG01),      # 1 second-line, 0 first-line of line_group
        F("line_group", STR, False, "一二线药品知识点"),
        F("period_cnt_max", CNT, False, "周期频次上限"),
        F("period_days", INT, False, "周期天数"),
        F("herbal_never_paid", STR, False, "饮片单复方均不予支付", codes=FLAG01),
        F("herbal_not_alone", STR, False, "饮片单方不予支付", codes=FLAG01),
        F("internet_excluded", STR, False, "超互联网医院支付范围", codes=FLAG01),
        F("pay_days_per_year", INT, False, "每年最多支付天数"),
        *KB_SOURCE_FIELDS,
    ), knowledge_base=True),
    Entity("kb_item_pair", "项目组合知识库", ("hilist_code_a", "hilist_code_b"), (
        F("hilist_code_a", STR, True, "主项目编码"),
        F("hilist_code_b", STR, True, "被包含/互斥项目编码"),
        F("relation", STR, True, "关系", codes=_codes("includes", "exclusive")),
        F("window", STR, True, "时间窗口", codes=_codes("day", "visit", "hour")),
        *KB_SOURCE_FIELDS,
    ), knowledge_base=True, value_maps={
        "relation": {"包含": "includes", "互斥": "exclusive"},
        "window": {"单日": "day", "同日": "day", "单次就诊": "visit", "同一就诊": "visit", "小时": "hour"}}),
    Entity("kb_param", "参数知识库", ("key",), (
        F("key", STR, True, "参数"),
        F("value", STR, True, "取值"),
    ), knowledge_base=True),
)}

KB_ENTITIES = tuple(n for n, e in ENTITIES.items() if e.knowledge_base)
CLAIM_ENTITIES = tuple(n for n, e in ENTITIES.items() if not e.knowledge_base)

#: Entities whose key alone is not unique across a district: carry the institution too.
INPATIENT_EXTRA_CODES = ("52",)


def is_inpatient(med_type: str | None) -> bool:
    """Contract §2: inpatient = med_type whose first digit is 2, or 52."""
    return bool(med_type) and (med_type.startswith("2") or med_type in INPATIENT_EXTRA_CODES)


def _norm_header(h: str) -> str:
    return re.sub(r"\s+", "", h.strip().lstrip("\ufeff")).lower()


def header_map(entity: str) -> dict[str, str]:
    """Every accepted header form (normalised) -> canonical field name for one entity."""
    ent = ENTITIES[entity]
    out: dict[str, str] = {}
    for f in ent.fields:
        for form in (f.name, f.label, *f.aliases):
            if form:
                out.setdefault(_norm_header(form), f.name)
    return out


def canonical_headers(entity: str, headers: Iterable[str]) -> dict[str, str | None]:
    """Map the headers of a file to canonical names (None for a header the contract does not know)."""
    hm = header_map(entity)
    return {h: hm.get(_norm_header(h)) for h in headers}


_ENTITY_RE = re.compile(r"^(?P<entity>.+?)(?=[.\-]|_part)")


def entity_of(filename: str) -> str:
    """Contract §1: the entity is the file name up to the first `.`, `-` or `_part`."""
    base = filename.rsplit("/", 1)[-1]
    m = _ENTITY_RE.match(base)
    return m.group("entity") if m else base


ACCEPTED_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".xlsx", ".parquet", ".jsonl")


def file_format(filename: str) -> str | None:
    low = filename.lower()
    for suf in sorted(ACCEPTED_SUFFIXES, key=len, reverse=True):
        if low.endswith(suf):
            return suf.lstrip(".")
    return None


def arrow_type(logical: str):
    import pyarrow as pa
    return {
        STR: pa.string(), CODE2: pa.string(), TS: pa.timestamp("us"), DATE: pa.date32(),
        MONEY: pa.decimal128(16, 2), PRIC: pa.decimal128(16, 6), CNT: pa.decimal128(16, 4),
        DEC: pa.decimal128(16, 6), INT: pa.int64(),
    }[logical]


def arrow_schema(entity: str):
    """The typed (silver) Arrow schema of an entity's contract fields, PII fields replaced by hashes."""
    import pyarrow as pa
    cols = []
    for f in ENTITIES[entity].fields:
        cols.append((f"{f.name}_hash", pa.string()) if f.pii else (f.name, arrow_type(f.type)))
    if ENTITIES[entity].period_from:
        cols.append(("period", pa.string()))
    return pa.schema(cols)


def __getattr__(name: str):
    """`SUSPECT_SCHEMA` (the published list's Arrow schema) is built on first use, so that importing the
    contract stays light."""
    if name == "SUSPECT_SCHEMA":
        from pipelines.contract.published import suspect_schema
        return suspect_schema()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
