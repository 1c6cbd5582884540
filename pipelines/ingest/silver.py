"""Silver writes: `out_<entity>` (the deduplicated rows of a load) into silver/<entity>.

A knowledge-base table is replaced; a fresh table is written in memory-sized chunks; an existing one gets a
null-safe upsert on the entity's key (the newest version of a key wins).
"""
from __future__ import annotations


import pyarrow as pa

from pipelines import contract
from pipelines.ingest import nodes
from pipelines.ingest.context import LoadContext, limit_bytes, memory_limit, trace
from pipelines.ingest.staging import Staging
from pipelines.storage import CopiedFiles, Lake

#: rows per batch of an upsert or of a knowledge-base table
MERGE_CHUNK = 1_000_000
#: DuckDB's partitioned writer holds a file's rows until it closes it, and with many small partitions that
#: is all of them; a fresh silver table is therefore written by one COPY per chunk of rows, a chunk being
#: what fits in this share of the memory limit at about BUFFERED_BYTES_PER_COLUMN per value (measured:
#: 5 M fee lines, 26 columns, held 1.9 GB). Each partition gets one file per chunk.
CHUNK_MEMORY_SHARE = 0.65
BUFFERED_BYTES_PER_COLUMN = 16


def has_rows(lake: Lake, name: str, version: int | None = None) -> bool:
    return lake.exists(name) and lake.dataset(name, version).count_rows() > 0


def write(ctx: LoadContext, staging: Staging, entity: str, repeated: bool) -> None:
    """`out_<entity>` into silver/<entity>. When a fresh table's chunks kept every staged row (and no key was
    `repeated`), no row of the lazy parts failed typing: they need no second pass to find bad rows."""
    ent = contract.ENTITIES[entity]
    name = f"silver/{entity}"
    lake, con = ctx.lake, ctx.con
    if ent.knowledge_base:     # a knowledge-base table is a whole release: the drop's replaces the lake's
        before = lake.dataset(name).count_rows() if lake.exists(name) else 0
        reader = con.sql(f"SELECT * FROM out_{entity}").to_arrow_reader(MERGE_CHUNK)
        ctx.report.versions[name] = lake.overwrite(name, reader)
        after = lake.dataset(name).count_rows()
        if before and after < before:
            ctx.report.warnings.append(
                f"知识库 {entity} 已整表替换, {before} 行 → {after} 行 / the drop's {entity} replaced the lake's whole "
                f"table ({before} rows → {after}): a knowledge-base file is a whole release, not an update of some keys")
    elif not has_rows(lake, name):
        copied = write_chunks(ctx, staging, entity)
        ctx.report.versions[name] = lake.commit_copied(copied)
        if not repeated and copied.rows == staging.rows(entity):
            staging.all_good(entity)
    else:
        target = lake.schema(name)
        for batch in con.sql(f"SELECT * FROM out_{entity}").to_arrow_reader(MERGE_CHUNK):
            data = pa.Table.from_batches([batch]).select(target.names).cast(target)
            ctx.report.versions[name] = upsert(lake, name, data, ent.key)


def chunk_rows(entity: str, memory_limit: str) -> int:
    """Rows per COPY of a fresh silver table (see CHUNK_MEMORY_SHARE)."""
    width = BUFFERED_BYTES_PER_COLUMN * len(nodes.silver_columns(entity))
    return max(100_000, int(limit_bytes(memory_limit) * CHUNK_MEMORY_SHARE / width))


def write_chunks(ctx: LoadContext, staging: Staging, entity: str) -> CopiedFiles:
    """out_<entity> written (not committed) into a fresh silver table, one COPY per chunk (`chunk_rows`)."""
    name, lake = f"silver/{entity}", ctx.lake
    pb = contract.ENTITIES[entity].partition_by or None
    copies: list = []
    try:
        for where in staging.chunks(entity, chunk_rows(entity, memory_limit())):
            copies.append(lake.copy_query(name, ctx.con, f"SELECT * FROM out_{entity} WHERE {where}", pb))
            trace(f"silver/{entity} chunk {len(copies)}")
    except BaseException:
        for c in copies:
            lake.discard_copied(c)
        raise
    return CopiedFiles.combine(name, copies, copies[0].schema, copies[0].partition_by)


def upsert(lake: Lake, name: str, data: pa.Table, keys) -> int:
    """The rows upserted on the entity's key; an optional key column (e.g. batch_no) matches when both sides
    are null. Only the partitions holding one of the keys are rewritten (`Lake.merge`)."""
    ent = contract.ENTITIES[name.split("/", 1)[1]]
    return lake.merge(name, data, keys, nullable_keys=[k for k in keys if not ent.field(k).required])
