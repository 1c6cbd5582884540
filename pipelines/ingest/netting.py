"""Refund netting (contract §4) of the institutions a load touched: silver/fee_list → silver/fee_list_net.

Runs on a thread of its own (`start`) while the other silver tables are written. On a fresh table the lines
are read back from silver/fee_list's Parquet (cheaper than typing them again) and netted one partition at a
time (`_net_by_partition`); otherwise the touched institutions' partitions are replaced.
"""
from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

from pipelines import contract
from pipelines.ingest import nodes
from pipelines.ingest.context import LoadContext, trace
from pipelines.storage import CopiedFiles, NativeSnapshot, native_select, sql_literal

NET = "silver/fee_list_net"
#: silver/fee_list_net is netted one partition at a time from silver/fee_list's files (a plain COPY into
#: the partition's folder); partitions smaller than this go together through one partitioned COPY
NET_PARTITION_MIN_ROWS = 5_000
#: the refunds, their targets and the targets' changes, staged once per load (small tables)
_STAGED = {"refund": "_net_refund", "matched": "_net_matched", "adj": "_net_adj"}


class Background(threading.Thread):
    """Run one function on a thread; `join` re-raises what it raised."""

    def __init__(self, fn, *args):
        super().__init__(daemon=True, name=f"ingest-{fn.__name__}")
        self.fn, self.args, self.error = fn, args, None
        self.start()

    def run(self) -> None:
        try:
            self.fn(*self.args)
        except BaseException as exc:  # noqa: BLE001 - re-raised by join()
            self.error = exc

    def join(self, timeout=None) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


def start(ctx: LoadContext, fresh: bool) -> Background:
    """`net_fee_list` on a thread, with a DuckDB cursor of its own; `join()` waits for it."""
    return Background(net_fee_list, dataclasses.replace(ctx, con=ctx.con.cursor()), fresh)


def net_fee_list(ctx: LoadContext, fresh: bool) -> None:
    """silver/fee_list_net for the institutions this load touched (all of them on a fresh table). Closes
    `ctx.con` (a cursor of its own) when done."""
    con, lake = ctx.con, ctx.lake
    try:
        snap = lake.native_files("silver/fee_list") if fresh else None
        if snap is not None:
            src = f"({native_select(snap, union=False)})"
            touched = sorted(lake.distinct_values("silver/fee_list", "fixmedins_code"))
        else:
            touched = [r[0] for r in con.execute("SELECT DISTINCT fixmedins_code FROM out_fee_list").fetchall()]
            src = "out_fee_list" if fresh else _touched_lines(ctx, touched)
        _stage_refunds(ctx, src)
        if snap is not None:
            copied = _net_by_partition(ctx, snap)
            trace(f"netting: {len(copied.files)} files written")
        else:
            copied = lake.copy_query(NET, con, f"SELECT * FROM ({nodes.net_sql(src, 'net', **_STAGED)})",
                                     contract.ENTITIES["fee_list"].partition_by)
        _commit(ctx, copied, touched)
    finally:
        for t in _STAGED.values():
            con.execute(f"DROP TABLE IF EXISTS {t}")
        con.close()


def _touched_lines(ctx: LoadContext, touched: list[str]) -> str:
    """SELECT of the lines of silver/fee_list (all of them, old and new) of the `touched` institutions: their
    partitions' files only (a filter on a registered dataset was not pushed down: every load of a small
    monthly drop read the whole table, 30 s at 10 M lines)."""
    snap = ctx.lake.native_files("silver/fee_list")
    if snap is not None and "fixmedins_code" in snap.partition_by and snap.values is not None:
        part = snap.only("fixmedins_code", set(touched))
        select = native_select(part) if part.files else None
        if select is not None:
            return f"({select})"
    ctx.con.register("_silver_fee", ctx.lake.dataset("silver/fee_list"))
    inlist = ", ".join(sql_literal(c) for c in touched) or "NULL"
    return f"(SELECT * FROM _silver_fee WHERE fixmedins_code IN ({inlist}))"


