"""In-drop duplicates (contract §1): identical copies of a row count once; a key sent with different values is
quarantined, every copy of it. The result is `out_<entity>` in the load's DuckDB: what silver receives."""
from __future__ import annotations

from collections import defaultdict

import pyarrow as pa
import pyarrow.dataset as pads

from pipelines import contract
from pipelines.ingest import nodes
from pipelines.ingest.context import LoadContext, limit_bytes, memory_limit
from pipelines.ingest.staging import Staging
from pipelines.storage import sql_ident


def deduplicate(ctx: LoadContext, staging: Staging, entity: str) -> bool:
    """`out_<entity>`: the staged rows, one per key. Returns whether some key was sent more than once (then
    `out_<entity>` is a table, else a view over `stg_<entity>`)."""
    con = ctx.con
    cols = ", ".join(sql_ident(c) for c in nodes.silver_columns(entity))
    parts = nodes.key_parts(entity, key_passes(staging.rows(entity), memory_limit()))
    # a cheap superset first: the keys of every row, good or bad, unchecked
    keys = staging.keys_sql(entity)
    repeated = any(con.execute(f"SELECT EXISTS ({nodes.dup_keys_sql(entity, keys, part)})").fetchall()[0][0]
                   for part in parts)
    if repeated:
        con.execute("DROP TABLE IF EXISTS _groups")
        for part in parts:
            hashed = f"(SELECT *, {nodes.row_hash_sql(entity)} AS _h FROM stg_{entity} WHERE {part})"
            sql = nodes.dedup_sql(entity, hashed)
            con.execute(f"INSERT INTO _groups {sql['groups']}" if part != parts[0] else
                        f"CREATE TABLE _groups AS {sql['groups']}")
        sql = nodes.dedup_sql(entity, f"(SELECT *, {nodes.row_hash_sql(entity)} AS _h FROM stg_{entity})")
        repeated = con.execute("SELECT count(*) FROM _groups").fetchall()[0][0] > 0
    if not repeated:
        # no key sent twice: the staged rows are the rows (no copy)
        con.execute(f"CREATE VIEW out_{entity} AS SELECT {cols} FROM stg_{entity}")
    else:
        staging.deduplicated.add(entity)
        conflicts = con.sql(sql["conflicts"]).to_arrow_table()
        if conflicts.num_rows:
            _quarantine_conflicts(ctx, entity, conflicts)
        con.execute(f"CREATE TABLE out_{entity} AS {sql['rows']}")
    con.execute("DROP TABLE IF EXISTS _groups")
    return repeated


#: memory the duplicate check's hash table takes per key (with its count): measured, a check of 41.6 M fee-line
#: keys passed in a 3GB limit, one of 104 M failed with DuckDB's out-of-memory error
KEY_BYTES = 64
#: the share of the load's memory limit the check may take
KEY_MEMORY_SHARE = 0.8


def key_passes(rows: int, limit: str) -> int:
    """How many parts of the keys (by hash) the duplicate check takes so that each part's keys fit `limit`."""
    return max(1, -(-rows * KEY_BYTES // int(limit_bytes(limit) * KEY_MEMORY_SHARE)))


def _quarantine_conflicts(ctx: LoadContext, entity: str, conflicts: pa.Table) -> None:
    """Every row of a key sent with different values quarantined, with its bronze row and the lines of the
    others."""
    keys = contract.ENTITIES[entity].key
    files = sorted(set(conflicts.column("_file").to_pylist()))
    lines = sorted(set(conflicts.column("_line").to_pylist()))
    flt = ((pads.field("_drop") == ctx.drop_id) & pads.field("_file").isin(files) & pads.field("_line").isin(lines))
    bronze = ctx.lake.read(f"bronze/{entity}", filter=flt)
    raw = {(r["_file"], r["_line"]): r for r in bronze.to_pylist()}
    by_key = defaultdict(list)
    for r in sorted(conflicts.to_pylist(), key=lambda r: (r["_ord"], r["_line"])):   # in the drop's order
        by_key[tuple(r[k] for k in keys)].append(r)
    for key, group in by_key.items():
        where = ", ".join(f"{g['_file']}:{g['_line']}" for g in group)
        kdesc = ", ".join(f"{k}={v}" for k, v in zip(keys, key))
        reason = (f"key ({kdesc}) sent {len(group)} times with different values (lines {where}) "
                  f"/ 同一主键在本批数据中出现多次且内容不同")
        for g in group:
            r = raw.get((g["_file"], g["_line"]), {})
            r = {k: v for k, v in r.items() if not k.startswith("_")}
            ctx.quarantine.add(g["_file"], entity, g["_line"], ",".join(keys), reason,
                               nodes.raw_json(entity, r, ctx.salt), kind="conflict")
