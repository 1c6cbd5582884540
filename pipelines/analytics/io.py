"""The analytics stage's I/O, through `pipelines.storage`: the inputs as DuckDB views at recorded Delta
versions, and the gold tables written partition by partition (a re-run replaces exactly its periods)."""
from __future__ import annotations

from typing import Mapping

import duckdb
import pyarrow as pa

from pipelines import contract
from pipelines.storage import Lake, native_select, sql_literal

#: DuckDB view -> lake table; `mdtrt` and `setl` are required, the others optional
INPUTS: dict[str, str] = {
    "mdtrt": "silver/mdtrt", "setl": "silver/setl", "diag": "silver/diag", "fee": "silver/fee_list_net",
    "fixmedins": "silver/fixmedins", "psn": "silver/psn", "insp_result": "silver/insp_result", "suspects": contract.GOLD_SUSPECTS,
    "kb_param": "silver/kb_param", "kb_hilist": "silver/kb_hilist",
}
REQUIRED = ("mdtrt", "setl")
#: the columns each input is read with (fewer columns, less to scan)
COLUMNS: dict[str, tuple[str, ...]] = {
    "mdtrt": ("mdtrt_id", "psn_no", "fixmedins_code", "med_type", "begntime", "endtime", "ipt_days",
              "dscg_maindiag_code", "atddr_no"),
    "setl": ("mdtrt_id", "fixmedins_code", "medfee_sumamt", "fund_pay_sumamt", "fulamt_ownpay_amt", "period"),
    "diag": ("mdtrt_id", "diag_code", "maindiag_flag"),
    "psn": ("psn_no", "brdy", "die_date"),
    "fee": ("fixmedins_code", "psn_no", "mdtrt_id", "hilist_code", "hilist_name", "med_chrgitm_type", "cnt",
            "det_item_fee_sumamt", "inscp_scp_amt", "chrgitm_lv", "fee_ocur_time", "period"),
    "suspects": ("fixmedins_code", "period", "amount"),
}
INDICATORS_TABLE, RISK_TABLE, ITEM_WATCH_TABLE, PEER_TABLE = (
    "gold/indicators", "gold/institution_risk", "gold/item_watch", "gold/peer_outliers")


class MissingInput(contract.UsageError):
    """A required input table is absent from the lake."""


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def register_inputs(con, lake: Lake, versions: Mapping[str, int] | None = None) -> dict[str, int]:
    """Register each input present in the lake as a view; return {table: Delta version read}.
    `fee_list_net` stands in for fee lines; without it, `fee_list` (not netted) is read."""
    used: dict[str, int] = {}
    for view, table in INPUTS.items():
        if view == "fee" and not lake.exists(table) and lake.exists("silver/fee_list"):
            table = "silver/fee_list"
        if not lake.exists(table):
            if view in REQUIRED:
                raise MissingInput(f"{lake.root}: {table} is missing; `fundguard analyze` needs visits and "
                                   f"settlements (缺少 {table}，请先入湖 mdtrt 与 setl)")
            continue
        version = (versions or {}).get(table, lake.version(table))
        cols = [c for c in COLUMNS.get(view, ()) if c in lake.delta(table, version).schema().to_arrow().names]
        snap = lake.native_files(table, version)
        select = native_select(snap, columns=cols or None) if snap is not None else None
        if select is not None:
            con.execute(f"CREATE OR REPLACE VIEW {view} AS {select}")
        else:
            ds = lake.dataset(table, version)
            con.register(f"__ds_{view}", ds)
            keep = ", ".join(cols) if cols else "*"
            con.execute(f"CREATE OR REPLACE VIEW {view} AS SELECT {keep} FROM __ds_{view}")
        used[table] = version
    return used


def available(used: Mapping[str, int]) -> set[str]:
    """The views registered, from the tables read."""
    have = {v for v, t in INPUTS.items() if t in used}
    if "silver/fee_list" in used:
        have.add("fee")
    return have


def years_of(con, period: str | None) -> list[str]:
    """The years to analyse: the period's year, or every year with visits."""
    if period:
        return [period[:4]]
    return [r[0] for r in con.sql("SELECT DISTINCT strftime(begntime, '%Y') FROM mdtrt WHERE begntime IS NOT NULL "
                                  "ORDER BY 1").fetchall()]


def write_periods(lake: Lake, table: str, data: pa.Table, periods: list[str],
                  commit_metadata: Mapping[str, str] | None = None) -> int | None:
    """Replace exactly the `periods` partitions of a gold table by `data` (partitioned by `period`)."""
    if not periods:
        return lake.version(table)
    pred = "period IN (" + ", ".join(sql_literal(p) for p in sorted(periods)) + ")"
    return lake.replace_where(table, data, pred, ["period"], commit_metadata=commit_metadata, schema_mode="merge")