def _stage_refunds(ctx: LoadContext, src: str) -> None:
    """The refunds of `src`, their targets and the targets' changes staged once (small tables, shared by the
    cursors of `_net_by_partition`), so that each query then scans the lines once; a refund whose target is
    nowhere is reported as a warning."""
    con = ctx.con
    con.execute(f"CREATE OR REPLACE TABLE _net_refund AS {nodes.net_sql(src, 'refund')}")
    con.execute(f"CREATE OR REPLACE TABLE _net_matched AS {nodes.net_sql(src, 'matched', '_net_refund')}")
    con.execute(f"CREATE OR REPLACE TABLE _net_adj AS {nodes.net_sql(src, 'adj', '_net_refund', '_net_matched')}")
    trace("netting: refunds, targets and adjustments staged")
    unmatched = con.sql(nodes.net_sql(src, "unmatched", **_STAGED)).to_arrow_table()
    for r in unmatched.to_pylist():
        ctx.report.warnings.append(
            f"refund not netted, target line not found 退费未找到原明细: mdtrt_id={r['mdtrt_id']} "
            f"feedetl_sn={r['feedetl_sn']} init_feedetl_sn={r['init_feedetl_sn']} "
            f"hilist_code={r['hilist_code']} fee_ocur_time={r['fee_ocur_time']}")


def _commit(ctx: LoadContext, copied: CopiedFiles, touched: list[str]) -> None:
    """The netted lines committed: a new table, a whole one when silver/fee_list's columns changed, else
    the touched institutions' partitions replaced."""
    lake = ctx.lake
    if not lake.exists(NET):
        lake.commit_copied(copied)
    elif lake.schema(NET).names != lake.schema("silver/fee_list").names:
        lake.commit_copied(copied, mode="overwrite")
    elif touched:
        lake.commit_copied(copied, mode="overwrite", partition_filters=[("fixmedins_code", "in", touched)])
    else:
        lake.discard_copied(copied)
    ctx.report.versions[NET] = lake.version(NET)


def _net_by_partition(ctx: LoadContext, snap: NativeSnapshot) -> CopiedFiles:
    """Netted lines of a snapshot of silver/fee_list, written (not committed) into silver/fee_list_net with
    the same partitions. A netted line stays in its partition and its change is staged under its own
    fixmedins_code (`nodes.ADJ_SQL`), wherever its refunds sit; so each partition is netted from its own
    files with the changes of its institution, and written with a plain COPY into its folder: two cursors at
    a time, no partitioned writer (which costs about as much again per row). Small partitions, and any with
    a null partition value, go together through one partitioned COPY."""
    pb, parts = snap.partition_by, snap.by_partition()
    small = [k for k, p in parts.items() if None in k or sum(r or 0 for r in (p.rows or [0])) < NET_PARTITION_MIN_ROWS]
    local, cursors = threading.local(), []

    def one(key) -> CopiedFiles:
        if not hasattr(local, "cur"):
            local.cur = ctx.con.cursor()
            cursors.append(local.cur)
        values = dict(zip(pb, key))
        return ctx.lake.copy_query(NET, local.cur, f"SELECT * FROM ({_net_of(parts[key], values.get('fixmedins_code'))})",
                                   pb, constant=values, schema=snap.schema)

    copies: list[CopiedFiles] = []
    error: BaseException | None = None
    try:
        if small:
            rest = NativeSnapshot([f for k in small for f in parts[k].files], pb, snap.schema)
            copies.append(ctx.lake.copy_query(NET, ctx.con, f"SELECT * FROM ({_net_of(rest, None)})", pb))
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="ingest-net") as pool:
            futures = [pool.submit(one, k) for k in parts if k not in small]
            for fut in futures:          # every write is waited for, so that a failure leaves no file behind
                try:
                    copies.append(fut.result())
                except BaseException as exc:  # noqa: BLE001 - re-raised below
                    error = error or exc
    except BaseException as exc:  # noqa: BLE001 - re-raised below
        error = exc
    finally:
        for cur in cursors:
            cur.close()
    if error is not None:
        for c in copies:
            ctx.lake.discard_copied(c)
        raise error
    schema = pa.schema([*(f for f in snap.schema if f.name not in pb), *(snap.schema.field(c) for c in pb)])
    return CopiedFiles.combine(NET, copies, schema, pb)


def _net_of(part: NativeSnapshot, fixmedins: str | None) -> str:
    """Netting of one part's lines: with the changes staged, it reads only them, those of the part's
    institution (all of them when `fixmedins` is None)."""
    adj = _STAGED["adj"] if fixmedins is None else \
        f"(SELECT * FROM {_STAGED['adj']} WHERE fixmedins_code = {sql_literal(fixmedins)})"
    return nodes.net_sql(f"({native_select(part, union=False)})", "net", adj=adj)
