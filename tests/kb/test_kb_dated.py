"""A claim is judged with the knowledge-base release in force on its date (kb_valid_from ≤ date < kb_valid_to)."""
from __future__ import annotations

import datetime as dt

from openpyxl import load_workbook

from pipelines.catalog import load_catalog
from pipelines.kb.pipeline import import_release
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.storage import Lake
from pipelines.synth.kb_batches import write_batches
from tests.kb.claims import fee, write_claims

LEVEL = "第五批_药品限医疗机构级别.xlsx"
POINTS_SHEET = "“药品限医疗机构级别”规则对应知识点明细"


def test_claims_are_judged_with_the_release_in_force_on_their_date(tmp_path):
    src = tmp_path / "src"
    exp = {e.batch: e for e in write_batches(src, scale=0, only={"5"})}
    code = next(p["code"] for p in exp["5"].planted if p["point_no"] == 1)   # 限二级及以上医疗机构
    lake = Lake(tmp_path / "lake")
    a = import_release(src, lake, effective=dt.date(2025, 1, 1)).release_id
    wb = load_workbook(src / LEVEL)
    wb[POINTS_SHEET].cell(row=5, column=4, value="限三级医院")              # point 1 tightened: 三级 only
    wb.save(src / LEVEL)
    b = import_release(src, lake, effective=dt.date(2025, 7, 1)).release_id
    # an older release imported last still applies to its own dates only
    older = import_release(src, lake, effective=dt.date(2024, 1, 1)).release_id
    write_claims(lake, tmp_path / "claims", {
        "fixmedins": [{"fixmedins_code": "H2", "fixmedins_name": "二级医院", "hosp_lv": "05"}],
        "fee_list": [
            fee(1, "M1", "P1", "H2", "2025-03-01 10:00:00", code),    # release a (二级 allowed): not flagged
            fee(2, "M2", "P1", "H2", "2025-06-30 23:59:00", code),    # last day of a: not flagged
            fee(3, "M3", "P1", "H2", "2025-07-01 00:00:00", code),    # first day of b (三级 only): flagged
            fee(4, "M4", "P1", "H2", "2025-08-01 10:00:00", code),    # b: flagged
            fee(5, "M5", "P1", "H2", "2024-06-01 10:00:00", code),    # the older release (三级 only): flagged
            fee(6, "M6", "P1", "H2", "2023-06-01 10:00:00", code),    # before every release: not evaluated
        ],
    })
    catalog = load_catalog()
    res = screen(lake, DuckDBEngine(), catalog, catalog.select(rule_ids=["hosp_level_restricted_drug"]),
                 run_id="dated", write_staging=False, progress=False)
    assert sorted(r["feedetl_sn"] for r in res.suspects.to_pylist()) == ["3", "4", "5"]
    assert "限三级医疗机构使用" in res.suspects["evidence"][0].as_py()
    spans = {(r["kb_release"], r["kb_valid_from"], r["kb_valid_to"])
             for r in lake.read("silver/kb_hilist").to_pylist() if r["hilist_code"] == code}
    assert spans == {(older, dt.date(2024, 1, 1), dt.date(2025, 1, 1)), (a, dt.date(2025, 1, 1), dt.date(2025, 7, 1)),
                     (b, dt.date(2025, 7, 1), None)}
