"""`fundguard reproduce`: a published run is re-screened from its recorded input versions and rule set."""
from __future__ import annotations

import datetime as dt
from argparse import Namespace
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from pipelines.app import reproduce as rp
from pipelines.commands import reproduce as reproduce_command
from pipelines.publish.publisher import publish
from pipelines.catalog import load_catalog
from pipelines.screen.engines import DuckDBEngine
from pipelines.screen.pipeline import screen
from pipelines.screen.regression import typed_csv
from pipelines.storage import Lake

CATALOG = load_catalog()
RULE = CATALOG.by_id["daily_cap_item"]
CASE = CATALOG.rules_dir / "regression" / "daily_cap_item"


def with_period(t: pa.Table, time_col: str) -> pa.Table:
    period = pc.strftime(t.column(time_col), format="%Y-%m")
    return t.set_column(t.schema.get_field_index("period"), "period", period)


@pytest.fixture()
def published(tmp_path):
    """A tiny lake built from daily_cap_item's regression inputs, screened and published as run R1."""
    lake = Lake(tmp_path / "lake")
    fee = with_period(typed_csv(CASE / "fee_list.csv", "fee_list"), "fee_ocur_time")
    lake.append("silver/fee_list_net", fee, partition_by=["fixmedins_code", "period"])
    lake.append("silver/kb_hilist", typed_csv(CASE / "kb_hilist.csv", "kb_hilist"))
    res = screen(lake, DuckDBEngine(), CATALOG, [RULE], run_id="R1", write_staging=False, progress=False)
    assert res.suspects.num_rows == 4  # lines 1, 2, 9, 10 (rules/regression/daily_cap_item/expected.csv)
    publish(lake, res.suspects, scope=res.scope,
            published_at=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), rule_ids=[RULE.id])
    return lake, res, fee


def test_reproduce_returns_the_published_list_after_silver_changed(published, capsys):
    lake, res, fee = published
    # silver moves on: line 3's person now also exceeds the cap (a new hit), and a new table appears
    extra = fee.filter(pc.equal(fee.column("feedetl_sn"), "3"))
    extra = extra.set_column(0, "feedetl_sn", pa.array(["13"]))
    lake.append("silver/fee_list_net", extra)
    lake.append("silver/diag", pa.table({"mdtrt_id": ["M1"], "diag_code": ["N18"]}))
    now = screen(lake, DuckDBEngine(), CATALOG, [RULE], run_id="R2", write_staging=False, progress=False)
    assert now.suspects.num_rows == 6  # the current silver gives a different list

    again = rp.reproduce(lake, "R1")
    assert again.equal, (again.missing, again.extra, again.changed)
    assert sorted(again.rescreened.column("suspect_id").to_pylist()) == \
        sorted(res.suspects.column("suspect_id").to_pylist())
    assert again.rescreened.column("amount").to_pylist()[0] == Decimal("40.00")
    assert reproduce_command.run(Namespace(run_id="R1", lake=str(lake.root), engine="duckdb")) == 0
    assert "identical" in capsys.readouterr().out


def test_a_changed_rule_set_cannot_reproduce(published, monkeypatch, capsys):
    lake, _, _ = published
    changed = load_catalog()
    changed.templates["daily_cap"] = changed.templates["daily_cap"] + "\n-- edited since the run\n"
    with pytest.raises(rp.NotReproducible, match="fingerprint"):
        rp.reproduce(lake, "R1", catalog=changed)
    monkeypatch.setattr("pipelines.catalog.load_catalog", lambda *a, **k: changed)
    assert reproduce_command.run(Namespace(run_id="R1", lake=str(lake.root), engine="duckdb")) == 2
    assert "fingerprint" in capsys.readouterr().err


def test_a_tampered_publication_differs(published, capsys):
    """Run R2 published R1's findings tampered with: one left out, one amount raised, one made up."""
    lake, res, _ = published
    rows = sorted(res.suspects.to_pylist(), key=lambda r: r["suspect_id"])
    left_out, raised = rows[0], rows[1]
    raised["amount"] += Decimal("100.00")
    made_up = dict(rows[2], suspect_id="made-up", feedetl_sn="99")
    tampered = [dict(r, run_id="R2") for r in [*rows[1:], made_up]]
    publish(lake, pa.Table.from_pylist(tampered, schema=res.suspects.schema), scope=res.scope,
            published_at=dt.datetime(2024, 2, 1, tzinfo=dt.timezone.utc), rule_ids=[RULE.id])

    again = rp.reproduce(lake, "R2")
    assert not again.equal
    assert again.missing == ["made-up"]                       # published, not found again
    assert again.extra == [left_out["suspect_id"]]            # found again, not published
    assert again.changed == [(raised["suspect_id"], "amount", raised["amount"], raised["amount"] - 100)]
    assert reproduce_command.run(Namespace(run_id="R2", lake=str(lake.root), engine="duckdb")) == 1
    assert "1 missing, 1 extra, 1 changed" in capsys.readouterr().out
    assert rp.reproduce(lake, "R1").equal                     # R1 is still read at the commit that published it


def test_gold_changed_after_publishing_reproduces_from_the_publishing_commit(published):
    lake, _, _ = published
    lake.delete("gold/suspects", "feedetl_sn = '1'")
    # the commit of R1 is still the reference: reproduce reads gold at the version that published R1
    assert rp.reproduce(lake, "R1").equal
    with pytest.raises(rp.NotReproducible, match="never published"):
        rp.reproduce(lake, "R9")
