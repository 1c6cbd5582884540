"""Silver suites after a load: key, code, range and cross-table failures; incomplete settlements warn."""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal as D

import pyarrow as pa
import pytest

from fg_lakes import ts, typed

from pipelines import contract
from pipelines.quality.silver import validate_silver
from pipelines.storage import Lake

LINEAGE = {"_drop": pa.string(), "_file": pa.string(), "_line": pa.int64()}
QUARANTINE = pa.schema([
    ("load_id", pa.string()), ("drop_id", pa.string()), ("file", pa.string()), ("line", pa.int64()),
    ("entity", pa.string()), ("field", pa.string()), ("reason", pa.string()), ("raw_row", pa.string()),
    ("loaded_at", pa.timestamp("us", tz="UTC"))])


def fee(sn, mdtrt, setl, amount, **kw):
    return dict(feedetl_sn=sn, mdtrt_id=mdtrt, setl_id=setl, psn_no="P1", fixmedins_code="H1", hilist_code="X1",
                fee_ocur_time=ts("2023-03-01 08:00:00"), cnt=D("1"), pric=D(amount), det_item_fee_sumamt=D(amount),
                med_chrgitm_type="01", period="2023-03", _drop="d1", _file="fee_list.csv", _line=int(sn) + 1) | kw


def base_rows():
    return {
        "mdtrt": [dict(mdtrt_id=m, psn_no="P1", fixmedins_code="H1", med_type="21",
                       begntime=ts("2023-03-01 07:00:00"), period="2023-03") for m in ("M1", "M2")],
        "setl": [dict(setl_id="S1", mdtrt_id="M1", psn_no="P1", fixmedins_code="H1",
                      setl_time=ts("2023-03-03 09:00:00"), medfee_sumamt=D("80.00"), fund_pay_sumamt=D("60.00"),
                      refd_setl_flag="0", period="2023-03"),
                 dict(setl_id="S2", mdtrt_id="M2", psn_no="P1", fixmedins_code="H1",
                      setl_time=ts("2023-03-03 09:00:00"), medfee_sumamt=D("100.00"), fund_pay_sumamt=D("60.00"),
                      period="2023-03")],
        "fee_list": [fee("1", "M1", "S1", "40.00"), fee("2", "M1", "S1", "40.00"), fee("3", "M2", "S2", "100.00")],
        "psn": [dict(psn_no="P1", gend="1", brdy=dt.date(1940, 5, 1), psn_name_hash="ab12")],
    }


def write(lake: Lake, rows: dict, quarantine: list[dict] | None = None) -> None:
    for entity, rs in rows.items():
        t = typed(entity, rs, LINEAGE)  # contract columns (PII as *_hash) + lineage
        lake.overwrite(f"silver/{entity}", t)
        if entity == "fee_list":
            lake.overwrite("silver/fee_list_net", t)
    if quarantine:
        lake.overwrite("quarantine", pa.Table.from_pylist(quarantine, schema=QUARANTINE))


def q_row(load_id, raw: dict, entity="fee_list"):
    return dict(load_id=load_id, drop_id="d1", file=f"{entity}.csv", line=9, entity=entity, field="cnt",
                reason="unparseable", raw_row=json.dumps(raw, ensure_ascii=False), loaded_at=None)


def check(tmp_path, mutate=None, quarantine=None, load_id="L1"):
    lake = Lake(tmp_path / "lake")
    rows = base_rows()
    if mutate:
        mutate(rows)
    write(lake, rows, quarantine)
    return validate_silver(lake, {}, load_id, report_dir=tmp_path / "report")


def test_clean_silver_passes(tmp_path):
    res = check(tmp_path)
    assert res.success, res.failures
    assert res.failures == [] and res.warnings == []
    assert (res.report_path / "index.html").exists()


def test_only_tables_changed_by_the_load_are_validated(tmp_path):
    lake = Lake(tmp_path / "lake")
    rows = base_rows()
    rows["mdtrt"][1]["med_type"] = None  # a required field missing in mdtrt (a failure when validated)...
    write(lake, rows)
    before = {t: lake.version(t) for t in lake.tables("silver")}
    lake.overwrite("silver/psn", typed("psn", base_rows()["psn"], LINEAGE))  # ...but this load changed psn only
    assert validate_silver(lake, before, "L2", report_dir=tmp_path / "r").success
    # the load names only the tables it wrote (as ingestion does): the others were not changed by it
    assert validate_silver(lake, {"silver/psn": before["silver/psn"]}, "L2", report_dir=tmp_path / "r1").success
    everything = validate_silver(lake, {}, "L2", report_dir=tmp_path / "r2")
    assert any("silver/mdtrt 有 1 行必填字段为空（med_type）" in f for f in everything.failures), everything.failures


