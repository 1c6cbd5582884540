"""Indicators computed on a hand-made lake of visits, settlements and persons (one institution), read the way
`fundguard analyze` reads a lake (`analytics.io.register_inputs`)."""
from __future__ import annotations

import datetime as dt

import pyarrow as pa

from pipelines.analytics import io
from pipelines.analytics.indicators import build_visits, compute_indicators, present_columns
from pipelines.storage import Lake


def _lake(tmp_path, death: dt.date | None, with_psn: bool = True) -> Lake:
    lake = Lake(tmp_path / "lake")
    days = [dt.datetime(2023, 3, d, 9) for d in (1, 10, 11, 12)]     # P1 dies on the 10th: the 11th is after
    ids = ["M1", "M2", "M3", "M4"]
    lake.append("silver/mdtrt", pa.table({"mdtrt_id": ids, "psn_no": ["P1", "P1", "P1", "P2"],
                                          "fixmedins_code": ["H1"] * 4, "med_type": ["11"] * 4, "begntime": days,
                                          "endtime": pa.nulls(4, pa.timestamp("us")), "ipt_days": pa.nulls(4, pa.int32()),
                                          "dscg_maindiag_code": pa.nulls(4, pa.string())}))
    lake.append("silver/setl", pa.table({"mdtrt_id": ids, "fixmedins_code": ["H1"] * 4, "period": ["2023-03"] * 4,
                                         "medfee_sumamt": [100.0] * 4, "fund_pay_sumamt": [80.0] * 4,
                                         "fulamt_ownpay_amt": [0.0] * 4}))
    if with_psn:
        lake.append("silver/psn", pa.table({"psn_no": ["P1", "P2"], "brdy": [dt.date(1950, 1, 1), dt.date(1960, 1, 1)],
                                            "die_date": pa.array([death, None], pa.date32())}))
    return lake


def _after_death(lake: Lake) -> dict:
    con = io.connect()
    have = io.available(io.register_inputs(con, lake))
    build_visits(con, have, ["2023"])
    con.execute("CREATE TEMP TABLE an_covisit (mdtrt_id VARCHAR)")
    out = compute_indicators(con, present_columns(con, have), ["2023"])
    return {(r["grain"], r["period"]): r["after_death_share"] for r in out.to_pylist()}


def test_after_death_share_counts_visits_after_the_death_day_only(tmp_path):
    """One visit of four begins after the person's death date (the death day itself is not one, as in the
    after_death family): a supervisor's first signal, computable without fee lines or a screening."""
    assert _after_death(_lake(tmp_path / "a", dt.date(2023, 3, 10))) == {("year", "2023"): 0.25,
                                                                        ("month", "2023-03"): 0.25}
    assert set(_after_death(_lake(tmp_path / "b", None)).values()) == {0.0}
    assert set(_after_death(_lake(tmp_path / "c", None, with_psn=False)).values()) == {None}   # no persons: null
