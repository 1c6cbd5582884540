"""The load's records in `_meta`: the ledger of loaded files (a file is loaded once, by its sha256), the load
report and its warnings; and the rollback of the tables a load wrote."""
from __future__ import annotations

import datetime as dt
import shutil

import pyarrow as pa

from pipelines.ingest.inspection import FileInfo
from pipelines.ingest.report import LoadReport
from pipelines.storage import Lake

LEDGER = "_meta/ingest_ledger"
REPORT = "_meta/load_report"
WARNINGS = "_meta/load_warnings"

LEDGER_SCHEMA = pa.schema([
    ("file_sha256", pa.string()), ("drop_id", pa.string()), ("file", pa.string()), ("entity", pa.string()),
    ("rows_read", pa.int64()), ("load_id", pa.string()), ("loaded_at", pa.timestamp("us", tz="UTC")),
])
REPORT_SCHEMA = pa.schema([
    ("load_id", pa.string()), ("drop_id", pa.string()), ("load_status", pa.string()), ("file", pa.string()),
    ("entity", pa.string()), ("format", pa.string()), ("encoding", pa.string()), ("file_sha256", pa.string()),
    ("status", pa.string()), ("rows_read", pa.int64()), ("rows_loaded", pa.int64()),
    ("rows_quarantined", pa.int64()), ("rows_duplicate", pa.int64()), ("balanced", pa.bool_()),
    ("unknown_columns", pa.string()), ("note", pa.string()), ("loaded_at", pa.timestamp("us", tz="UTC")),
])
WARNINGS_SCHEMA = pa.schema([("load_id", pa.string()), ("kind", pa.string()), ("message", pa.string()),
                             ("loaded_at", pa.timestamp("us", tz="UTC"))])


def ledger_shas(lake: Lake) -> dict[str, str]:
    """sha256 of every file loaded before -> "drop/file" that loaded it."""
    if not lake.exists(LEDGER):
        return {}
    t = lake.read(LEDGER, columns=["file_sha256", "drop_id", "file"])
    return {s: f"{d}/{f}" for s, d, f in zip(*(t.column(c).to_pylist() for c in t.column_names))}


def ledger_loads(lake: Lake) -> set[str]:
    """Every load that reached its commit point (the ledger holds its files)."""
    if not lake.exists(LEDGER):
        return set()
    return set(lake.read(LEDGER, columns=["load_id"]).column("load_id").to_pylist())


def write_ledger(lake: Lake, report: LoadReport, loaded: list[FileInfo], now: dt.datetime) -> None:
    rows = [{"file_sha256": i.sha256, "drop_id": report.drop_id, "file": i.name, "entity": i.entity,
             "rows_read": report.file(i.name).rows_read, "load_id": report.load_id, "loaded_at": now}
            for i in loaded]
    lake.append(LEDGER, pa.Table.from_pylist(rows, schema=LEDGER_SCHEMA))


def write_report(lake: Lake, report: LoadReport, now: dt.datetime) -> None:
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
        lake.append(WARNINGS, pa.Table.from_pylist(
            [{"load_id": report.load_id, "kind": k, "message": m, "loaded_at": now} for k, m in msgs],
            schema=WARNINGS_SCHEMA))


def restore(lake: Lake, before: dict[str, int | None], names: list[str], mine: dict[str, int] | None = None) -> list[str]:
    """Each of `names` back to its version `before` the load (removed when it did not exist). With `mine`
    (table -> the last version this load wrote), a table now at another version (another writer came
    after) is left alone and named in the result: a rollback never removes another load's rows."""
    left = []
    for n in names:
        v = before.get(n)
        if not lake.exists(n):
            continue
        if mine is not None and n in mine and lake.version(n) != mine[n]:
            left.append(f"{n} (at version {lake.version(n)}, this load wrote {mine[n]}: left as it is)")
            continue
        if v is None:
            shutil.rmtree(lake.path(n))
        elif lake.version(n) != v:
            lake.delta(n).restore(v)
    return left
