"""(3) The ledger: the same drop twice changes nothing; a corrected re-send replaces the old rows."""
from __future__ import annotations

import copy

from pipelines.storage import Lake

from . import drops


def test_same_drop_twice_changes_nothing(tmp_path, lake, load):
    d = drops.write_canonical_drop(tmp_path / "d")
    load(d)
    versions = {t: lake.version(t) for t in lake.tables("silver") + lake.tables("bronze")}
    again = load(d)
    assert again.status == "nothing_to_load"
    assert {f.status for f in again.files} == {"skipped"}
    assert {t: lake.version(t) for t in versions} == versions
    ledger = lake.read("_meta/ingest_ledger").to_pylist()
    assert len(ledger) == len(drops.CANONICAL)


def test_same_file_under_another_name_is_skipped(tmp_path, lake, load):
    d1 = drops.write_canonical_drop(tmp_path / "d1", {"psn": drops.PSN})
    load(d1)
    d2 = drops.write_canonical_drop(tmp_path / "d2", {"psn": drops.PSN})
    (d2 / "psn.csv").rename(d2 / "psn-resend.csv")
    rep = load(d2)
    assert rep.files[0].status == "skipped" and "d1/psn.csv" in rep.files[0].note


def test_corrected_resend_replaces(tmp_path, lake, load):
    load(drops.write_canonical_drop(tmp_path / "d1"))
    fees = copy.deepcopy(drops.FEE_LIST)
    fees[2][11], fees[2][13], fees[2][15] = "5", "77.50", "77.50"   # F2 corrected: 5 boxes instead of 3
    fees[5][5] = "2022-04-01 09:40:00"                               # F5 moved to April (another partition)
    fees.append(["F7", "M2", "S2", "P2", "H001", "2022-03-10 09:45:00", "250101001", "血常规", "L01", "04",
                 "02", "1", "98.5", "98.50", "", "98.50", "0", "A02", "D02", "0", ""])  # a new line
    psn = copy.deepcopy(drops.PSN)
    psn[2][5] = "310"                                                # P2 changed insurance type
    inv = copy.deepcopy(drops.INV)
    inv[1][3] = "12"                                                 # stocktake (no batch_no) corrected
    rep = load(drops.write_canonical_drop(tmp_path / "d2", {"fee_list": fees, "psn": psn, "inv_movement": inv}))
    assert rep.balanced and rep.rows_quarantined == 0

    fl = {r["feedetl_sn"]: r for r in lake.read("silver/fee_list").to_pylist()}
    assert len(fl) == 7
    assert str(fl["F2"]["cnt"]) == "5.0000" and fl["F2"]["_drop"] == "d2"
    assert fl["F5"]["period"] == "2022-04"
    assert fl["F1"]["_drop"] == "d2"     # identical re-sent rows simply carry the newest lineage
    net = {r["feedetl_sn"]: r for r in lake.read("silver/fee_list_net").to_pylist()}
    assert str(net["F2"]["cnt"]) == "4.0000"          # 5 - refund of 1
    assert "F7" in net and "F3" not in net
    p = {r["psn_no"]: r for r in lake.read("silver/psn").to_pylist()}
    assert len(p) == 2 and p["P2"]["insutype"] == "310"
    inv_rows = lake.read("silver/inv_movement").to_pylist()
    assert len(inv_rows) == 3                           # null batch_no matched, not duplicated
    assert {str(r["cnt"]) for r in inv_rows if r["mvmt_type"] == "stocktake"} == {"12.0000"}


def test_kb_in_a_drop_replaces_the_knowledge_base(tmp_path, lake, load):
    load(drops.write_canonical_drop(tmp_path / "d1"))
    kb = [drops.KB_PARAM[0], ["readmit_days", "30"]]     # the new kb has one parameter only
    load(drops.write_canonical_drop(tmp_path / "d2", {"kb_param": kb, "psn": drops.PSN[:2]}))
    assert lake.read("silver/kb_param").to_pylist()[0]["value"] == "30"
    assert lake.read("silver/kb_param").num_rows == 1
    assert lake.read("silver/kb_hilist").num_rows == 2   # a drop without kb_hilist leaves it as it is


def test_load_knowledge_base_only_when_missing(tmp_path, lake):
    from pipelines.ingest import load_knowledge_base
    from .conftest import SALT
    kb = drops.write_canonical_drop(tmp_path / "kb", {k: v for k, v in drops.CANONICAL.items() if k.startswith("kb_")})
    (kb / "README.md").write_text("not a kb table")
    rep = load_knowledge_base(kb, lake, salt=SALT)
    assert rep is not None and rep.rows_loaded == 5
    assert load_knowledge_base(kb, lake, salt=SALT) is None


def test_a_load_fills_the_missing_kb_tables_and_keeps_the_drops_own(tmp_path):
    """A drop with its own kb_hilist and no kb_item_pair: the load (`run`, `ingest` and the DAG share it) takes
    kb_item_pair from the shipped sample and keeps the drop's kb_hilist — `run` used to skip the sample (no
    bundled_item findings), `ingest` to reload every sample table."""
    from pipelines import config
    from pipelines.app.load import kb_dir_of, load_drop
    from pipelines.synth import generate

    drop = tmp_path / "landing"
    generate(drop, scale=0.02, seed=3)
    (drop / "kb_item_pair.csv").unlink()
    lines = (drop / "kb_hilist.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (drop / "kb_hilist.csv").write_text("".join(lines[:-1]), encoding="utf-8")     # one code fewer than the sample's
    conf = config.load()
    lake = Lake(tmp_path / "lake")
    load_drop(drop, lake, conf, progress=False)
    sample = kb_dir_of(conf) / "kb_item_pair.csv"
    pairs = len(sample.read_text(encoding="utf-8").strip().splitlines()) - 1
    assert (lake.read("silver/kb_hilist").num_rows, lake.read("silver/kb_item_pair").num_rows) == (len(lines) - 2, pairs)
