"""Ingestion wiring: a landing drop → bronze, silver, quarantine, `_meta` tables, through `Lake` only.

    check every file (entity, format, encoding, headers)     nothing written if one is refused
    skip files already in the ledger (same sha256)
    per file: string rows → bronze (one commit per file). A plain CSV/TSV is staged lazily (its rows are
              typed by DuckDB from its bronze files when read); other files are typed in Python batches
              into a DuckDB staging table on disk (bounded memory); bad rows → quarantine
    per entity: in-drop duplicates (identical: once; different values: all quarantined) → silver
              (a fresh table in memory-sized chunks, null-safe upsert otherwise; knowledge base tables are
              replaced)
    fee_list: refund netting of the touched institutions → silver/fee_list_net (a fresh table: one
              partition at a time, from silver/fee_list's Parquet)
    validate hook (restores every table written by the load on failure), then ledger and report
"""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import queue
import shutil
import sys
import tempfile
import threading
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from pipelines import contract
from pipelines.ingest import nodes
from pipelines.ingest.readers import FileInfo, IngestError, RefusedFile, inspect_file, list_drop, read_batches
from pipelines.storage import CopiedFiles, Lake, NativeSnapshot, native_select, utcnow

__all__ = ["ingest_drop", "load_knowledge_base", "LoadReport", "FileReport", "IngestError", "RefusedFile"]

QUARANTINE = "quarantine"
LEDGER = "_meta/ingest_ledger"
REPORT = "_meta/load_report"
WARNINGS = "_meta/load_warnings"
NET = "silver/fee_list_net"
MERGE_CHUNK = 1_000_000
#: a fast-path file is staged lazily (typed from bronze when read) when it has at least LAZY_MIN_ROWS rows and
#: its entity fewer than MAX_LAZY_PARTS lazy files; others are typed into the staging table at once (cheap
#: for a small file; a union of many lazy files costs more to plan than to read)
LAZY_MIN_ROWS = 100_000
MAX_LAZY_PARTS = 16
#: memory the staging DuckDB may use (FUNDGUARD_INGEST_MEMORY overrides): with Python and Arrow beside it the
#: load stays under 4 GB
INGEST_MEMORY = "3GB"
#: DuckDB's partitioned writer holds a file's rows until it closes it, and with many small partitions that
#: is all of them; a fresh silver table is therefore written by one COPY per chunk of rows, a chunk being
#: what fits in this share of the memory limit at about BUFFERED_BYTES_PER_COLUMN per value (measured:
#: 5 M fee lines, 26 columns, held 1.9 GB). Each partition gets one file per chunk.
CHUNK_MEMORY_SHARE = 0.65
BUFFERED_BYTES_PER_COLUMN = 16
#: silver/fee_list_net is netted one partition at a time from silver/fee_list's files (a plain COPY into
#: the partition's folder); partitions smaller than this go together through one partitioned COPY
NET_PARTITION_MIN_ROWS = 5_000


