"""How many processes `fundguard serve` runs when `serve.processes` is `auto`: one per core, as many as the
memory holds — each process keeps its own warm lake, and holds two while it refreshes (decision 45).

A warm lake's size is estimated before anything is loaded, from the snapshot's Parquet footers: the
uncompressed bytes of the columns the service holds, times `HELD_PER_UNCOMPRESSED` (measured on the 10 M-line
lake: 813 MB of held columns became 2.0 GB in memory), plus `PROCESS_BASE` (interpreter, DuckDB, FastAPI).
Memory is what the host reports available, or the container's limit when that is lower (cgroup v2).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.serve.history import SOURCES, held_columns
from pipelines.storage import Lake, sql_literal

HELD_PER_UNCOMPRESSED = 2.5
HELD_PER_COMPRESSED = 2.5           # uncompressed / file bytes of the 10 M lake's history columns (483 / 191 MB)
PROCESS_BASE = 400 * 2**20
CGROUP_MAX = Path("/sys/fs/cgroup/memory.max")
CGROUP_USED = Path("/sys/fs/cgroup/memory.current")


@dataclass(frozen=True)
class Sizing:
    processes: int
    cores: int
    available: int          # bytes
    per_process: int        # bytes a process may need at its peak (two warm lakes during a refresh)

    def describe(self) -> str:
        gb = 2**30
        return (f"{self.processes} process(es): {self.cores} core(s), {self.available / gb:.1f} GB available, "
                f"~{self.per_process / gb:.1f} GB a process while it refreshes / 服务进程数")


def held_bytes(lake: Lake, columns: dict[str, set[str]]) -> int:
    """Uncompressed bytes, per the Parquet footers of the current snapshots, of the columns a warm lake holds
    (`columns[input]`: the names the rules read; plus the look-up columns)."""
    con, total = duckdb.connect(), 0
    try:
        for source, (table, _) in SOURCES.items():
            if not lake.exists(table):
                continue
            snap = lake.native_files(table, lake.version(table))
            if snap is None:        # only a Delta reader may read it: its files' bytes, as if all were held
                actions = pa.table(lake.delta(table).get_add_actions(flatten=True))
                total += int(HELD_PER_COMPRESSED * pc.sum(actions.column("size_bytes")).as_py())
                continue
            keep = sorted(held_columns(source, columns))
            files = ", ".join(sql_literal(f) for f in snap.files)
            names = ", ".join(sql_literal(c) for c in keep) or "''"
            total += con.execute(
                f"SELECT coalesce(sum(total_uncompressed_size), 0) FROM parquet_metadata([{files}]) "
                f"WHERE lower(path_in_schema) IN ({names})").fetchall()[0][0]
    finally:
        con.close()
    return int(total)


def process_peak(held: int) -> int:
    """Bytes one process may hold at its peak: its base and two warm lakes (the old one and the one loading)."""
    return PROCESS_BASE + 2 * int(held * HELD_PER_UNCOMPRESSED)


def processes_for(cores: int, available: int, per_process: int) -> int:
    """One process a core, no more than the memory holds at every process's peak, at least one."""
    return max(1, min(cores, available // max(per_process, 1)))


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count() or 1


def available_memory() -> int:
    """Bytes this service may still take: the host's available memory, or the room under the container's
    memory limit when that is smaller."""
    import psutil

    free = psutil.virtual_memory().available
    try:
        limit = CGROUP_MAX.read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int(CGROUP_USED.read_text().strip()))
    except (OSError, ValueError):
        pass
    return max(free, 0)


def size(lake: Lake, columns: dict[str, set[str]]) -> Sizing:
    per = process_peak(held_bytes(lake, columns))
    n, free = cores(), available_memory()
    return Sizing(processes_for(n, free, per), n, free, per)
