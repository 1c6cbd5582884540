"""Incremental screening on a two-drop sequence: the first drop is screened and published in full; the second
brings a late refund (of a line a person-partitioned rule flagged) and a late re-sent file (correcting a line an
institution-partitioned rule flagged). The incremental run re-screens only the changed institutions and the
touched persons' buckets, publishes only that scope, and gold then equals a full re-screen."""
from __future__ import annotations

import csv
from pathlib import Path

import pyarrow.compute as pc
import pytest

from pipelines import config
from pipelines.app.incremental import screen_incremental
from pipelines.catalog import load_catalog
from pipelines.contract import GOLD_SUSPECTS
from pipelines.app.load import load_drop
from pipelines.app.screening import screen_gate_publish
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.storage import Lake
from pipelines.synth.generator import generate

CATALOG = load_catalog()
RULES = CATALOG.select()
COMPARED = ["suspect_id", "rule_id", "fixmedins_code", "period", "psn_no", "mdtrt_id", "feedetl_sn", "hilist_code",
            "event_time", "amount", "evidence"]


def landing_lines(drop: Path) -> tuple[list[str], dict[str, dict]]:
    rows, header = {}, None
    for f in sorted(drop.glob("fee_list*.csv")):
        with f.open(encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames
            for r in reader:
                rows[r["feedetl_sn"]] = r
    return header, rows


def flagged_line(lake: Lake, family: str, lines: dict, avoid: set, prefer_travellers: bool = False) -> dict:
    """A published finding of `family` on a CSV line; with `prefer_travellers`, of a person who also visited
    other institutions when there is one (their other institutions must not be re-screened)."""
    gold = lake.read(GOLD_SUSPECTS).to_pylist()
    found = [s for s in sorted(gold, key=lambda r: r["suspect_id"])
             if s["family"] == family and s["feedetl_sn"] in lines and s["fixmedins_code"] not in avoid]
    if not found:
        raise AssertionError(f"no {family} finding on a CSV line")
    if prefer_travellers:
        visits = lake.read("silver/mdtrt", columns=["psn_no", "fixmedins_code"]).to_pylist()
        places: dict = {}
        for v in visits:
            places.setdefault(v["psn_no"], set()).add(v["fixmedins_code"])
        found.sort(key=lambda s: len(places.get(s["psn_no"], ())) < 2)
    return found[0]


def change_drop(lake: Lake, drop1: Path, drop: Path) -> tuple[dict, dict]:
    """A late drop against `drop1`'s published findings: a refund of a line `daily_cap` flagged (person family)
    and a re-sent corrected line `price_above_cap` flagged (institution family), with their settlements re-sent."""
    header, lines = landing_lines(drop1)
    refunded = flagged_line(lake, "daily_cap", lines, set(), prefer_travellers=True)   # person-partitioned family
    resent = flagged_line(lake, "price_above_cap", lines, {refunded["fixmedins_code"]})  # institution family
    orig = lines[refunded["feedetl_sn"]]
    refund = dict(orig, feedetl_sn="99" + orig["feedetl_sn"][-10:].rjust(10, "0"), cnt="-" + orig["cnt"],
                  det_item_fee_sumamt="-" + orig["det_item_fee_sumamt"],
                  inscp_scp_amt=("-" + orig["inscp_scp_amt"]) if orig["inscp_scp_amt"] else "",
                  fulamt_ownpay_amt="0.00", init_feedetl_sn=orig["feedetl_sn"])
    fixed = dict(lines[resent["feedetl_sn"]])
    fixed["pric"] = "0.01"
    fixed["det_item_fee_sumamt"] = f"{float(fixed['cnt']) * 0.01:.2f}"
    fixed["inscp_scp_amt"] = fixed["det_item_fee_sumamt"]
    fixed["fulamt_ownpay_amt"] = "0.00"
    drop.mkdir()
    with (drop / "fee_list_part9.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerow(refund)                       # the late refund
        w.writerow(fixed)                        # the late re-sent (corrected) line
    # the settlements of both visits are re-sent with their totals corrected (the silver suite checks them)
    delta = {orig["setl_id"]: -float(orig["det_item_fee_sumamt"])}
    old_line = lines[resent["feedetl_sn"]]
    delta[old_line["setl_id"]] = delta.get(old_line["setl_id"], 0.0) + float(fixed["det_item_fee_sumamt"]) \
        - float(old_line["det_item_fee_sumamt"])
    setls = {r["setl_id"]: r for r in lake.read("silver/setl", columns=["setl_id", "medfee_sumamt"]).to_pylist()}
    with (drop1 / "setl.csv").open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        setl_header, rows = reader.fieldnames, [r for r in reader if r["setl_id"] in delta]
    with (drop / "setl.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=setl_header)
        w.writeheader()
        for r in rows:                           # from the lake's current total (an earlier change included)
            r["medfee_sumamt"] = f"{float(setls[r['setl_id']]['medfee_sumamt']) + delta[r['setl_id']]:.2f}"
            w.writerow(r)
    return refunded, resent


@pytest.fixture(scope="module")
def two_drops(tmp_path_factory):
    base = tmp_path_factory.mktemp("incr")
    drop1 = base / "drop1"
    generate(drop1, scale=1, seed=7)
    lake = Lake(base / "lake")
    conf = config.load()
    load_drop(drop1, lake, conf, progress=False)
    first = screen_gate_publish(lake, conf=conf, progress=False)
    assert first.published
    refunded, resent = change_drop(lake, drop1, base / "drop2")
    load_drop(base / "drop2", lake, conf, progress=False)
    return lake, first, refunded, resent, drop1


def test_incremental_run_publishes_exactly_a_full_rescreen(two_drops):
    lake, first, refunded, resent, _ = two_drops
    before = lake.read(GOLD_SUSPECTS)
    out = screen_incremental(lake, DuckDBEngine(), CATALOG, RULES, run_id="incr-1", conf=config.load(),
                             budget=None, progress=False)
    assert not isinstance(out, str), out
    assert out.gate.success and out.gold_version is not None
    # only what changed was re-screened: the two institutions (not the other institutions the refunded person
    # visited: institution families see only their institution's partitions) and the persons touched
    visited = {v["fixmedins_code"] for v in lake.read("silver/mdtrt", columns=["psn_no", "fixmedins_code"]).to_pylist()
               if v["psn_no"] == refunded["psn_no"]}
    assert len(visited) >= 2, "the sample has no person who visited two institutions with a daily_cap finding"
    assert out.scope.institutions == {refunded["fixmedins_code"], resent["fixmedins_code"]}
    assert {refunded["psn_no"], resent["psn_no"]} <= out.scope.persons
    assert len(out.scope.persons) == 2 and 1 <= len(out.scope.buckets) <= 2
    gold = lake.read(GOLD_SUSPECTS)
    full = screen(lake, DuckDBEngine(), CATALOG, RULES, run_id="full", write_staging=False, progress=False).suspects
    key = [("suspect_id", "ascending")]
    assert gold.select(COMPARED).sort_by(key).equals(full.select(COMPARED).sort_by(key))
    ids = set(gold.column("suspect_id").to_pylist())
    assert refunded["suspect_id"] not in ids and resent["suspect_id"] not in ids
    # exactly the scope was published: every finding the incremental run wrote lies in it, every other kept
    # its first publication
    mine = gold.filter(pc.equal(gold.column("run_id"), "incr-1")).to_pylist()
    kinds = {r.id: CATALOG.families[r.family].partition for r in RULES}
    for r in mine:
        assert (kinds[r["rule_id"]] == "institution" and r["fixmedins_code"] in out.scope.institutions) or \
               (kinds[r["rule_id"]] == "person" and r["psn_no"] is not None)
    kept = gold.filter(pc.not_equal(gold.column("run_id"), "incr-1"))
    assert kept.num_rows > 0.8 * before.num_rows
    assert set(kept.column("run_id").to_pylist()) == {first.run_id}


def test_nothing_changed_publishes_nothing(two_drops):
    lake, *_ = two_drops
    version = lake.version(GOLD_SUSPECTS)
    out = screen_incremental(lake, DuckDBEngine(), CATALOG, RULES, run_id="incr-2", conf=config.load(),
                             budget=None, progress=False)
    assert not isinstance(out, str), out
    assert out.jobs == 0 and not out.scope.institutions and not out.scope.persons
    assert out.gold_version is None and lake.version(GOLD_SUSPECTS) == version


def test_run_command_incremental(two_drops, capsys):
    """`fundguard run --incremental` on a third drop: the run says it was incremental and what it replaced,
    exits 0, and gold equals a full re-screen."""
    from pipelines.cli import main

    lake, _, _, _, drop1 = two_drops
    refunded, resent = change_drop(lake, drop1, lake.root.parent / "drop3")
    assert main(["run", "--landing", str(lake.root.parent / "drop3"), "--lake", str(lake.root), "--incremental",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "增量 incremental: 2 家机构 institutions re-screened, 2 人 persons touched" in out, out
    gold = lake.read(GOLD_SUSPECTS)
    full = screen(lake, DuckDBEngine(), CATALOG, RULES, run_id="full", write_staging=False, progress=False).suspects
    key = [("suspect_id", "ascending")]
    assert gold.select(COMPARED).sort_by(key).equals(full.select(COMPARED).sort_by(key))
    assert not {refunded["suspect_id"], resent["suspect_id"]} & set(gold.column("suspect_id").to_pylist())


def test_a_full_run_after_incremental_publications_passes_the_gate(two_drops):
    """After incremental runs published a few findings each, a full run's hits are compared with the published
    list, not with the last incremental run's share of it (which failed every busy rule's band). A tight band
    (×2 from 2 hits) that the same list passes against itself."""
    lake, *_ = two_drops
    conf = config.load()
    conf = {**conf, "gate": {**(conf.get("gate") or {}), "hit_rate_band": 2.0, "hit_rate_min_hits": 2}}
    out = screen_gate_publish(lake, conf=conf, progress=False)
    assert out.published, out.reason
    assert set(lake.read(GOLD_SUSPECTS).column("run_id").to_pylist()) == {out.run_id}


def test_incremental_without_a_base_runs_in_full(tmp_path, capsys):
    """No publication yet: `--incremental` screens the whole district and says why; a period with it is refused."""
    from pipelines.contract import UsageError

    drop = tmp_path / "drop"
    generate(drop, scale=0.2, seed=3)
    lake = Lake(tmp_path / "lake")
    conf = config.load()
    load_drop(drop, lake, conf, progress=False)
    out = screen_gate_publish(lake, conf=conf, progress=False, incremental=True)
    assert out.published and out.scope_note == ""
    assert "nothing published yet" in capsys.readouterr().err
    with pytest.raises(UsageError, match="--incremental"):
        screen_gate_publish(lake, conf=conf, progress=False, incremental=True, period="2023")
