"""A lake's visits as the claims a hospital system would have sent: the rows as received (bronze strings),
the newest version of each record (as silver keeps it), quarantined rows left out. Used to replay a drop
through the service (the equivalence test, the load benchmark).

Reads the lake through `pipelines.storage` only.
"""
from __future__ import annotations

from collections import defaultdict

import duckdb
import pyarrow as pa

from pipelines import contract
from pipelines.storage import Lake

#: claim part -> entity; `psn` is not sent (the service looks the person up in the lake)
PARTS = {"mdtrt": "mdtrt", "setl": "setl", "diag": "diag", "fee_list": "fee_list"}


def _newest(con, lake: Lake, entity: str, visits: list[str] | None = None) -> str:
    """SQL of an entity's bronze rows: contract fields only, quarantined rows out, the newest load of a key."""
    ds = lake.dataset(f"bronze/{entity}")
    con.register(f"b_{entity}", ds)
    names = [n for n in contract.ENTITIES[entity].names if n in ds.schema.names]
    keys = ", ".join(f'b."{k}"' for k in contract.ENTITIES[entity].key)
    bad = ""
    if lake.exists(contract.QUARANTINE):
        con.register("q_all", lake.dataset(contract.QUARANTINE))
        bad = (f"ANTI JOIN (SELECT drop_id, file, line FROM q_all WHERE entity = '{entity}') q "
               f"ON q.drop_id = b._drop AND q.file = b._file AND q.line = b._line")
    cols = ", ".join(f'nullif(b."{n}", \'\') AS "{n}"' for n in names)
    where = ""
    if visits is not None:
        con.register("wanted_visits", pa.table({"mdtrt_id": visits}))
        where = "WHERE b.mdtrt_id IN (SELECT mdtrt_id FROM wanted_visits) "
    return (f"SELECT {cols}, b._loaded_at, b._drop, b._line FROM b_{entity} b {bad} {where}"
            f"QUALIFY rank() OVER (PARTITION BY {keys} "
            f"ORDER BY b._loaded_at DESC, b._drop DESC) = 1")


def lake_claims(lake: Lake, limit: int | None = None, visits: list[str] | None = None) -> list[dict]:
    """Every visit of the lake (or those of `visits`) as a claim body (`{"mdtrt", "setl"?, "diag",
    "fee_list"}`), in the order of the visits' admission times (then mdtrt_id). A visit's first non-refund
    settlement is sent as its `setl`."""
    con = duckdb.connect()
    try:
        rows: dict[str, dict[str, list[dict]]] = {}
        for part, entity in PARTS.items():
            names = contract.ENTITIES[entity].names
            sql = _newest(con, lake, entity, visits)
            order = "_loaded_at, _drop, _line"
            if entity == "setl":
                order = "coalesce(refd_setl_flag, '0'), setl_time, setl_id"
            table = con.sql(f"SELECT * FROM ({sql}) ORDER BY mdtrt_id, {order}").to_arrow_table()
            keep = [n for n in names if n in table.column_names]
            by_visit: dict[str, list[dict]] = defaultdict(list)
            for r in table.select(keep).to_pylist():
                by_visit[r["mdtrt_id"]].append(r)
            rows[part] = by_visit
        ordered = sorted((v[0] for v in rows["mdtrt"].values()), key=lambda v: (v["begntime"] or "", v["mdtrt_id"]))
    finally:
        con.close()
    claims = []
    for v in ordered[:limit]:
        m = v["mdtrt_id"]
        body = {"mdtrt": v, "diag": rows["diag"].get(m, []), "fee_list": rows["fee_list"].get(m, [])}
        if rows["setl"].get(m):
            body["setl"] = rows["setl"][m][0]
        claims.append(body)
    return claims
