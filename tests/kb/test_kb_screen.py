"""A drop screened with the knowledge imported from the generated batch files (every published kind) finds the
planted case of every kind, on both engines: each case is built from the imported kb row it must break."""
from __future__ import annotations

import datetime as dt

import pytest

from pipelines.catalog import load_catalog
from pipelines.kb.pipeline import import_release
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.storage import Lake
from pipelines.synth.kb_batches import write_batches
from tests.kb.claims import fee, write_claims

DAY = "2025-08-01"
#: batch -> the family that screens its kind (contract §4 and the national kinds)
FAMILY = {"1-1": "gender_restricted", "1-2": "gender_restricted", "1-3": "age_restricted", "1-4": "age_restricted",
          "1-5": "age_restricted", "8-2": "age_restricted", "3-1": "insurance_restricted",
          "3-2": "insurance_restricted", "4": "inpatient_only", "5": "hosp_level_restricted",
          "6": "pay_days_exceeded", "8-3": "pay_days_exceeded", "7": "bundled_item", "8-1": "daily_cap",
          "8-4": "period_cap", "9": "second_line", "10": "internet_excluded", "11-1": "herbal_not_paid",
          "11-2": "herbal_not_paid", **{str(b): "indication_restricted" for b in range(12, 19)}}
#: the kb column a planted point must carry for its family to read it
NEEDS = {"gender_restricted": "gend_lmt", "inpatient_only": "ipt_only", "pay_days_exceeded": "max_pay_days",
         "hosp_level_restricted": "hosp_lv_min", "indication_restricted": "lmt_diag"}


class Drop:
    """Claims planted one case per kind: own person and visit each, so a case breaks only its own rule."""

    def __init__(self):
        self.t = {"fixmedins": [{"fixmedins_code": "H1", "fixmedins_name": "三级医院", "hosp_lv": "01"},
                                {"fixmedins_code": "H0", "fixmedins_name": "无等级诊所", "hosp_lv": "11"}],
                  "psn": [], "mdtrt": [], "fee_list": [], "diag": []}
        self.sn, self.expected = 0, set()

    def visit(self, n: str, *, inst="H1", gend="1", brdy="1980-01-01", med_type="11", internet="0", diag="Z00"):
        self.t["psn"].append({"psn_no": f"P{n}", "gend": gend, "brdy": brdy, "insutype": "310"})
        self.t["mdtrt"].append({"mdtrt_id": f"M{n}", "psn_no": f"P{n}", "fixmedins_code": inst, "med_type": med_type,
                                "begntime": f"{DAY} 08:00:00", "endtime": "2025-08-31 10:00:00",
                                "internet_flag": internet})
        self.t["diag"].append({"mdtrt_id": f"M{n}", "diag_code": diag, "maindiag_flag": "1"})

    def line(self, n: str, code: str, *, day=DAY, cnt="1", inst="H1", family=None, **extra) -> None:
        self.sn += 1
        self.t["fee_list"].append(fee(self.sn, f"M{n}", f"P{n}", inst, f"{day} 10:00:00", code, cnt=cnt, **extra))
        if family:
            self.expected.add((family, f"M{n}", str(self.sn)))


def _plant(drop: Drop, batch: str, row: dict, n: str) -> None:
    fam, code = FAMILY[batch], row["hilist_code"]
    kw = {}
    if fam == "gender_restricted":
        kw["gend"] = "1" if row["gend_lmt"] == "2" else "2"
    elif fam == "age_restricted":
        kw["brdy"] = "1950-01-01" if row["age_max"] is not None else "2023-01-01"
    elif fam == "hosp_level_restricted":
        kw["inst"] = "H0"
    elif fam == "pay_days_exceeded":
        kw["med_type"] = "21"
    elif fam == "internet_excluded":
        kw["internet"] = "1"
    drop.visit(n, **kw)
    inst = kw.get("inst", "H1")
    if fam == "pay_days_exceeded":                       # one line a day, one day more than paid
        days = int(row["max_pay_days"]) + 1
        for d in range(days):
            drop.line(n, code, day=(dt.date(2025, 8, 1) + dt.timedelta(d)).isoformat(),
                      family=fam if d == days - 1 else None)
    elif fam in ("daily_cap", "period_cap"):
        cap = row["max_cnt_per_day"] if fam == "daily_cap" else row["period_cnt_max"]
        drop.line(n, code, cnt=str(int(cap) + 1), family=fam)
    else:
        drop.line(n, code, inst=inst, family=fam, **({"med_chrgitm_type": "10"} if batch.startswith("11") else {}))


