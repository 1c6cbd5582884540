"""The typing thread: bronze batches read in Python typed into the staging tables while bronze is written."""
from __future__ import annotations

import queue
import threading

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.ingest import nodes
from pipelines.ingest.context import LoadContext
from pipelines.ingest.inspection import FileInfo
from pipelines.ingest.staging import Staging, ensure_stg


class Typist:
    """Types bronze batches into the DuckDB staging tables on a worker thread (DuckDB releases the GIL,
    so typing runs while delta-rs encodes the bronze parquet). At most two batches wait in the queue.
    Rows that fail typing are quarantined; the good ones go to `stg_<entity>_all`."""

    def __init__(self, ctx: LoadContext, staging: Staging):
        self.cur = ctx.con.cursor()
        self.ctx, self.tables = ctx, staging.tables
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ingest-typist", daemon=True)
        self.thread.start()

    def put(self, info: FileInfo, sql: str, t: pa.Table) -> None:
        """Type `t` (bronze strings of `info`) with `sql` (`nodes.typing_sql` over `_b`)."""
        if self.error is not None:
            raise self.error
        self.queue.put((info, sql, t))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        self.cur.close()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self._type(*item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
                    self.error = exc

    def _type(self, info: FileInfo, sql: str, t: pa.Table) -> None:
        entity, cur = info.entity, self.cur
        stg = f"stg_{entity}"
        cur.register("_b", t)
        cur.execute(f"CREATE OR REPLACE TEMP TABLE _t AS {sql}")
        cur.unregister("_b")
        ensure_stg(cur, entity, "SELECT * FROM _t", self.tables)
        cur.execute(f"INSERT INTO {stg}_all SELECT * FROM _t WHERE _err = ''")
        bad = cur.sql("SELECT _line, _err, _errf FROM _t WHERE _err <> '' ORDER BY _line").to_arrow_table()
        if bad.num_rows:
            raws = t.filter(pc.is_in(t.column("_line"), value_set=bad.column("_line")))
            raw_by_line = {r["_line"]: r for r in raws.to_pylist()}
            for line, err, errf in zip(*(bad.column(c).to_pylist() for c in ("_line", "_err", "_errf"))):
                self.ctx.quarantine.add(info.name, entity, line, errf, err,
                                        nodes.raw_json(entity, raw_by_line[line], self.ctx.salt))