def _dup_key(rows):
    rows["fee_list"].append(fee("1", "M1", "S1", "40.00", _line=30))


def _bad_code(rows):
    rows["fee_list"][0]["med_chrgitm_type"] = "99"


def _money(rows):
    rows["setl"][1]["fund_pay_sumamt"] = D("20000000000.00")


def _time(rows):
    rows["mdtrt"][0]["begntime"] = ts("1980-01-01 00:00:00")


def _unknown_visit(rows):
    rows["fee_list"].append(fee("4", "M404", None, "5.00"))


def _total(rows):
    rows["setl"][0]["medfee_sumamt"] = D("90.00")


def _null_key(rows):
    rows["mdtrt"].append(dict(mdtrt_id=None, psn_no="P1", fixmedins_code="H1", med_type="11",
                              begntime=ts("2023-03-01 07:00:00"), period="2023-03"))


@pytest.mark.parametrize("mutate, words", [
    (_dup_key, "silver/fee_list 主键 (mdtrt_id, feedetl_sn) 重复"),
    (_bad_code, "values outside their code table: med_chrgitm_type=99"),
    (_money, "out of range (money ±1e10, times 1990-01-01..2100-01-01): fund_pay_sumamt=20000000000.00"),
    (_time, "begntime=1980-01-01 00:00:00"),
    (_unknown_visit, "1 fee lines whose mdtrt_id is not in silver/mdtrt: M404"),
    (_total, "settlement S1: medfee_sumamt 90.00 vs netted lines 80.00"),
    (_null_key, "rows with a null key (mdtrt_id)"),
], ids=["duplicate_key", "code", "money", "time", "unknown_visit", "settlement_total", "null_key"])
def test_silver_failures(tmp_path, mutate, words):
    res = check(tmp_path, mutate)
    assert not res.success
    assert any(words in f for f in res.failures), res.failures


def test_lines_without_setl_id_count_for_their_visits_only_settlement(tmp_path):
    """setl_id is optional on a fee line: a line without it belongs to its visit's one settlement (S1's lines
    split between a file with setl_id and one without used to fail the load as a total mismatch)."""
    def drop_setl_id(rows):
        rows["fee_list"][1]["setl_id"] = None
    res = check(tmp_path, drop_setl_id)
    assert res.success, res.failures

    def and_lose_it(rows):            # a real gap is still a failure
        drop_setl_id(rows)
        rows["fee_list"][1]["det_item_fee_sumamt"] = D("30.00")
    res = check(tmp_path / "b", and_lose_it)
    assert any("settlement S1" in f for f in res.failures), res.failures


@pytest.mark.engine
def test_an_optional_key_part_may_be_null(tmp_path):
    """inv_movement's key ends with batch_no, an optional field: movements without it are not a null key."""
    from pipelines.quality.silver_frames import entity_frame

    t = pa.table({"fixmedins_code": ["H1", "H1"], "hilist_code": ["X1", "X1"], "mvmt_type": ["purchase"] * 2,
                  "occur_time": pa.array([dt.datetime(2023, 3, 1, 8), dt.datetime(2023, 3, 2, 8)], pa.timestamp("us")),
                  "batch_no": pa.array([None, None], pa.string()), "cnt": [1.0, 2.0]})
    assert entity_frame("silver/inv_movement", t).table.num_rows == 0   # no row at fault
    twice = pa.concat_tables([t, t.slice(0, 1)])                        # the same key twice (null matches null)
    assert entity_frame("silver/inv_movement", twice).table.num_rows == 2