def _drop(lake, pairs: list[dict], hil: list[dict], planted: dict[str, list[dict]]) -> Drop:
    drop = Drop()
    rows = {r["hilist_code"]: r for r in hil}
    for batch, points in sorted(planted.items()):
        if batch == "7":
            p = pairs[0]
            drop.visit("7")
            drop.line("7", p["hilist_code_a"])
            drop.line("7", p["hilist_code_b"], family="bundled_item")
            continue
        need = NEEDS.get(FAMILY[batch])
        row = next(rows[p["code"]] for p in points if p["code"] in rows
                   and (need is None or rows[p["code"]][need] is not None))
        _plant(drop, batch, row, batch.replace("-", "_"))
    # negatives: a second-line drug after its first-line drug, a not-alone herbal piece inside a formula,
    # an unrestricted item
    second = next(rows[p["code"]] for p in planted["9"] if p["code"] in rows)
    drop.visit("n9")
    drop.line("n9", "FIRST01", day="2025-07-25")
    drop.line("n9", second["hilist_code"])
    alone = next(rows[p["code"]] for p in planted["11-2"] if p["code"] in rows)
    drop.visit("n11")
    drop.line("n11", alone["hilist_code"], med_chrgitm_type="10")
    drop.line("n11", "T_OTHER", med_chrgitm_type="10")
    drop.line("n11", "CTRL001")
    return drop


@pytest.fixture(scope="module")
def kb_lake(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kbscreen")
    src, local = tmp / "nhsa", tmp / "local"
    expected = write_batches(src, scale=0)
    local.mkdir()
    planted: dict[str, list[dict]] = {}
    for e in expected:
        planted.setdefault(e.batch, []).extend(e.planted)
    group = planted["9"][0]["name"]
    (local / "kb_hilist.csv").write_text(          # the first-line drug of a second-line point (curated locally)
        f"hilist_code,hilist_name,list_type,second_line,line_group\nFIRST01,一线药品,101,0,{group}\n", encoding="utf-8")
    (local / "kb_param.csv").write_text("key,value\nsecond_line_window_days,30\n", encoding="utf-8")
    lake = Lake(tmp / "lake")
    res = import_release(src, lake, effective=dt.date(2025, 7, 1), local_dir=local)
    assert res.written
    hil, pairs = lake.read("silver/kb_hilist").to_pylist(), lake.read("silver/kb_item_pair").to_pylist()
    drop = _drop(lake, pairs, hil, planted)
    write_claims(lake, tmp / "claims", drop.t)
    return lake, drop, res.release_id


def _screen(lake, engine):
    catalog = load_catalog()
    rules = catalog.select(families=sorted(set(FAMILY.values())))
    res = screen(lake, engine, catalog, rules, run_id="kb", write_staging=False, progress=False)
    return {(r["family"], r["mdtrt_id"], r["feedetl_sn"]): r for r in res.suspects.to_pylist()}


def _check(found: dict, drop: Drop, release: str) -> None:
    assert len({f for f, *_ in drop.expected}) == 13          # every kind of the batches, each by its family
    missing = drop.expected - set(found)
    assert not missing, f"planted cases not found: {sorted(missing)}"
    assert not [k for k in found if k[1] in ("Mn9", "Mn11")], "a negative case was flagged"
    for fam in ("insurance_restricted", "second_line", "period_cap", "herbal_not_paid", "internet_excluded"):
        ev = [r["evidence"] for k, r in found.items() if k[0] == fam]
        assert ev and all(release in e and "批" in e and "行" in e for e in ev), fam


def test_a_drop_screened_with_the_imported_knowledge_finds_every_planted_kind_duckdb(kb_lake):
    lake, drop, release = kb_lake
    _check(_screen(lake, DuckDBEngine()), drop, release)


@pytest.mark.spark
def test_a_drop_screened_with_the_imported_knowledge_finds_every_planted_kind_spark(kb_lake, spark_engine):
    lake, drop, release = kb_lake
    found = _screen(lake, spark_engine)
    _check(found, drop, release)
    duck = _screen(lake, DuckDBEngine())
    assert {k: r["evidence"] for k, r in found.items()} == {k: r["evidence"] for k, r in duck.items()}