@dataclass
class FileReport:
    file: str
    entity: str
    format: str
    encoding: str | None
    sha256: str
    status: str = "loaded"               # loaded | skipped
    rows_read: int = 0
    rows_loaded: int = 0                 # identical duplicates included
    rows_quarantined: int = 0
    rows_duplicate: int = 0              # identical copies counted once in silver
    unknown_columns: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def balanced(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_quarantined


@dataclass
class LoadReport:
    load_id: str
    drop_id: str
    files: list[FileReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)   # table -> version written
    status: str = "loaded"                                    # loaded | nothing_to_load | rolled_back

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def rows_loaded(self) -> int:
        return sum(f.rows_loaded for f in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files)

    @property
    def balanced(self) -> bool:
        return all(f.balanced for f in self.files)

    def to_text(self) -> str:
        head = [("文件 file", 30), ("实体 entity", 14), ("格式 format", 11), ("编码 encoding", 13),
                ("读入 read", 10), ("入库 loaded", 11), ("隔离 quarantined", 16), ("重复 dup", 9),
                ("状态 status", 11)]
        rows = [[f.file, f.entity, f.format, f.encoding or "-", f.rows_read, f.rows_loaded,
                 f.rows_quarantined, f.rows_duplicate, f.status] for f in self.files]
        rows.append(["合计 total", "", "", "", self.rows_read, self.rows_loaded, self.rows_quarantined,
                     sum(f.rows_duplicate for f in self.files), "平衡 ok" if self.balanced else "不平衡 UNBALANCED"])
        out = [f"load {self.load_id} (drop {self.drop_id}) 入库对账 reconciliation: {self.status}"]
        out.append("  ".join(_pad(h, w) for h, w in head))
        for r in rows:
            out.append("  ".join(_pad(str(v), w) for v, (_, w) in zip(r, head)))
        for f in self.files:
            if f.unknown_columns:
                out.append(f"  {f.file}: ignored columns 未识别列: {', '.join(f.unknown_columns)}")
            if f.note:
                out.append(f"  {f.file}: {f.note}")
        for w in self.incomplete:
            out.append(f"  incomplete 记录不完整: {w}")
        for w in self.warnings:
            out.append(f"  warning 警告: {w}")
        return "\n".join(out)


def _trace(msg: str) -> None:
    """Phase timings and peak memory on stderr when FUNDGUARD_INGEST_TRACE is set (benchmarks)."""
    if os.environ.get("FUNDGUARD_INGEST_TRACE"):
        import resource
        import time
        use = resource.getrusage(resource.RUSAGE_SELF)
        rss, cpu = use.ru_maxrss / 1024 / 1024, use.ru_utime + use.ru_stime
        print(f"[ingest {time.perf_counter():.1f}s cpu {cpu:.1f}s peak {rss:.2f} GB] {msg}", file=sys.stderr, flush=True)


def _pad(s: str, width: int) -> str:
    # East Asian characters take two columns in a terminal
    w = sum(2 if ord(ch) > 0x2E80 else 1 for ch in s)
    return s + " " * max(0, width - w)


Validator = Callable[[Lake, dict, str], object]


# ---------------------------------------------------------------- entry points

def ingest_drop(landing: Path, lake: Lake, *, drop_id: str | None = None, salt: str, batch_rows: int,
                progress: bool = True, validate: Validator | None = None,
                files: list[Path] | None = None) -> LoadReport:
    """Load one landing drop into the lake; see the module docstring. Raises IngestError on refusal.

    `files` restricts the drop to some of the folder's files (default: all of them).
    """
    landing = Path(landing)
    if not landing.is_dir():
        raise IngestError(f"{landing}: landing folder does not exist / 落地目录不存在")
    drop_id = drop_id or landing.name
    infos, refused = [], []
    for p in (files if files is not None else list_drop(landing)):
        try:
            infos.append(inspect_file(p))
        except RefusedFile as exc:
            refused.append(str(exc))
    if refused:
        raise RefusedFile(f"drop {drop_id} refused, nothing loaded / 数据包被拒收, 未入库:\n  " + "\n  ".join(refused))

    now = utcnow()
    load_id = f"{drop_id}@{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    report = LoadReport(load_id, drop_id)
    known = _ledger_shas(lake)
    todo: list[FileInfo] = []
    seen_in_drop: dict[str, str] = {}
    for info in infos:
        fr = FileReport(info.name, info.entity, info.format, info.encoding, info.sha256,
                        unknown_columns=list(info.unknown_columns))
        report.files.append(fr)
        if info.sha256 in known:
            fr.status, fr.note = "skipped", f"already loaded by {known[info.sha256]} / 文件已入库, 跳过"
        elif info.sha256 in seen_in_drop:
            fr.status, fr.note = "skipped", f"same content as {seen_in_drop[info.sha256]} / 与同批文件内容相同, 跳过"
        else:
            seen_in_drop[info.sha256] = info.name
            todo.append(info)
    if not todo:
        report.status = "nothing_to_load"
        _write_report(lake, report, now)
        return report

    with tempfile.TemporaryDirectory(prefix="fundguard-ingest-") as tmp:
        con = _staging_connection(Path(tmp))
        try:
            _load(con, todo, lake, report, drop_id, load_id, salt, batch_rows, progress, now, validate)
        finally:
            con.close()
    return report


def load_knowledge_base(kb_dir: Path, lake: Lake, *, salt: str, batch_rows: int = 250_000,
                        only_if_missing: bool = True, progress: bool = False,
                        validate: Validator | None = None) -> LoadReport | None:
    """Ingest a knowledge-base folder (e.g. the shipped rules/kb/*.csv) as a drop.

    With `only_if_missing`, nothing happens (None) when silver already holds every kb table present in
    the folder: a drop's own knowledge base is never replaced by the sample.
    """
    kb_dir = Path(kb_dir)
    files = [p for p in list_drop(kb_dir) if contract.entity_of(p.name) in contract.KB_ENTITIES]
    if not files:
        return None
    if only_if_missing and all(lake.exists(f"silver/{contract.entity_of(p.name)}") for p in files):
        return None
    return ingest_drop(kb_dir, lake, drop_id=f"kb-{kb_dir.name}", salt=salt, batch_rows=batch_rows,
                       progress=progress, validate=validate, files=files)


# ---------------------------------------------------------------- the load

def _staging_connection(tmp: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(tmp / "staging.duckdb"))
    con.execute(f"SET temp_directory = '{tmp / 'spill'}'")
    con.execute(f"SET memory_limit = '{_memory_limit()}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


def _memory_limit() -> str:
    return os.environ.get("FUNDGUARD_INGEST_MEMORY", INGEST_MEMORY)


def _chunk_rows(entity: str, memory_limit: str) -> int:
    """Rows per COPY of a fresh silver table (see CHUNK_MEMORY_SHARE)."""
    import re
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?B)?\s*", memory_limit, re.IGNORECASE)
    if not m:
        raise IngestError(f"memory limit {memory_limit!r} is not a size like 3GB / 内存上限格式错误")
    unit = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}[m.group(2).upper()]
    width = BUFFERED_BYTES_PER_COLUMN * len(nodes.silver_columns(entity))
    return max(100_000, int(float(m.group(1)) * unit * CHUNK_MEMORY_SHARE / width))


def _load(con, todo: list[FileInfo], lake: Lake, report: LoadReport, drop_id: str, load_id: str,
          salt: str, batch_rows: int, progress: bool, now, validate) -> None:
    by_name = {f.file: f for f in report.files}
    entities = sorted({i.entity for i in todo})
    silver_names = [f"silver/{e}" for e in entities] + ([NET] if "fee_list" in entities else [])
    written = [f"bronze/{e}" for e in entities] + [QUARANTINE] + silver_names
    before = {n: lake.version(n) for n in written}
    quarantine: list[dict] = []

    def q_row(info_name, entity, line, field_, reason, raw, kind="row"):
        quarantine.append({"_kind": kind, "load_id": load_id, "drop_id": drop_id, "file": info_name, "line": line,
                           "entity": entity, "field": field_, "reason": reason, "raw_row": raw,
                           "loaded_at": now})

    try:
        staging = _Staging(salt, drop_id)
        slow: list[tuple[int, FileInfo]] = []
        for ord_, info in enumerate(todo):
            fr = by_name[info.name]
            if not _stage_fast(con, lake, info, ord_, fr, drop_id, now, q_row, staging, report):
                slow.append((ord_, info))
        typist = _Typist(con, salt, q_row, staging.tables)
        try:
            for ord_, info in slow:
                fr = by_name[info.name]
                batches = _stage_file(typist, info, ord_, fr, drop_id, salt, batch_rows, progress, now, q_row)
                reader = pa.RecordBatchReader.from_batches(_bronze_schema(info.entity), batches)
                report.versions[f"bronze/{info.entity}"] = lake.append(f"bronze/{info.entity}", reader,
                                                                       partition_by=["_drop"])
                _trace(f"bronze + staging {info.name}")
        finally:
            typist.close()
        for entity in staging.entities:
            staging.create_view(con, entity)

        netting = None
        for entity in entities:
            if entity not in staging.entities:
                continue
            _dedup_and_write(con, lake, entity, report, drop_id, salt, q_row, staging)
            _trace(f"silver/{entity}")
            if entity == "fee_list":
                fresh = before["silver/fee_list"] is None or not _has_rows(lake, "silver/fee_list",
                                                                           before["silver/fee_list"])
                netting = _Background(_net_fee_list, con.cursor(), lake, report, fresh)
        if netting is not None:
            netting.join()
            _trace("silver/fee_list_net")
        if quarantine:
            report.versions[QUARANTINE] = lake.append(QUARANTINE, nodes.quarantine_table(quarantine))
        _reconcile(con, report, quarantine, staging)
        report.incomplete = _incomplete(con, lake, quarantine, staging)

        if validate is not None:
            silver_before = {n: before[n] for n in silver_names}
            result = validate(lake, silver_before, load_id)
            report.warnings += list(getattr(result, "warnings", []) or [])
            if not getattr(result, "success", False):
                failures = list(getattr(result, "failures", []) or [])
                _restore(lake, before, written)
                report.status = "rolled_back"
                _write_report(lake, report, now)
                raise IngestError(f"load {load_id} failed validation, silver restored / 校验未通过, 已回滚:\n  "
                                  + "\n  ".join(failures or ["(no failure message)"]))
    except IngestError:
        raise
    except BaseException:
        _restore(lake, before, written)
        raise

    _write_ledger(lake, todo, by_name, drop_id, load_id, now)
    _write_report(lake, report, now)


