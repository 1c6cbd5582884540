"""Never guess a number: an ambiguous numeral or one with more decimals than its field holds is quarantined
with file, line and field, unless the drop's manifest declares its decimal mark."""
from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.ingest.inspection import IngestError

from . import drops


def _drop(folder, amounts: list[str], manifest: str | None = None, **other):
    rows = [drops.FEE_HEAD]
    for i, a in enumerate(amounts):
        r = dict(zip(drops.FEE_HEAD, drops.FEE_LIST[1]))
        r.update(feedetl_sn=f"F{i}", det_item_fee_sumamt=a, inscp_scp_amt="", **other)
        rows.append([r[h] for h in drops.FEE_HEAD])
    drops.write_csv(folder / "fee_list.csv", rows)
    if manifest is not None:
        (folder / "manifest.yml").write_text(manifest, encoding="utf-8")
    return folder


@pytest.mark.parametrize("value,why", [
    ("12,80", "ambiguous numeral '12,80'"),            # decimal comma
    ("1.234,50", "ambiguous numeral '1.234,50'"),      # mixed separators, comma last
    ("1,23", "ambiguous numeral '1,23'"),              # not groups of three
    ("1.005", "more decimals than the field holds (2) '1.005'"),
    ("1e3", "not a number '1e3'"),                     # an exponent is never read
])
def test_ambiguous_amounts_are_quarantined_with_file_line_field(tmp_path, load, lake, value, why):
    rep = load(_drop(tmp_path / "d", ["10.00", value]))
    fr = rep.file("fee_list.csv")
    assert (fr.rows_loaded, fr.rows_quarantined) == (1, 1)
    q = lake.read("quarantine").to_pylist()[0]
    assert (q["file"], q["line"], q["field"]) == ("fee_list.csv", 3, "det_item_fee_sumamt")
    assert why in q["reason"]
    assert lake.read("silver/fee_list", columns=["det_item_fee_sumamt"]).column(0).to_pylist() == [Decimal("10.00")]


def test_unambiguous_forms_load_exactly(tmp_path, load, lake):
    rep = load(_drop(tmp_path / "d", ["1,234.50", "1.500", "-3", "12."]))
    assert rep.file("fee_list.csv").rows_quarantined == 0
    got = sorted(lake.read("silver/fee_list", columns=["det_item_fee_sumamt"]).column(0).to_pylist())
    assert got == [Decimal("-3.00"), Decimal("1.50"), Decimal("12.00"), Decimal("1234.50")]


def test_price_and_count_hold_their_own_scales(tmp_path, load, lake):
    rep = load(_drop(tmp_path / "d", ["10.00"], pric="15.1234567"))     # pric holds 6 decimals
    q = lake.read("quarantine").to_pylist()
    assert rep.file("fee_list.csv").rows_quarantined == 1 and q[0]["field"] == "pric"
    assert "(6)" in q[0]["reason"]


def test_manifest_declares_a_decimal_comma(tmp_path, load, lake):
    rep = load(_drop(tmp_path / "d", ["12,80", "1.234,50", "12.5"], manifest='decimal: ","\n', pric="15,5"))
    fr = rep.file("fee_list.csv")
    assert (fr.rows_loaded, fr.rows_quarantined) == (2, 1)            # "12.5" is ambiguous in a comma drop
    got = sorted(lake.read("silver/fee_list", columns=["det_item_fee_sumamt"]).column(0).to_pylist())
    assert got == [Decimal("12.80"), Decimal("1234.50")]
    assert {r["line"] for r in lake.read("quarantine").to_pylist()} == {4}


@pytest.mark.parametrize("text", ['decimal: ";"\n', "locale: de\n", "- a\n"])
def test_a_manifest_not_understood_refuses_the_drop(tmp_path, load, lake, text):
    with pytest.raises(IngestError, match="manifest.yml"):
        load(_drop(tmp_path / "d", ["1.00"], manifest=text))
    assert not lake.exists("bronze/fee_list")
