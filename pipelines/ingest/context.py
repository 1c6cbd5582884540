"""What every step of one load shares: a typed context, the quarantine rows it collects, the staging DuckDB."""
from __future__ import annotations

import datetime as dt
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from pipelines import config
from pipelines.ingest.report import LoadReport
from pipelines.storage import Lake

QUARANTINE = "quarantine"


def trace(msg: str) -> None:
    """Phase timings and peak memory on stderr when FUNDGUARD_INGEST_TRACE is set (benchmarks)."""
    if os.environ.get("FUNDGUARD_INGEST_TRACE"):
        import resource
        import time
        use = resource.getrusage(resource.RUSAGE_SELF)
        rss, cpu = use.ru_maxrss / 1024 / 1024, use.ru_utime + use.ru_stime
        print(f"[ingest {time.perf_counter():.1f}s cpu {cpu:.1f}s peak {rss:.2f} GB] {msg}", file=sys.stderr, flush=True)


def memory_limit() -> str:
    return config.ingest_memory()


def limit_bytes(limit: str) -> int:
    """The load's memory limit (`3GB`, `1536MiB`) in bytes."""
    from pipelines.ingest.inspection import IngestError

    try:
        size = config.parse_memory(limit)
    except ValueError:
        size = None
    if not size:
        raise IngestError(f"memory limit {limit!r} is not a size like 3GB / 内存上限格式错误")
    return size


def staging_connection(tmp: Path) -> duckdb.DuckDBPyConnection:
    """The load's DuckDB: a database file in `tmp` (staged rows spill to disk), memory-limited, UTC."""
    con = duckdb.connect(str(tmp / "staging.duckdb"))
    con.execute(f"SET temp_directory = '{tmp / 'spill'}'")
    con.execute(f"SET memory_limit = '{memory_limit()}'")
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET TimeZone = 'UTC'")
    return con


@dataclass
class Quarantine:
    """The rows a load rejects, each with its file, line, field and reason; appended to the quarantine table
    at the end of the load. `kind` is "row" (unreadable or failing typing) or "conflict" (a key sent
    twice with different values)."""
    load_id: str
    drop_id: str
    now: dt.datetime
    rows: list[dict] = field(default_factory=list)

    def add(self, file: str, entity: str, line: int, field_: str, reason: str, raw: str, kind: str = "row") -> None:
        self.rows.append({"_kind": kind, "load_id": self.load_id, "drop_id": self.drop_id, "file": file,
                          "line": line, "entity": entity, "field": field_, "reason": reason, "raw_row": raw,
                          "loaded_at": self.now})

    def per_file(self, kind: str | None = None) -> Counter:
        """Rows quarantined per file (of one kind, or all)."""
        return Counter(r["file"] for r in self.rows if kind is None or r["_kind"] == kind)


@dataclass
class LoadContext:
    """One load: where it stages and writes, what it loads, where it reports and quarantines."""
    con: duckdb.DuckDBPyConnection       # the staging DuckDB (a worker thread gets a cursor of its own)
    lake: Lake
    report: LoadReport
    quarantine: Quarantine
    salt: str                            # PII hashing
    batch_rows: int                      # rows per batch of a file read in Python
    progress: bool = False
    decimal: str = "."                   # the drop's decimal mark for its text files (manifest.py)

    def decimal_of(self, info) -> str:
        """The decimal mark of a file (`FileInfo`): the manifest's for text files, "." otherwise."""
        return self.decimal if info.format in ("csv", "csv.gz", "tsv") else "."

    @property
    def drop_id(self) -> str:
        return self.report.drop_id

    @property
    def load_id(self) -> str:
        return self.report.load_id

    @property
    def now(self) -> dt.datetime:
        """The load's time: bronze `_loaded_at`, quarantine, ledger and report `loaded_at`."""
        return self.quarantine.now