class _Background(threading.Thread):
    """Run one function on a thread (e.g. netting while other silver tables are written)."""

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


def _bronze_schema(entity: str) -> pa.Schema:
    ent = contract.ENTITIES[entity]
    return pa.schema([*[(n, pa.string()) for n in ent.names], ("_line", pa.int64()), ("_drop", pa.string()),
                      ("_file", pa.string()), ("_file_sha256", pa.string()),
                      ("_loaded_at", pa.timestamp("us", tz="UTC"))])


class _Typist:
    """Types bronze batches into the DuckDB staging tables on a worker thread (DuckDB releases the GIL,
    so typing runs while delta-rs encodes the bronze parquet). At most two batches wait in the queue."""

    def __init__(self, con, salt: str, q_row, tables: set[str]):
        self.cur = con.cursor()
        self.salt, self.q_row = salt, q_row
        self.tables = tables
        self.queue: queue.Queue = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="ingest-typist", daemon=True)
        self.thread.start()

    def put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

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
        _ensure_stg(cur, entity, "SELECT * FROM _t", self.tables)
        cur.execute(f"INSERT INTO {stg}_all SELECT * FROM _t WHERE _err = ''")
        bad = cur.sql("SELECT _line, _err, _errf FROM _t WHERE _err <> '' ORDER BY _line").to_arrow_table()
        if bad.num_rows:
            raws = t.filter(pc.is_in(t.column("_line"), value_set=bad.column("_line")))
            raw_by_line = {r["_line"]: r for r in raws.to_pylist()}
            for line, err, errf in zip(*(bad.column(c).to_pylist() for c in ("_line", "_err", "_errf"))):
                self.q_row(info.name, entity, line, errf, err, nodes.raw_json(entity, raw_by_line[line], self.salt))


def _ensure_stg(cur, entity: str, typed_select: str, tables: set[str]) -> None:
    """`stg_<entity>_all` holds typed rows with their `_err` ('' = good): every row of the small fast-path
    files, the good rows of the files read through Python batches."""
    if entity in tables:
        return
    cur.execute(f"CREATE TABLE stg_{entity}_all AS SELECT * FROM ({typed_select}) WHERE false")
    tables.add(entity)


@dataclass
class _LazyPart:
    """A file staged without a copy: its rows are typed again from its bronze files whenever they are read
    (typing is cheaper to repeat than a staged copy is to write and read back)."""
    info: FileInfo
    ord_: int
    source: str               # SELECT of the file's bronze rows: contract fields as text, `_line`
    rows: int                 # rows in bronze
    bad: int | None = None    # rows that fail typing (quarantined); None until counted


