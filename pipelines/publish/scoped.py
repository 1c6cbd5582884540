"""Publishing an incremental run: replace exactly the findings a re-screen covered (contract §5).

The run re-screened a scope (some institutions for some families, some persons for others) and found
`suspects` there. The published findings of that scope (`replaced`: their suspect ids, chosen by the caller
who knows the scope) are removed and the new ones added; every other finding stays as it was, with its own
run id and publication time. Only the gold partitions (institution, month) holding a removed or an added
finding are rewritten, in ONE Delta commit recording the run's lineage and its scope.
"""
from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.contract import GOLD_SUSPECTS as GOLD, SUSPECT_SCHEMA
from pipelines.publish.publisher import META_PREFIX, PARTITION_BY, PublishError, _utc
from pipelines.storage import Lake, sql_literal


def publish_replacing(lake: Lake, suspects: pa.Table, replaced: set[str], *, published_at: dt.datetime,
                      run_id: str, fingerprint: str, input_versions: dict[str, int], rule_ids: list[str],
                      scope: dict) -> int | None:
    """Remove the findings `replaced` (suspect ids) from gold/suspects and add `suspects`; returns the new
    Delta version (None when nothing changed)."""
    if not lake.exists(GOLD):
        raise PublishError("nothing published yet: an incremental run needs a published full run first")
    new = suspects.select(list(SUSPECT_SCHEMA.names)).cast(SUSPECT_SCHEMA)
    stamp = pa.array([_utc(published_at)] * new.num_rows, SUSPECT_SCHEMA.field("published_at").type)
    new = new.set_column(new.schema.get_field_index("published_at"), "published_at", stamp)
    gold = lake.read(GOLD).select(list(SUSPECT_SCHEMA.names)).cast(SUSPECT_SCHEMA)
    out_ids = pa.array(sorted(replaced | set(new.column("suspect_id").to_pylist())), pa.string())
    removed = gold.filter(pc.is_in(gold.column("suspect_id"), out_ids))
    touched = {(r["fixmedins_code"], r["period"]) for t in (removed, new)
               for r in t.select(["fixmedins_code", "period"]).to_pylist()}
    if not touched:
        return None
    if any(i is None or p is None for i, p in touched):
        raise PublishError("a finding without institution or period cannot be published")
    insts, months = sorted({i for i, _ in touched}), sorted({p for _, p in touched})
    in_rect = pc.and_(pc.is_in(gold.column("fixmedins_code"), pa.array(insts, pa.string())),
                      pc.is_in(gold.column("period"), pa.array(months, pa.string())))
    kept = gold.filter(pc.and_(in_rect, pc.invert(pc.is_in(gold.column("suspect_id"), out_ids))))
    data = pa.concat_tables([kept, new]).sort_by([("fixmedins_code", "ascending"), ("period", "ascending"),
                                                  ("rule_id", "ascending"), ("suspect_id", "ascending")])
    meta = {
        "run_id": run_id, "rule_set_fingerprint": fingerprint,
        "input_versions": json.dumps(input_versions, sort_keys=True),
        "rule_ids": json.dumps(sorted(rule_ids)), "rows": str(new.num_rows),
        "published_at": _utc(published_at).isoformat(),
        "incremental": json.dumps({**scope, "removed": removed.num_rows, "added": new.num_rows,
                                   "partitions_rewritten": len(insts) * len(months)}, sort_keys=True),
    }
    pred = (f"fixmedins_code IN ({', '.join(sql_literal(i) for i in insts)}) "
            f"AND period IN ({', '.join(sql_literal(m) for m in months)})")
    return lake.replace_where(GOLD, data, pred, PARTITION_BY, {META_PREFIX + k: v for k, v in meta.items()})
