"""The phrasings table (rules/kb/phrasings.yml) reads remarks into parameters; what it cannot read is None."""
from __future__ import annotations

import pytest

from pipelines.kb.io import load_yaml
from pipelines.kb.phrasings import Curation, curate, load_curation, load_phrasings, read_group

TABLE = load_phrasings(load_yaml("phrasings.yml"))


@pytest.mark.parametrize("group, text, params", [
    ("age", "限儿童", {"age_max": 17}),
    ("age", "限 6 岁以下儿童", {"age_max": 6}),          # padded text; 以下 includes the number
    ("age", "限不满１８岁", {"age_max": 17}),             # full-width digits; 不满 excludes it
    ("age", "限60岁及以上", {"age_min": 60}),
    ("age", "限2～12岁", {"age_min": 2, "age_max": 12}),
    ("hosp_level", "限二级及以上医疗机构", {"hosp_lv_min": 2}),
    ("hosp_level", "限三级医院使用", {"hosp_lv_min": 1}),
    ("course", "限支付14天", {"max_pay_days": 14}),
    ("course", "每年限支付30天", {"pay_days_per_year": 30}),
    ("care_mode", "限住院", {"ipt_only": "1"}),
    ("care_mode", "限门诊慢特病", {"med_type_only": "14"}),
])
def test_phrasings_read(group, text, params):
    assert read_group(group, [text], TABLE)[0] == params


@pytest.mark.parametrize("group, text", [("age", "限青少年"), ("hosp_level", "限具有相应资质的医疗机构"),
                                         ("course", "限按疗程支付"), ("care_mode", "限医生开具")])
def test_unreadable_text_is_not_guessed(group, text):
    assert read_group(group, [text], TABLE) is None


def test_curation_takes_the_longest_text_and_validates_codes():
    rows = load_curation([("c.csv", 2, {"name": "", "text": "限糖尿病患者", "icd10": "E10|E11"}),
                          ("c.csv", 3, {"name": "", "text": "限Ⅱ型糖尿病患者", "icd10": "E11"})])
    assert curate("二甲双胍", ["2024版备注：限Ⅱ型 糖尿病患者"], rows).icd10 == "E11"
    assert curate("二甲双胍", ["限高血压患者"], rows) is None
    with pytest.raises(ValueError, match="c.csv line 4: field icd10"):
        load_curation([("c.csv", 4, {"text": "限x", "icd10": "糖尿病"})])
    assert isinstance(rows[0], Curation) and rows[0].source == "c.csv:2"