class _Staging:
    """What a load staged, per entity: a table of rows typed in Python batches (`tables`) and/or lazy parts.

    `stg_<entity>` (a view) unions their good rows in the silver columns plus `_ord`; `keys_sql` selects
    the keys of every row, good or bad, without checking them (a superset of the good rows' keys)."""

    def __init__(self, salt: str, drop_id: str):
        self.salt, self.drop_id = salt, drop_id
        self.tables: set[str] = set()
        self.parts: dict[str, list[_LazyPart]] = defaultdict(list)
        self.deduplicated: set[str] = set()     # entities whose out_<entity> is a table (keys were repeated)

    @property
    def entities(self) -> list[str]:
        return sorted(self.tables | set(self.parts))

    def typed(self, part: _LazyPart, checks: str = "report") -> str:
        return nodes.typing_sql(part.info.entity, part.source, self.salt, self.drop_id, part.info.name,
                                part.ord_, checks=checks)

    def _union(self, entity: str, table: str, part) -> str:
        branches = ([table] if entity in self.tables else []) + [part(p) for p in self.parts[entity]]
        return " UNION ALL ".join(branches)

    def create_view(self, con, entity: str) -> None:
        cols = ", ".join(nodes.q(c) for c in [*nodes.silver_columns(entity), "_ord"])
        body = self._union(entity, f"SELECT {cols} FROM stg_{entity}_all WHERE _err = ''",
                           lambda p: f"SELECT {cols} FROM ({self.typed(p)}) WHERE _err = ''")
        con.execute(f"CREATE OR REPLACE VIEW stg_{entity} AS {body}")

    def keys_sql(self, entity: str) -> str:
        kc = ", ".join(nodes.q(k) for k in contract.ENTITIES[entity].key)
        return self._union(entity, f"SELECT {kc} FROM stg_{entity}_all",
                           lambda p: f"SELECT {kc} FROM ({self.typed(p, 'none')})")

    def chunks(self, con, entity: str, rows: int) -> list[str]:
        """Predicates over `_file`/`_line` that split the entity's staged rows into chunks of about `rows`
        (whole small files together; a large file by ranges of lines). Together they cover every row once."""
        files: list[tuple[str, int, int, int]] = []        # name, rows, first and last line
        if entity in self.tables:
            files += con.execute(f"SELECT _file, count(*), min(_line), max(_line) FROM stg_{entity}_all "
                                 f"WHERE _err = '' GROUP BY _file ORDER BY _file").fetchall()
        files += [(p.info.name, p.rows, 2, p.rows + 1) for p in self.parts[entity]]   # lines from 2, a few may lack
        items: list[tuple[int, str]] = []
        for name, n, first, last in files:
            k = max(1, -(-n // rows))
            step = max(1, -(-(last - first + 1) // k))
            for j in range(k):
                # by ranges of line numbers; the first and last range are open, so every line is in one
                lo = f" AND _line >= {first + j * step}" if j else ""
                hi = f" AND _line < {first + (j + 1) * step}" if j < k - 1 else ""
                items.append((-(-n // k), f"(_file = {nodes.lit(name)}{lo}{hi})"))
        chunks: list[list] = []          # [rows, predicates]
        for n, where in items:
            if chunks and chunks[-1][0] + n <= rows:
                chunks[-1][0] += n
                chunks[-1][1].append(where)
            else:
                chunks.append([n, [where]])
        if len(chunks) <= 1:
            return ["true"]
        return [" OR ".join(w) for _, w in chunks]

    def table_rows(self, con, entity: str) -> int:
        if entity not in self.tables:
            return 0
        return con.execute(f"SELECT count(*) FROM stg_{entity}_all WHERE _err = ''").fetchall()[0][0]

    def add(self, con, part: _LazyPart, q_row) -> None:
        """Stage a fast-path file: lazily when it is large and the entity has few lazy parts yet (a view over
        many of them costs more to plan than to run); else its typed rows are copied into the staging table
        at once (bad ones with their `_err`) and its bad rows quarantined."""
        entity = part.info.entity
        if part.rows >= LAZY_MIN_ROWS and len(self.parts[entity]) < MAX_LAZY_PARTS:
            self.parts[entity].append(part)
            return
        typed = self.typed(part)
        _ensure_stg(con, entity, typed, self.tables)
        con.execute(f"INSERT INTO stg_{entity}_all SELECT * FROM ({typed})")
        self._quarantine(con, part, q_row, f"SELECT * FROM stg_{entity}_all WHERE _file = {nodes.lit(part.info.name)}")

    def quarantine_parts(self, con, entity: str, q_row) -> None:
        """Put the rows of `entity`'s lazy parts that fail typing in quarantine (once per part)."""
        for p in self.parts[entity]:
            if p.bad is None:
                self._quarantine(con, p, q_row)

    def _quarantine(self, con, p: _LazyPart, q_row, typed: str | None = None) -> None:
        """Quarantine the part's rows that fail typing; `typed` selects its typed rows (default: typed anew)."""
        entity = p.info.entity
        bad = con.sql(f"SELECT _line, _err, _errf FROM ({typed or self.typed(p)}) WHERE _err <> '' "
                      f"ORDER BY _line").to_arrow_table()
        p.bad = bad.num_rows
        if not bad.num_rows:
            return
        con.register("_bad_lines", bad.select(["_line"]))
        raws = con.sql(f"SELECT v.* FROM {p.source} v SEMI JOIN _bad_lines b ON v._line = b._line").to_arrow_table()
        con.unregister("_bad_lines")
        raw_by_line = {r["_line"]: r for r in raws.to_pylist()}
        for line, err, errf in zip(*(bad.column(c).to_pylist() for c in ("_line", "_err", "_errf"))):
            q_row(p.info.name, entity, line, errf, err, nodes.raw_json(entity, raw_by_line[line], self.salt))

    def all_good(self, entity: str) -> None:
        """Record that no row of `entity`'s lazy parts fails typing (shown by the rows a write kept)."""
        for p in self.parts[entity]:
            p.bad = 0


FAST_REJECTS = ("MISSING COLUMNS", "TOO MANY COLUMNS")


def _stage_fast(con, lake: Lake, info: FileInfo, ord_: int, fr: FileReport, drop_id: str, now,
                q_row, staging: _Staging, report: LoadReport) -> bool:
    """Fast path for UTF-8 CSV/TSV: no row passes through Python; bronze is written in one pass over the file,
    and the file is staged as a lazy part: its rows are typed by DuckDB SQL over its bronze files when read.

    Attempt 1 streams the CSV straight into bronze Parquet with pyarrow's threaded CSV reader and dataset
    writer (line = row number + 1) and keeps it only if every physical line became a row of the header's
    width. Otherwise attempt 2 has DuckDB's CSV reader materialise the raw strings, place the rejected lines
    (short/long rows, quarantined) and number the rows around them. Returns False, having written nothing,
    when the file is not plain enough for the line accounting to be exact (blank lines, lone CRs, quoted
    newlines, other parse errors): the caller then streams it through the pyarrow reader."""
    st = info.text_stats
    if not st or st["blank"] or st["lone_cr"] or not info.mapping:
        return False
    entity = info.entity
    ent = contract.ENTITIES[entity]
    k = ord_
    raw, rej, rejscan, view = f"_raw_{k}", f"_rej_{k}", f"_rejscan_{k}", f"_rawv_{k}"
    cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(info.headers))) + "}"
    delim = "\t" if info.format == "tsv" else ","

    def src(n: int) -> str:
        return (f"read_csv({nodes.lit(str(info.path))}, header=false, skip=1, auto_detect=false, "
                f"delim={nodes.lit(delim)}, quote='\"', escape='\"', columns={cols}, nullstr=chr(0), "
                f"allow_quoted_nulls=false, compression={nodes.lit('gzip' if info.format == 'csv.gz' else 'none')}, "
                f"ignore_errors=true, store_rejects=true, rejects_table={nodes.lit(f'{rej}_{n}')}, "
                f"rejects_scan={nodes.lit(f'{rejscan}_{n}')}, max_line_size=8388608, parallel=true)")

    by_field = {c: i for i, c in info.mapping.items()}
    sel = ", ".join((f"c{by_field[n]}" if n in by_field else "NULL::VARCHAR") + f" AS {nodes.q(n)}" for n in ent.names)
    names = ", ".join(nodes.q(n) for n in ent.names)
    mapped = [nodes.q(info.mapping[i]) for i in sorted(info.mapping)]
    blank = " AND ".join(f"coalesce({c}, '') = ''" for c in mapped)
    loaded_at = now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
    lineage = (f"{nodes.lit(drop_id)} AS _drop, {nodes.lit(info.name)} AS _file, {nodes.lit(info.sha256)} AS _file_sha256, "
               f"TIMESTAMPTZ '{loaded_at}+00' AS _loaded_at")
    data_lines = max(st["newlines"] + (0 if st["ends_nl"] else 1) - 1, 0)
    bronze = f"bronze/{entity}"
    copied, committed = None, False
    made: list[str] = []

    def rejects_of(n: int) -> list:
        return con.execute(f"SELECT line, error_type::VARCHAR, csv_line FROM {rej}_{n} ORDER BY line").fetchall()

    try:
        # attempt 1: CSV -> bronze parquet in one pass (pyarrow's threaded reader and writer; line = row + 1);
        # kept only if every physical line became a row of the header's width
        invalid: list[int] = []
        try:
            rows, dictionary = _dictionary_columns(_arrow_bronze(info, ent, delim, drop_id, now, invalid))
            copied = lake.copy_batches(bronze, rows, constant={"_drop": drop_id}, dictionary=dictionary)
        except pa.ArrowInvalid:        # e.g. bytes that are not UTF-8 after all
            copied, invalid = None, [0]
        rejects = []
        if invalid or copied.rows != data_lines:
            if copied is not None:
                lake.discard_copied(copied)
            copied = None
            # attempt 2: raw strings materialised, rejected lines placed
            con.execute("SET preserve_insertion_order = true")
            try:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT {sel}, row_number() OVER () AS _rn "
                            f"FROM {src(2)}")
            finally:
                con.execute("SET preserve_insertion_order = false")
            made += [raw, f"{rej}_2", f"{rejscan}_2"]
            rejects = rejects_of(2)
            n_rows = con.execute(f"SELECT count(*) FROM {raw}").fetchall()[0][0]
            lines = sorted({r[0] for r in rejects})
            if any(r[1] not in FAST_REJECTS for r in rejects) or n_rows + len(lines) != data_lines:
                return False
            # line of the k-th good row (0-based) = k + 2 + rejected lines before it; reject j (0-based,
            # sorted) has line - 2 - j good rows before it
            if lines:
                gaps: dict[int, int] = {}
                for j, line in enumerate(lines):
                    gaps[line - 2 - j] = j + 1
                con.execute(f"CREATE OR REPLACE TEMP TABLE {rej}_g AS SELECT * FROM (VALUES "
                            + ", ".join(f"({g}, {c})" for g, c in gaps.items()) + ") v(g, c)")
                made.append(f"{rej}_g")
                body = (f"SELECT r.* EXCLUDE (_rn), r._rn + 1 + coalesce(j.c, 0) AS _line FROM {raw} r "
                        f"ASOF LEFT JOIN {rej}_g j ON r._rn - 1 >= j.g")
            else:
                body = f"SELECT * EXCLUDE (_rn), _rn + 1 AS _line FROM {raw}"
            con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM ({body}) WHERE NOT ({blank})")
            copied = lake.copy_query(bronze, con, f"SELECT {names}, _line, {lineage} FROM {view}", ["_drop"],
                                    constant={"_drop": drop_id})
        files = ", ".join(nodes.lit(str(f)) for f in copied.files)
        source = f"(SELECT {names}, _line FROM read_parquet([{files}]))" if copied.files else None
        seen = set()
        for line, _etype, text in rejects:
            if line in seen:
                continue
            seen.add(line)
            if not (text or "").strip():
                continue   # a line of blanks: not a row
            n = len(next(csv.reader([text], delimiter=delim))) if text else 0
            exp = len(info.headers)
            what = "truncated row:" if n < exp else "row has"
            reason = f"{what} {n} fields, expected {exp} / 字段数不符(应为{exp}, 实为{n})"
            fr.rows_read += 1
            q_row(info.name, entity, line, "*", reason, json.dumps({"_text": text}, ensure_ascii=False))
        fr.rows_read += copied.rows
        rows = copied.rows
        report.versions[bronze] = lake.commit_copied(copied)
        copied, committed = None, True
        _trace(f"bronze {info.name}")
        if rows:
            staging.add(con, _LazyPart(info, ord_, source, rows), q_row)
        return True
    except duckdb.Error:
        if copied is not None:
            lake.discard_copied(copied)
        if committed:
            raise            # typing failed after bronze: not a reader problem
        return False
    finally:
        con.execute(f"DROP VIEW IF EXISTS {view}")
        for t in made:
            con.execute(f"DROP TABLE IF EXISTS {t}")


def _arrow_bronze(info: FileInfo, ent, delim: str, drop_id: str, now, invalid: list) -> pa.RecordBatchReader:
    """The file's rows as bronze batches (contract fields as strings, `_line`, lineage but `_drop`), read with
    pyarrow's multi-threaded CSV reader. Rows of the wrong width are counted in `invalid`, not returned."""
    import pyarrow.csv as pacsv

    ncol = len(info.headers)
    raw_names = [f"c{i}" for i in range(ncol)]
    by_field = {c: i for i, c in info.mapping.items()}

    def bad(row) -> str:
        invalid.append(row.number if row.number is not None else -1)
        return "skip"

    read = pacsv.ReadOptions(column_names=raw_names, skip_rows=1, block_size=8 << 20)
    parse = pacsv.ParseOptions(delimiter=delim, quote_char='"', double_quote=True, escape_char=False,
                               newlines_in_values=False, invalid_row_handler=bad)
    conv = pacsv.ConvertOptions(column_types={n: pa.string() for n in raw_names}, strings_can_be_null=False,
                                quoted_strings_can_be_null=False)
    source = pa.input_stream(str(info.path), compression="gzip" if info.format == "csv.gz" else None)
    reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=conv)
    bronze = _bronze_schema(info.entity)
    schema = bronze.remove(bronze.get_field_index("_drop"))
    loaded_at = pa.scalar(now, pa.timestamp("us", tz="UTC"))

    def batches():
        line = 2
        for b in reader:
            n = b.num_rows
            cols = [b.column(by_field[f]) if f in by_field else pa.nulls(n, pa.string()) for f in ent.names]
            cols += [pa.array(np.arange(line, line + n, dtype=np.int64)), pa.repeat(info.name, n),
                     pa.repeat(info.sha256, n), pa.repeat(loaded_at, n)]
            line += n
            yield pa.RecordBatch.from_arrays(cols, schema=schema)
    return pa.RecordBatchReader.from_batches(schema, batches())


#: a bronze column gets a Parquet dictionary when its first batch has at most this share of distinct
#: values: codes, amounts, the lineage. Trying one on near-unique columns (ids) costs about as much as the
#: rest of the write and makes the file larger; a dictionary on the others makes typing them cheaper,
#: since DuckDB then types each distinct value once.
DICTIONARY_MAX_DISTINCT = 0.3


def _dictionary_columns(reader: pa.RecordBatchReader) -> tuple[pa.RecordBatchReader, list[str]]:
    """The columns of `reader` worth a dictionary (judged on its first batch), and the reader, whole."""
    import itertools

    first = next(iter(reader), None)
    if first is None:
        return pa.RecordBatchReader.from_batches(reader.schema, []), []
    n = max(first.num_rows, 1)
    cols = [f.name for f, col in zip(first.schema, first.columns)
            if pc.count_distinct(col).as_py() <= DICTIONARY_MAX_DISTINCT * n]
    return pa.RecordBatchReader.from_batches(reader.schema, itertools.chain([first], reader)), cols


def _stage_file(typist: _Typist, info: FileInfo, ord_: int, fr: FileReport, drop_id: str, salt: str,
                batch_rows: int, progress: bool, now, q_row) -> Iterator[pa.RecordBatch]:
    """Generator of bronze batches; each batch is also handed to the typist for staging."""
    from tqdm import tqdm
    entity = info.entity
    sql = nodes.typing_sql(entity, "_b", salt, drop_id, info.name, ord_)
    bar = tqdm(desc=info.name, unit=" rows", file=sys.stderr, disable=not progress, leave=False)
    try:
        for rb in read_batches(info, batch_rows):
            t = rb.table
            n = t.num_rows
            fr.rows_read += n + len(rb.invalid)
            for inv in rb.invalid:
                q_row(info.name, entity, inv.line, inv.field, inv.reason, json.dumps({"_text": inv.raw},
                                                                                     ensure_ascii=False))
            if n:
                typist.put((info, sql, t))
                lineage = [pa.array([drop_id] * n, pa.string()), pa.array([info.name] * n, pa.string()),
                           pa.array([info.sha256] * n, pa.string()),
                           pa.array([now] * n, pa.timestamp("us", tz="UTC"))]
                for name, arr in zip(("_drop", "_file", "_file_sha256", "_loaded_at"), lineage):
                    t = t.append_column(name, arr)
                yield from t.to_batches()
            bar.update(n + len(rb.invalid))
    finally:
        bar.close()


def _has_rows(lake: Lake, name: str, version: int | None = None) -> bool:
    return lake.exists(name) and lake.dataset(name, version).count_rows() > 0


def _dedup_and_write(con, lake: Lake, entity: str, report: LoadReport, drop_id: str, salt: str, q_row,
                     staging: _Staging) -> None:
    """In-drop duplicates resolved (`nodes.dedup_sql`), then silver/<entity> written; the lazy parts' bad rows
    quarantined. A fresh table is written in one COPY per chunk; when they kept every staged row, no row
    failed typing and the parts need no second pass to find bad rows."""
    ent = contract.ENTITIES[entity]
    cols = ", ".join(nodes.q(c) for c in nodes.silver_columns(entity))
    # a cheap superset first: the keys of every row, good or bad, unchecked
    repeated = con.execute(f"SELECT EXISTS ({nodes.dup_keys_sql(entity, staging.keys_sql(entity))})").fetchall()[0][0]
    if repeated:
        hashed = f"(SELECT *, {nodes.row_hash_sql(entity)} AS _h FROM stg_{entity})"
        sql = nodes.dedup_sql(entity, hashed)
        con.execute(f"CREATE OR REPLACE TABLE _groups AS {sql['groups']}")
        repeated = con.execute("SELECT count(*) FROM _groups").fetchall()[0][0] > 0
    if not repeated:
        # no key sent twice: the staged rows are the rows (no copy)
        con.execute(f"CREATE VIEW out_{entity} AS SELECT {cols} FROM stg_{entity}")
    else:
        staging.deduplicated.add(entity)
        conflicts = con.sql(sql["conflicts"]).to_arrow_table()
        if conflicts.num_rows:
            _quarantine_conflicts(lake, entity, conflicts, drop_id, salt, q_row)
        con.execute(f"CREATE TABLE out_{entity} AS {sql['rows']}")
    con.execute("DROP TABLE IF EXISTS _groups")
    _trace(f"dedup {entity}")
    name = f"silver/{entity}"
    pb = ent.partition_by or None
    if ent.knowledge_base:
        reader = con.sql(f"SELECT * FROM out_{entity}").to_arrow_reader(MERGE_CHUNK)
        report.versions[name] = lake.overwrite(name, reader)
    elif not _has_rows(lake, name):
        copied = _write_chunks(con, lake, name, entity, staging, pb)
        report.versions[name] = lake.commit_copied(copied)
        staged = staging.table_rows(con, entity) + sum(p.rows for p in staging.parts[entity])
        if not repeated and copied.rows == staged:
            staging.all_good(entity)
    else:
        target = lake.schema(name)
        for batch in con.sql(f"SELECT * FROM out_{entity}").to_arrow_reader(MERGE_CHUNK):
            data = pa.Table.from_batches([batch]).select(target.names).cast(target)
            report.versions[name] = _upsert(lake, name, data, ent.key)
    staging.quarantine_parts(con, entity, q_row)


def _write_chunks(con, lake: Lake, name: str, entity: str, staging: _Staging, pb) -> CopiedFiles:
    """out_<entity> written (not committed) into a fresh silver table, one COPY per chunk (`_chunk_rows`)."""
    copies: list = []
    try:
        for where in staging.chunks(con, entity, _chunk_rows(entity, _memory_limit())):
            copies.append(lake.copy_query(name, con, f"SELECT * FROM out_{entity} WHERE {where}", pb))
            _trace(f"silver/{entity} chunk {len(copies)}")
    except BaseException:
        for c in copies:
            lake.discard_copied(c)
        raise
    return CopiedFiles.combine(name, copies, copies[0].schema, copies[0].partition_by)


def _upsert(lake: Lake, name: str, data: pa.Table, keys) -> int:
    """Like Lake.merge, but an optional key column (e.g. batch_no) matches when both sides are null."""
    ent = contract.ENTITIES[name.split("/", 1)[1]]
    pred = " AND ".join(f"t.{k} = s.{k}" if ent.field(k).required
                        else f"(t.{k} = s.{k} OR (t.{k} IS NULL AND s.{k} IS NULL))" for k in keys)
    (lake.delta(name).merge(data, predicate=pred, source_alias="s", target_alias="t")
     .when_matched_update_all().when_not_matched_insert_all().execute())
    return lake.version(name)


def _quarantine_conflicts(lake: Lake, entity: str, conflicts: pa.Table, drop_id: str, salt: str, q_row):
    keys = contract.ENTITIES[entity].key
    files = sorted(set(conflicts.column("_file").to_pylist()))
    lines = sorted(set(conflicts.column("_line").to_pylist()))
    flt = ((pads.field("_drop") == drop_id) & pads.field("_file").isin(files) & pads.field("_line").isin(lines))
    bronze = lake.read(f"bronze/{entity}", filter=flt)
    raw = {(r["_file"], r["_line"]): r for r in bronze.to_pylist()}
    rows = conflicts.to_pylist()
    by_key = defaultdict(list)
    for r in rows:
        by_key[tuple(r[k] for k in keys)].append(r)
    for key, group in by_key.items():
        where = ", ".join(f"{g['_file']}:{g['_line']}" for g in sorted(group, key=lambda g: (g["_ord"], g["_line"])))
        kdesc = ", ".join(f"{k}={v}" for k, v in zip(keys, key))
        reason = (f"key ({kdesc}) sent {len(group)} times with different values (lines {where}) "
                  f"/ 同一主键在本批数据中出现多次且内容不同")
        for g in group:
            r = raw.get((g["_file"], g["_line"]), {})
            r = {k: v for k, v in r.items() if not k.startswith("_")}
            q_row(g["_file"], entity, g["_line"], ",".join(keys), reason, nodes.raw_json(entity, r, salt),
                  kind="conflict")


def _net_fee_list(con, lake: Lake, report: LoadReport, fresh: bool) -> None:
    """silver/fee_list_net for the institutions this load touched (all of them on a fresh table).

    On a fresh table the lines are read back from silver/fee_list's Parquet (cheaper than typing them
    again) and netted one partition at a time (`_net_by_partition`)."""
    ent = contract.ENTITIES["fee_list"]
    try:
        snap = lake.native_files("silver/fee_list") if fresh else None
        if snap is not None:
            src = f"({native_select(snap, union=False)})"
            touched = sorted(lake.distinct_values("silver/fee_list", "fixmedins_code"))
        else:
            touched = [r[0] for r in con.execute("SELECT DISTINCT fixmedins_code FROM out_fee_list").fetchall()]
            if fresh:
                src = "out_fee_list"
            else:
                con.register("_silver_fee", lake.dataset("silver/fee_list"))
                inlist = ", ".join(nodes.lit(c) for c in touched) or "NULL"
                src = f"(SELECT * FROM _silver_fee WHERE fixmedins_code IN ({inlist}))"
        # the refunds, their targets and the targets' changes once (small tables, shared by the cursors of
        # `_net_by_partition`); each query below then scans the lines once
        con.execute(f"CREATE OR REPLACE TABLE _net_refund AS {nodes.net_sql(src, 'refund')}")
        con.execute(f"CREATE OR REPLACE TABLE _net_matched AS {nodes.net_sql(src, 'matched', '_net_refund')}")
        con.execute(f"CREATE OR REPLACE TABLE _net_adj AS {nodes.net_sql(src, 'adj', '_net_refund', '_net_matched')}")
        staged = {"refund": "_net_refund", "matched": "_net_matched", "adj": "_net_adj"}
        _trace("netting: refunds, targets and adjustments staged")
        unmatched = con.sql(nodes.net_sql(src, "unmatched", **staged)).to_arrow_table()
        for r in unmatched.to_pylist():
            report.warnings.append(
                f"refund not netted, target line not found 退费未找到原明细: mdtrt_id={r['mdtrt_id']} "
                f"feedetl_sn={r['feedetl_sn']} init_feedetl_sn={r['init_feedetl_sn']} "
                f"hilist_code={r['hilist_code']} fee_ocur_time={r['fee_ocur_time']}")
        pb = ent.partition_by
        if snap is not None:
            copied = _net_by_partition(con, lake, snap, staged)
            _trace(f"netting: {len(copied.files)} files written")
        else:
            copied = lake.copy_query(NET, con, f"SELECT * FROM ({nodes.net_sql(src, 'net', **staged)})", pb)
        if not lake.exists(NET):
            lake.commit_copied(copied)
        elif lake.schema(NET).names != lake.schema("silver/fee_list").names:
            lake.commit_copied(copied, mode="overwrite")
        elif touched:
            lake.commit_copied(copied, mode="overwrite", partition_filters=[("fixmedins_code", "in", touched)])
        else:
            lake.discard_copied(copied)
        report.versions[NET] = lake.version(NET)
    finally:
        for t in ("_net_refund", "_net_matched", "_net_adj"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        con.close()


def _net_by_partition(con, lake: Lake, snap, staged: dict[str, str]) -> CopiedFiles:
    """Netted lines of a snapshot of silver/fee_list, written (not committed) into silver/fee_list_net with
    the same partitions. A netted line stays in its partition and its change is staged under its own
    fixmedins_code (`nodes.ADJ_SQL`), wherever its refunds sit; so each partition is netted from its own
    files with the changes of its institution, and written with a plain COPY into its folder: two cursors at
    a time, no partitioned writer (which costs about as much again per row). Small partitions, and any with
    a null partition value, go together through one partitioned COPY."""
    from concurrent.futures import ThreadPoolExecutor

    pb = snap.partition_by
    parts = snap.by_partition()
    small = [k for k, p in parts.items() if None in k or sum(r or 0 for r in (p.rows or [0])) < NET_PARTITION_MIN_ROWS]
    local = threading.local()
    cursors: list = []

    def net_of(part, fixmedins: str | None) -> str:
        # with the changes staged, netting reads only them: those of the partition's institution
        adj = staged["adj"] if fixmedins is None else \
            f"(SELECT * FROM {staged['adj']} WHERE fixmedins_code = {nodes.lit(fixmedins)})"
        return nodes.net_sql(f"({native_select(part, union=False)})", "net", adj=adj)

    def one(key) -> CopiedFiles:
        if not hasattr(local, "cur"):
            local.cur = con.cursor()
            cursors.append(local.cur)
        values = dict(zip(pb, key))
        return lake.copy_query(NET, local.cur, f"SELECT * FROM ({net_of(parts[key], values.get('fixmedins_code'))})",
                               pb, constant=values, schema=snap.schema)

    copies: list[CopiedFiles] = []
    error: BaseException | None = None
    try:
        if small:
            rest = NativeSnapshot([f for k in small for f in parts[k].files], pb, snap.schema)
            copies.append(lake.copy_query(NET, con, f"SELECT * FROM ({net_of(rest, None)})", pb))
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
            lake.discard_copied(c)
        raise error
    schema = pa.schema([*(f for f in snap.schema if f.name not in pb), *(snap.schema.field(c) for c in pb)])
    return CopiedFiles.combine(NET, copies, schema, pb)


def _reconcile(con, report: LoadReport, quarantine: list[dict], staging: _Staging) -> None:
    qcount = Counter(r["file"] for r in quarantine)
    staged_n: Counter = Counter()        # good rows staged per file
    kept_n: Counter = Counter()          # rows per file in out_<entity> (one copy of identical rows)
    for entity in staging.entities:
        mine: Counter = Counter()
        if entity in staging.tables:
            mine.update(dict(con.execute(f"SELECT _file, count(*) FROM stg_{entity}_all WHERE _err = '' "
                                         f"GROUP BY _file").fetchall()))
        for p in staging.parts[entity]:
            mine[p.info.name] += p.rows - p.bad
        staged_n.update(mine)
        if entity in staging.deduplicated:
            kept_n.update(dict(con.execute(f"SELECT _file, count(*) FROM out_{entity} GROUP BY _file").fetchall()))
        else:
            kept_n.update(mine)
    conflict_n = Counter(r["file"] for r in quarantine if r["_kind"] == "conflict")
    for fr in report.files:
        if fr.status != "loaded":
            continue
        fr.rows_quarantined = qcount[fr.file]
        fr.rows_loaded = staged_n[fr.file] - conflict_n[fr.file]
        fr.rows_duplicate = staged_n[fr.file] - conflict_n[fr.file] - kept_n[fr.file]
        if not fr.balanced:
            report.warnings.append(f"{fr.file}: rows read {fr.rows_read} != loaded {fr.rows_loaded} + "
                                   f"quarantined {fr.rows_quarantined} / 对账不平衡")


def _incomplete(con, lake: Lake, quarantine: list[dict], staging: _Staging) -> list[str]:
    """Loaded visits/settlements some of whose rows (fee lines, diagnoses...) were quarantined."""
    refs = defaultdict(lambda: defaultdict(list))  # (col, id) -> entity -> [file:line]
    for r in quarantine:
        if r["entity"] not in ("fee_list", "diag", "setl"):
            continue
        try:
            raw = json.loads(r["raw_row"])
        except ValueError:
            continue
        for col in ("setl_id", "mdtrt_id"):
            v = (raw.get(col) or "").strip() if isinstance(raw.get(col), str) else None
            if v and not (col == "setl_id" and r["entity"] == "setl") and not (col == "mdtrt_id" and r["entity"] == "mdtrt"):
                refs[(col, v)][r["entity"]].append(f"{r['file']}:{r['line']}")
    parent_of = {"setl_id": "setl", "mdtrt_id": "mdtrt"}
    wanted = defaultdict(set)
    for col, v in refs:
        wanted[col].add(v)
    loaded = {col: _loaded_values(con, lake, parent_of[col], col, vals, staging) for col, vals in wanted.items()}
    out = []
    for (col, v), by_entity in sorted(refs.items()):
        if v not in loaded[col]:
            continue
        what = "; ".join(f"{e} rows quarantined 被隔离: {', '.join(ls)}" for e, ls in sorted(by_entity.items()))
        out.append(f"{parent_of[col]} {col}={v}: {what}")
    return out


def _loaded_values(con, lake: Lake, entity: str, col: str, values: set[str], staging: _Staging) -> set[str]:
    """Those of `values` that a record of `entity` carries in `col`, loaded now or before (one query each)."""
    found: set[str] = set()
    wanted = pa.table({"v": pa.array(sorted(values), pa.string())})
    if entity in staging.entities:
        con.register("_wanted", wanted)
        try:
            found |= {r[0] for r in con.execute(f"SELECT DISTINCT {nodes.q(col)} FROM out_{entity} "
                                                f"WHERE {nodes.q(col)} IN (SELECT v FROM _wanted)").fetchall()}
        finally:
            con.unregister("_wanted")
    name = f"silver/{entity}"
    if lake.exists(name) and values - found:
        t = lake.dataset(name).to_table(columns=[col], filter=pads.field(col).isin(sorted(values - found)))
        found |= set(t.column(col).to_pylist())
    return found


def _restore(lake: Lake, before: dict, names: list[str]) -> None:
    for n in names:
        v = before.get(n)
        if not lake.exists(n):
            continue
        if v is None:
            shutil.rmtree(lake.path(n))
        elif lake.version(n) != v:
            lake.delta(n).restore(v)


# ---------------------------------------------------------------- ledger and report

def _ledger_shas(lake: Lake) -> dict[str, str]:
    if not lake.exists(LEDGER):
        return {}
    t = lake.read(LEDGER, columns=["file_sha256", "drop_id", "file"])
    return {s: f"{d}/{f}" for s, d, f in zip(*(t.column(c).to_pylist() for c in t.column_names))}


def _write_ledger(lake: Lake, todo: list[FileInfo], by_name: dict, drop_id: str, load_id: str, now) -> None:
    rows = [{"file_sha256": i.sha256, "drop_id": drop_id, "file": i.name, "entity": i.entity,
             "rows_read": by_name[i.name].rows_read, "load_id": load_id, "loaded_at": now} for i in todo]
    schema = pa.schema([("file_sha256", pa.string()), ("drop_id", pa.string()), ("file", pa.string()),
                        ("entity", pa.string()), ("rows_read", pa.int64()), ("load_id", pa.string()),
                        ("loaded_at", pa.timestamp("us", tz="UTC"))])
    lake.append(LEDGER, pa.Table.from_pylist(rows, schema=schema))


REPORT_SCHEMA = pa.schema([
    ("load_id", pa.string()), ("drop_id", pa.string()), ("load_status", pa.string()), ("file", pa.string()),
    ("entity", pa.string()), ("format", pa.string()), ("encoding", pa.string()), ("file_sha256", pa.string()),
    ("status", pa.string()), ("rows_read", pa.int64()), ("rows_loaded", pa.int64()),
    ("rows_quarantined", pa.int64()), ("rows_duplicate", pa.int64()), ("balanced", pa.bool_()),
    ("unknown_columns", pa.string()), ("note", pa.string()), ("loaded_at", pa.timestamp("us", tz="UTC")),
])


def _write_report(lake: Lake, report: LoadReport, now) -> None:
    rows = [{"load_id": report.load_id, "drop_id": report.drop_id, "load_status": report.status,
             "file": f.file, "entity": f.entity, "format": f.format, "encoding": f.encoding,
             "file_sha256": f.sha256, "status": f.status, "rows_read": f.rows_read,
             "rows_loaded": f.rows_loaded, "rows_quarantined": f.rows_quarantined,
             "rows_duplicate": f.rows_duplicate, "balanced": f.balanced,
             "unknown_columns": "|".join(f.unknown_columns), "note": f.note, "loaded_at": now}
            for f in report.files]
    lake.append(REPORT, pa.Table.from_pylist(rows, schema=REPORT_SCHEMA))
    msgs = [("incomplete", m) for m in report.incomplete] + [("warning", m) for m in report.warnings]
    if msgs:
        schema = pa.schema([("load_id", pa.string()), ("kind", pa.string()), ("message", pa.string()),
                            ("loaded_at", pa.timestamp("us", tz="UTC"))])
        lake.append(WARNINGS, pa.Table.from_pylist(
            [{"load_id": report.load_id, "kind": k, "message": m, "loaded_at": now} for k, m in msgs],
            schema=schema))
