"""The indicators (监管指标) as data: name, Chinese and English label, the input each needs, and whether a high
value is the risky side (those feed the peer scores and the unsupervised risk)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Indicator:
    name: str
    zh: str
    en: str
    needs: str = "setl"        # the input without which the indicator is null (`absent_inputs` says so)
    risky_high: bool = True    # a high value is the suspicious side (peer outliers, unsupervised risk)
    volume: bool = False       # a size, not a rate: compared in the model, not flagged as an outlier
    floor: float = 0.0         # smallest spread the peer score divides by (a share: 1 percentage point)


I = Indicator
A = "mdtrt.atddr_no"   # the attending physician: an optional column, read as an input of its own
INDICATORS: tuple[Indicator, ...] = (
    I("visits", "就诊人次", "visits", "mdtrt", False, True),
    I("persons", "就诊人数", "persons", "mdtrt", False, True),
    I("inpatient_stays", "住院人次", "inpatient stays", "mdtrt", False, True),
    I("medfee_total", "医疗费总额", "total medical cost", "setl", False, True),
    I("fund_total", "基金支付总额", "fund paid", "setl", False, True),
    I("visits_per_person", "人次人头比", "visits per person", "mdtrt"),
    I("cost_per_visit", "次均费用", "cost per visit", "setl"),
    I("fund_per_visit", "次均基金支付", "fund paid per visit", "setl"),
    I("cost_per_stay", "住院次均费用", "cost per inpatient stay", "setl"),
    I("cost_per_bed_day", "床日费用", "cost per inpatient day", "setl"),
    I("avg_stay", "平均住院日", "average length of stay", "mdtrt"),
    I("inpatient_share", "住院人次占比", "share of visits that are inpatient stays", "mdtrt", floor=0.01),
    I("fund_share", "基金支付占比", "fund share of cost", "setl", floor=0.01),
    I("self_pay_share", "全自费占比", "self-pay share of cost", "setl", floor=0.01),
    I("drug_share", "药占比", "drug share of cost", "fee_list", floor=0.01),
    I("consumable_share", "耗占比", "consumable share of cost", "fee_list", floor=0.01),
    I("exam_lab_share", "检查检验占比", "exam and lab share of cost", "fee_list", floor=0.01),
    I("readmit15_rate", "15日再住院率", "readmission within 15 days", "mdtrt", floor=0.01),
    I("readmit30_rate", "30日再住院率", "readmission within 30 days", "mdtrt", floor=0.01),
    I("weekend_night_adm_share", "周末及夜间入院占比", "weekend or night admissions", "mdtrt", floor=0.01),
    I("physicians", "主治医师数", "distinct physicians", A, False, True),
    I("visits_per_physician", "医师人均接诊人次", "visits per physician", A),
    I("shared_patient_share", "跨机构就诊患者占比", "patients also seen at other institutions", "mdtrt", floor=0.01),
    # physicians also attending at another institution in the period (多点执业, or a code lent to another)
    I("shared_physician_share", "跨机构执业医师占比", "physicians also attending at other institutions", A,
      floor=0.01),
    I("shared_physician_visit_share", "跨机构执业医师接诊人次占比",
      "visits attended by physicians also attending at other institutions", A, floor=0.01),
    I("dx_groups", "主诊断类目数", "distinct main-diagnosis groups", "diag", False, True),
    I("dx_entropy", "诊断分布熵", "diagnosis mix entropy", "diag", False),
    I("casemix_index", "病种结构指数", "case-mix index (expected cost of the diagnoses)", "diag", floor=0.03),
    I("cost_vs_expected", "费用与病种预期比", "cost per visit against the diagnoses' expected cost", "diag", floor=0.03),
    I("coding_intensity", "诊断费用背离度", "expected cost of the diagnoses against the cost billed (upcoding)", "diag",
      floor=0.03),
    I("time_index", "时间消耗指数", "length of stay against the diagnoses' expected stay", "diag", floor=0.03),
    I("admission_index", "收治指数", "admissions against the diagnoses' expected admission rate", "diag",
      floor=0.03),
    # volume and intensity shapes (issue #16): computable from visits, settlements, diagnoses and persons only
    I("cost_per_person", "人均医疗费用", "cost per person", "setl"),
    I("fund_per_person", "人均基金支付", "fund paid per person", "setl"),
    I("stays_per_inpatient", "住院患者人均住院次数", "stays per inpatient", "mdtrt"),
    I("revisit7_share", "7日内复诊占比", "visits within 7 days of the person's previous visit here", "mdtrt",
      floor=0.01),
    I("same_day_revisit_share", "同日重复就诊占比", "visits on the same day as the person's previous visit here",
      "mdtrt", floor=0.005),
    I("frequent_patient_share", "高频就诊患者占比", "patients with 4 or more visits here", "mdtrt", floor=0.01),
    I("frequent_patient_visit_share", "高频患者人次占比", "visits by patients with 4 or more visits here", "mdtrt",
      floor=0.01),
    I("outside_patient_share", "外来患者人次占比", "visits by patients whose main institution is another", "mdtrt",
      floor=0.01),
    I("visits_per_physician_day", "医师日均接诊人次", "visits per physician and working day", A),
    I("physician_day_p90", "医师单日接诊量P90", "90th percentile of a physician's visits in one day", A),
    I("visits_per_active_day", "日均就诊人次", "visits per day with visits", "mdtrt"),
    I("high_cost_share", "高额费用人次占比", "visits costing over twice their diagnosis' expected cost", "diag",
      floor=0.01),
    I("long_stay_share", "超长住院占比", "stays over twice their diagnosis' expected length", "diag", floor=0.01),
    I("cost_dispersion", "费用离散度", "spread of log cost against expected", "diag", False),
    I("top_dx_share", "首位诊断集中度", "share of the most frequent diagnosis group", "diag", False, floor=0.01),
    I("heavy_dx_share", "高权重诊断占比", "visits with a diagnosis costing 1.5× its kind's mean elsewhere", "diag",
      floor=0.01),
    I("elderly_share", "老年患者人次占比", "visits by persons aged 65 or more", "psn", False, floor=0.01),
    I("mean_age", "患者平均年龄", "mean age at visit", "psn", False),
    # a visit beginning after the person's death date (the death day itself is not one: contract §4 after_death)
    I("after_death_share", "死亡后就诊人次占比", "visits beginning after the person's death date", "psn",
      floor=0.005),
    I("covisit_share", "结伴就医人次占比", "visits in repeated co-visit pairs", "mdtrt", floor=0.005),
    I("suspect_amount_share", "疑点金额占比", "rule-hit amount per fund paid", "gold/suspects", floor=0.01),
    I("suspects_per_100_visits", "每百人次疑点数", "rule hits per 100 visits", "gold/suspects"),
)
BY_NAME = {i.name: i for i in INDICATORS}
#: indicators compared against peers (rates; sizes are left to the model)
RATES = tuple(i.name for i in INDICATORS if not i.volume)
FLOORS = {i.name: i.floor for i in INDICATORS}
RISKY = tuple(i.name for i in INDICATORS if i.risky_high and not i.volume)

#: 机构类型 and 医院等级 labels (contract §2), and the coarse level class of each hosp_lv
TYPE_LABELS = {"1": ("医疗机构", "medical institution"), "2": ("零售药店", "retail pharmacy")}
HOSP_LV_LABELS = {"01": "三级特等", "02": "三级甲等", "03": "三级乙等", "04": "三级丙等", "05": "二级甲等",
                  "06": "二级乙等", "07": "二级丙等", "08": "一级甲等", "09": "一级乙等", "10": "一级丙等",
                  "11": "无等级"}
LEVEL_CLASS = {**{c: "三级" for c in ("01", "02", "03", "04")}, **{c: "二级" for c in ("05", "06", "07")},
               **{c: "一级" for c in ("08", "09", "10")}, "11": "无等级"}
LEVEL_CLASS_EN = {"三级": "tertiary", "二级": "secondary", "一级": "primary", "无等级": "unrated"}
