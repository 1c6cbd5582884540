"""Bronze: the rows as received (every field as text) plus lineage, one commit per file.

This module writes the files read in Python batches (any format, any encoding): each batch goes to bronze
and to the typing thread. Plain UTF-8 CSV/TSV files take the fast path (`fastpath.py`) instead.
"""
from __future__ import annotations

import sys
from typing import Iterator

import pyarrow as pa

from pipelines import contract
from pipelines.ingest import faults, nodes
from pipelines.ingest.context import LoadContext, trace
from pipelines.ingest.inspection import FileInfo
from pipelines.ingest.readers import read_batches
from pipelines.ingest.staging import Staging
from pipelines.ingest.typist import Typist


def _delimiter(info: FileInfo) -> str | None:
    return {"csv": ",", "csv.gz": ",", "tsv": "\t"}.get(info.format)


def bronze_schema(entity: str) -> pa.Schema:
    ent = contract.ENTITIES[entity]
    return pa.schema([*[(n, pa.string()) for n in ent.names], ("_line", pa.int64()), ("_drop", pa.string()),
                      ("_file", pa.string()), ("_file_sha256", pa.string()),
                      ("_loaded_at", pa.timestamp("us", tz="UTC"))])


def load_batched(ctx: LoadContext, staging: Staging, files: list[tuple[int, FileInfo]]) -> None:
    """Each of `files` (its order in the drop, its info) streamed into bronze/<entity> (one commit per file),
    every batch typed into staging by the typing thread meanwhile."""
    typist = Typist(ctx, staging)
    try:
        for ord_, info in files:
            batches = _bronze_batches(ctx, typist, info, ord_)
            reader = pa.RecordBatchReader.from_batches(bronze_schema(info.entity), batches)
            ctx.report.versions[f"bronze/{info.entity}"] = ctx.lake.append(f"bronze/{info.entity}", reader,
                                                                           partition_by=["_drop"])
            trace(f"bronze + staging {info.name}")
            faults.point("ingest.bronze_file")
    finally:
        typist.close()


def _bronze_batches(ctx: LoadContext, typist: Typist, info: FileInfo, ord_: int) -> Iterator[pa.RecordBatch]:
    """Generator of bronze batches; each batch is also handed to the typist for staging, and the rows the
    reader could not split into fields are quarantined."""
    from tqdm import tqdm
    entity, fr = info.entity, ctx.report.file(info.name)
    sql = nodes.typing_sql(entity, "_b", ctx.salt, ctx.drop_id, info.name, ord_, decimal=ctx.decimal_of(info))
    bar = tqdm(desc=info.name, unit=" rows", file=sys.stderr, disable=not ctx.progress, leave=False)
    try:
        for rb in read_batches(info, ctx.batch_rows):
            t = rb.table
            n = t.num_rows
            fr.rows_read += n + len(rb.invalid)
            for inv in rb.invalid:
                raw = (nodes.raw_json(entity, inv.raw, ctx.salt) if isinstance(inv.raw, dict) else
                       nodes.raw_text_json(entity, inv.raw, ctx.salt, info.mapping, _delimiter(info),
                                           info.headers))
                ctx.quarantine.add(info.name, entity, inv.line, inv.field, inv.reason, raw)
            if n:
                typist.put(info, sql, t)
                lineage = [pa.array([ctx.drop_id] * n, pa.string()), pa.array([info.name] * n, pa.string()),
                           pa.array([info.sha256] * n, pa.string()),
                           pa.array([ctx.now] * n, pa.timestamp("us", tz="UTC"))]
                for name, arr in zip(("_drop", "_file", "_file_sha256", "_loaded_at"), lineage):
                    t = t.append_column(name, arr)
                yield from t.to_batches()
            bar.update(n + len(rb.invalid))
    finally:
        bar.close()
