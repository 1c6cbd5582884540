"""Which rule families can be decided when one claim is settled (事中), and why: data, not code paths.

A claim is checked "as of" its claim time T: the latest of its settlement time, discharge time, admission time
and fee times. A family is *decidable* at claim time when its verdict on the claim's own records (lines,
visit, settlement) depends only on the claim, on master data (the person, the institution, the knowledge base)
and on records dated at or before T (the person's earlier visits and fee lines, the institution's purchases
before a sale). Such a family gives at claim time exactly the verdict batch screening gives later.

A family is *not decidable* when records that can only arrive after T change the verdict on the claim's
records: a later line of the same day, a stay still open at T, the month's end, other patients' stays. Those
families are never evaluated by the service; every answer lists them with the reason, so nothing is skipped
silently. Batch screening (`fundguard screen`) still decides them after the fact.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    decidable: bool
    reason: str          # English
    reason_zh: str       # 中文


D, N = True, False

#: family -> whether a claim-time check decides it, with the reason (every family of rules/families.yml)
FAMILIES: dict[str, Decision] = {
    # ---- the claim alone (+ person, institution, knowledge base)
    "gender_restricted": Decision(D, "the claim's lines and the person's gender", "本次明细与参保人性别"),
    "age_restricted": Decision(D, "the claim's lines and the person's birth date", "本次明细与出生日期"),
    "inpatient_only": Decision(D, "the claim's lines and its med_type", "本次明细与医疗类别"),
    "hosp_level_restricted": Decision(D, "the claim's lines and the institution's level", "本次明细与机构等级"),
    "indication_restricted": Decision(D, "the claim's lines and its own diagnoses", "本次明细与本次诊断"),
    "per_diem_over_stay": Decision(D, "the stay's own lines and days", "本次住院明细与住院天数"),
    "pay_days_exceeded": Decision(D, "the stay's own lines", "本次住院明细"),
    "duplicate_line": Decision(D, "lines of the same visit", "同一就诊的明细"),
    "price_above_cap": Decision(D, "the line's price and the knowledge base's cap", "单价与限价"),
    "charge_outside_stay": Decision(D, "the stay's own dates and lines", "本次住院日期与明细"),
    "bed_hanging": Decision(D, "the stay's own days and lines", "本次住院每日明细"),
    "self_pay_ratio": Decision(D, "the claim's own settlement (not decided when none is sent)",
                               "本次结算（未提交结算时不判定）"),
    "class_c_fund_paid": Decision(D, "the line's own level and scope amount", "本条明细等级与符合范围金额"),
    "nursing_level_overlap": Decision(D, "nursing lines of the same visit and day", "同一就诊同日护理明细"),
    "day_surgery_overstay": Decision(D, "the stay's own dates", "本次住院日期"),
    "gender_diag_conflict": Decision(D, "the claim's diagnoses and the person's gender", "本次诊断与参保人性别"),
    "insurance_restricted": Decision(D, "the claim's lines and its settlement's (else the person's) insurance type",
                                     "本次明细与结算（或参保人）险种"),
    "herbal_not_paid": Decision(D, "the herbal lines of the same visit and day", "同一就诊同日中药饮片明细"),
    "internet_excluded": Decision(D, "the claim's lines and its internet-hospital flag", "本次明细与互联网医院标志"),
    # ---- looking backwards only: earlier records of the person or institution
    "second_line": Decision(D, "the person's earlier first-line drugs of the same knowledge point, in the window",
                            "窗口内参保人此前同一知识点一线用药"),
    "min_interval": Decision(D, "the person's previous line of the item, dated before the claim's line",
                             "参保人此前同一项目明细"),
    "split_admission": Decision(D, "the person's preceding stay at the institution, discharged before the "
                                   "readmission", "此前同一机构住院（已出院）"),
    "same_day_outpatient": Decision(D, "the person's earlier visits of the day at the institution",
                                    "同日同机构此前门诊"),
    "after_death": Decision(D, "the visit date and the person's death date", "就诊日期与死亡日期"),
    "markup_exceeded": Decision(D, "the institution's latest purchase at or before the sale", "此前最近一次采购"),
    # ---- needing the future
    "daily_cap": Decision(N, "a later line of the same day (another visit, anywhere) can push the day over the "
                             "cap and make this claim's lines suspects too",
                          "当日稍后（其他就诊）的明细可使当日总量超限，本次明细随之成为疑点"),
    "period_cap": Decision(N, "later lines within the period (another visit, anywhere) can push the count over "
                              "the cap and make this claim's lines suspects too",
                           "周期内稍后的明细可使累计次数超限，本次明细随之成为疑点"),
    "bundled_item": Decision(N, "an a-item billed later in the window (same day or within the hour, in either "
                                "order) makes this claim's b-line a suspect",
                             "窗口内稍后计费的主项目也使本次被包含项目成为疑点"),
    "outpatient_during_stay": Decision(N, "the stay around the outpatient visit is still open at claim time; its "
                                          "discharge date is known only later",
                                       "门诊时住院尚未出院，出院日期事后才知"),
    "overlapping_stays": Decision(N, "the earlier stay may still be open when the later one settles; its discharge "
                                     "date is known only later", "较早的住院可能尚未出院，出院日期事后才知"),
    "inventory_shortfall": Decision(N, "month-end inventory: every line and movement of the month, all patients",
                                    "月末进销存：需全月全部明细与出入库"),
    "drug_resale": Decision(N, "later purchases of the drug within the window (at any institution) can push the "
                               "person's quantity over the course limit and make this claim's lines suspects too",
                            "窗口内稍后（任一机构）的购药可使累计用量超过疗程上限，本次明细随之成为疑点"),
    "covisit_group": Decision(N, "other persons' visits: co-visit days and the chance expectation need the whole "
                                 "year of visits at the institution, most of them after claim time",
                              "结伴就医需该机构全年其他参保人的就诊：同日就诊天数与随机预期多在事后才知"),
    "inpatients_over_beds": Decision(N, "the institution's census: other patients' stays, still open at claim "
                                        "time, reach the lake only when they are settled",
                                     "在院人数需其他患者尚未结算的住院"),
}


def decidable(family: str) -> bool:
    """True when the family is decided at claim time (KeyError for a family this table does not know)."""
    return FAMILIES[family].decidable


def undecidable_families() -> list[dict]:
    """The families never evaluated at claim time, with their reasons (for every answer)."""
    return [{"family": f, "reason": d.reason, "reason_zh": d.reason_zh}
            for f, d in sorted(FAMILIES.items()) if not d.decidable]
