"""A tiny lake for the workflow: four institutions (one per level), a published list for 2022 and 2023."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa
import pytest

from pipelines.contract import arrow_schema
from pipelines.contract import SUSPECT_SCHEMA
from pipelines.storage import Lake

UTC = dt.timezone.utc
PUBLISHED_2022 = dt.datetime(2023, 1, 15, tzinfo=UTC)
PUBLISHED_2023 = dt.datetime(2024, 1, 15, tzinfo=UTC)

INSTITUTIONS = [  # code, name, hosp_lv
    ("H1", "第一人民医院", "02"),   # 三级
    ("H2", "第二人民医院", "05"),   # 二级
    ("H3", "城东社区卫生院", "08"),  # 一级
    ("H4", "康宁药店", "11"),       # 无等级
]

# (suspect_id, rule_id, family, category, institution, period, amount)
SUSPECTS_2022 = [
    ("P22-H1-a", "daily_cap_x", "daily_cap", "超量收费", "H1", "2022-05", "300.00"),     # confirmed last year, fires again → not rectified
    ("P22-H2-a", "price_cap_x", "price_above_cap", "超标准收费", "H2", "2022-06", "80.00"),  # upheld last year, fires no more → rectified
    ("P22-H3-a", "duplicate_x", "duplicate_line", "重复收费", "H3", "2022-07", "50.00"),  # dismissed last year → not a problem
    ("P22-H4-a", "gender_x", "gender_restricted", "超医保支付范围", "H4", "2022-08", "20.00"),  # upheld, fires again → not rectified
]
SUSPECTS_2023 = [
    ("S-H1-1", "daily_cap_x", "daily_cap", "超量收费", "H1", "2023-03", "1200.00"),
    ("S-H1-2", "daily_cap_x", "daily_cap", "超量收费", "H1", "2023-04", "100.00"),
    ("S-H1-3", "duplicate_x", "duplicate_line", "重复收费", "H1", "2023-05", "60.00"),
    ("S-H1-4", "price_cap_x", "price_above_cap", "超标准收费", "H1", "2023-06", "45.50"),
    ("S-H2-1", "duplicate_x", "duplicate_line", "重复收费", "H2", "2023-02", "2500.00"),
    ("S-H2-2", "daily_cap_x", "daily_cap", "超量收费", "H2", "2023-07", "30.00"),
    ("S-H2-3", "duplicate_x", "duplicate_line", "重复收费", "H2", "2023-08", "70.00"),
    ("S-H3-1", "duplicate_x", "duplicate_line", "重复收费", "H3", "2023-09", "15.00"),
    ("S-H4-1", "gender_x", "gender_restricted", "超医保支付范围", "H4", "2023-10", "20.00"),
]


def suspect_rows(specs, published_at):
    rows = []
    for sid, rule, family, cat, inst, period, amount in specs:
        rows.append({
            "suspect_id": sid, "rule_id": rule, "rule_version": 1, "family": family, "category": cat,
            "severity": "violation", "fixmedins_code": inst, "period": period, "psn_no": "P" + sid,
            "mdtrt_id": "M" + sid, "setl_id": None, "feedetl_sn": "F" + sid, "hilist_code": "X001",
            "event_time": dt.datetime.fromisoformat(period + "-10 09:00:00"), "amount": Decimal(amount),
            "evidence": f"{sid} 疑点依据", "run_id": "run1", "rule_set_fingerprint": "fp",
            "input_versions": "{}", "published_at": published_at,
        })
    return pa.Table.from_pylist(rows, schema=SUSPECT_SCHEMA)


def fixmedins_table(institutions):
    schema = arrow_schema("fixmedins")
    rows = [{"fixmedins_code": c, "fixmedins_name": n, "hosp_lv": lv, "fixmedins_type": "2" if lv == "11" else "1"}
            for c, n, lv in institutions]
    return pa.Table.from_pylist(rows, schema=schema)


@pytest.fixture
def lake(tmp_path) -> Lake:
    lk = Lake(tmp_path / "lake")
    lk.append("silver/fixmedins", fixmedins_table(INSTITUTIONS))
    lk.append("gold/suspects", suspect_rows(SUSPECTS_2022, PUBLISHED_2022), partition_by=["fixmedins_code", "period"])
    lk.append("gold/suspects", suspect_rows(SUSPECTS_2023, PUBLISHED_2023), partition_by=["fixmedins_code", "period"])
    # screened, never published (the gate blocked it)
    lk.append("staging/suspects", suspect_rows([("S-H1-staged", "daily_cap_x", "daily_cap", "超量收费", "H1",
                                                  "2023-11", "10.00")], None))
    return lk


def write_csv(path, header, rows):
    import csv

    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path