def test_rows_at_fault_are_found_across_batches_of_files(tmp_path, monkeypatch):
    """A snapshot is read a few files at a time: a key repeated in two files of different batches, a null
    key and a bad code are all found, and a key in one file only is not."""
    from pipelines.quality import silver_frames
    from pipelines.storage import Lake

    lake = Lake(tmp_path / "lake")
    schema = contract.arrow_schema("fee_list")
    def part(inst, lines):
        filled = {"psn_no": "P1", "fee_ocur_time": dt.datetime(2023, 3, 1), "hilist_code": "X1",
                  "cnt": D("1"), "pric": D("1"), "det_item_fee_sumamt": D("1")}
        cols = {f.name: [filled.get(f.name)] * len(lines) for f in schema}
        for i, (visit, sn, chrg) in enumerate(lines):
            cols["fixmedins_code"][i], cols["mdtrt_id"][i], cols["feedetl_sn"][i] = inst, visit, sn
            cols["chrgitm_lv"][i] = chrg
        return pa.table(cols, schema=schema)
    for data in (part("H1", [("M1", "1", "01"), ("M1", "2", "01")]), part("H2", [("M2", "1", "01")]),
                 part("H3", [("M1", "1", "01"), ("M3", "1", "zz")]), part("H4", [(None, "1", "01")])):
        lake.append("silver/fee_list", data, partition_by=["fixmedins_code"])
    snap = lake.native_files("silver/fee_list")
    assert len(snap.files) == 4
    monkeypatch.setattr(silver_frames, "BATCH_FILES", 1)
    rows = silver_frames.entity_frame("silver/fee_list", snap).table.to_pylist()
    keyed = sorted((r["_key"] or "", r["bad_codes"] or "") for r in rows)
    assert keyed == [("", ""), ("M1|1", ""), ("M1|1", ""), ("M3|1", "chrgitm_lv=zz")]


def test_partly_quarantined_settlement_is_a_warning_not_a_failure(tmp_path):
    def lose_line(rows):  # line 2 of S1 was quarantined: S1 totals 80.00, its loaded lines 40.00
        rows["fee_list"] = [r for r in rows["fee_list"] if r["feedetl_sn"] != "2"]
    quarantine = [q_row("L1", {"费用明细流水号": "2", "MDTRT_ID": "M1", "setl_id": "S1", "cnt": "x"}),
                  q_row("L0", {"feedetl_sn": "9", "mdtrt_id": "M2", "setl_id": "S2"})]  # another load: ignored
    res = check(tmp_path, lose_line, quarantine)
    assert res.success, res.failures
    assert len(res.warnings) == 1
    assert "incomplete settlement S1" in res.warnings[0] and "M1" in res.warnings[0]
    # the same gap without a quarantined line is a failure
    res = check(tmp_path / "b", lose_line, [quarantine[1]])
    assert not res.success
    assert any("settlement S1" in f for f in res.failures)


def test_a_load_is_checked_in_the_institutions_it_changed(tmp_path):
    """Tables partitioned by institution are read in the partitions the load added or removed files in: an old
    fault of H2 does not fail a load that touched H1 only, and fails one that touched H2."""
    lake = Lake(tmp_path / "lake")
    rows = base_rows()
    rows["mdtrt"].append(dict(rows["mdtrt"][1], mdtrt_id="M9", fixmedins_code="H2"))
    rows["fee_list"].append(fee("9", "M9", None, "5.00", fixmedins_code="H2", med_chrgitm_type="99"))
    for entity, rs in rows.items():
        pb = ["fixmedins_code"] if entity != "psn" else None
        t = typed(entity, rs, LINEAGE)
        lake.overwrite(f"silver/{entity}", t, partition_by=pb)
        if entity == "fee_list":
            lake.overwrite("silver/fee_list_net", t, partition_by=pb)
    before = {t: lake.version(t) for t in lake.tables("silver")}

    def load(line):
        for name in ("silver/fee_list", "silver/fee_list_net"):
            lake.append(name, typed("fee_list", [line], LINEAGE))

    load(fee("4", "M2", None, "0.00"))                                  # H1 only
    res = validate_silver(lake, before, "L2", report_dir=tmp_path / "r")
    assert res.success, res.failures
    assert validate_silver(lake, {}, "L2", report_dir=tmp_path / "r0").failures   # everything: H2's fault
    before = {t: lake.version(t) for t in lake.tables("silver")}
    load(fee("5", "M9", None, "0.00", fixmedins_code="H2"))
    res = validate_silver(lake, before, "L3", report_dir=tmp_path / "r2")
    assert any("med_chrgitm_type=99" in f for f in res.failures), res.failures


def test_visits_of_a_quarantined_person_are_loaded_and_reported_incomplete(tmp_path):
    """Contract §1: a record whose related rows were quarantined stays loaded and is reported as incomplete —
    the person of M1 and M2 was quarantined in this load (gend 9): a warning, not a failure; a person missing
    without a quarantined row in this load is not reported so."""
    def lose_person(rows):
        rows["psn"] = []
    res = check(tmp_path, lose_person, [q_row("L1", {"psn_no": "P1", "gend": "9"}, entity="psn")])
    assert res.success, res.failures
    assert any("incomplete visit" in w and "M1, M2" in w for w in res.warnings), res.warnings
    res = check(tmp_path / "b", lose_person, [q_row("L0", {"psn_no": "P1", "gend": "9"}, entity="psn")])
    assert not any("was quarantined" in w for w in res.warnings), res.warnings
