"""Reconciliation (入库对账): every row read ends loaded or quarantined, per file; loaded records some of whose
related rows were quarantined are reported as incomplete."""
from __future__ import annotations

import json
from collections import Counter, defaultdict

import pyarrow as pa
import pyarrow.dataset as pads

from pipelines.ingest import census
from pipelines.ingest.context import LoadContext
from pipelines.ingest.inspection import FileInfo, RefusedFile, delimiter, text_stream
from pipelines.ingest.staging import Staging
from pipelines.storage import sql_ident

#: a quarantined row of these entities names its parent records in these columns
_CHILDREN = ("fee_list", "diag", "setl")
_PARENT_OF = {"setl_id": "setl", "mdtrt_id": "mdtrt"}


def reconcile(ctx: LoadContext, staging: Staging) -> None:
    """Each loaded file's rows loaded, quarantined and duplicate (identical copies counted once in silver);
    a file whose rows do not add up is reported as a warning."""
    report, con = ctx.report, ctx.con
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
    qcount, conflict_n = ctx.quarantine.per_file(), ctx.quarantine.per_file("conflict")
    for fr in report.files:
        if fr.status != "loaded":
            continue
        fr.rows_quarantined = qcount[fr.file]
        fr.rows_loaded = staged_n[fr.file] - conflict_n[fr.file]
        fr.rows_duplicate = staged_n[fr.file] - conflict_n[fr.file] - kept_n[fr.file]
        if not fr.balanced:
            report.warnings.append(f"{fr.file}: rows read {fr.rows_read} != loaded {fr.rows_loaded} + "
                                   f"quarantined {fr.rows_quarantined} / 对账不平衡")


def incomplete(ctx: LoadContext, staging: Staging) -> list[str]:
    """Loaded visits/settlements some of whose rows (fee lines, diagnoses...) were quarantined."""
    refs = _quarantined_refs(ctx.quarantine.rows)
    wanted = defaultdict(set)
    for col, v in refs:
        wanted[col].add(v)
    loaded = {col: _loaded_values(ctx, _PARENT_OF[col], col, vals, staging) for col, vals in wanted.items()}
    out = []
    for (col, v), by_entity in sorted(refs.items()):
        if v not in loaded[col]:
            continue
        what = "; ".join(f"{e} rows quarantined 被隔离: {', '.join(ls)}" for e, ls in sorted(by_entity.items()))
        out.append(f"{_PARENT_OF[col]} {col}={v}: {what}")
    return out


def _quarantined_refs(rows: list[dict]) -> dict:
    """(column, parent id) -> entity -> ["file:line", ...] of the quarantined rows naming that parent."""
    refs = defaultdict(lambda: defaultdict(list))
    for r in rows:
        if r["entity"] not in _CHILDREN:
            continue
        try:
            raw = json.loads(r["raw_row"])
        except ValueError:
            continue
        for col in ("setl_id", "mdtrt_id"):
            v = (raw.get(col) or "").strip() if isinstance(raw.get(col), str) else None
            if v and not (col == "setl_id" and r["entity"] == "setl") and not (col == "mdtrt_id" and r["entity"] == "mdtrt"):
                refs[(col, v)][r["entity"]].append(f"{r['file']}:{r['line']}")
    return refs


def _loaded_values(ctx: LoadContext, entity: str, col: str, values: set[str], staging: Staging) -> set[str]:
    """Those of `values` that a record of `entity` carries in `col`, loaded now or before (one query each)."""
    found: set[str] = set()
    wanted = pa.table({"v": pa.array(sorted(values), pa.string())})
    if entity in staging.entities:
        con = ctx.con
        con.register("_wanted", wanted)
        try:
            found |= {r[0] for r in con.execute(f"SELECT DISTINCT {sql_ident(col)} FROM out_{entity} "
                                                f"WHERE {sql_ident(col)} IN (SELECT v FROM _wanted)").fetchall()}
        finally:
            con.unregister("_wanted")
    name = f"silver/{entity}"
    if ctx.lake.exists(name) and values - found:
        t = ctx.lake.dataset(name).to_table(columns=[col], filter=pads.field(col).isin(sorted(values - found)))
        found |= set(t.column(col).to_pylist())
    return found


def check_census(ctx: LoadContext, loaded: list[FileInfo]) -> None:
    """Each loaded file's rows read = loaded + quarantined against its independent count (census.py), or the
    load is refused naming the file and the line where the two readings part."""
    refused = []
    for info in loaded:
        fr = ctx.report.file(info.name)
        want = info.census.records if info.census else None
        if want is None or (fr.rows_read == want and fr.rows_loaded + fr.rows_quarantined == want):
            continue
        refused.append(f"{info.name}: the loader read {fr.rows_read} records (loaded {fr.rows_loaded} + "
                       f"quarantined {fr.rows_quarantined}), an independent count ({info.census.method}) finds "
                       f"{want}{_where_they_part(ctx, info)} / 独立点数不符, 文件拒收")
    if refused:
        raise RefusedFile(f"load {ctx.load_id} refused, nothing loaded / 入库被拒, 未入库:\n  " + "\n  ".join(refused))


def _where_they_part(ctx: LoadContext, info: FileInfo) -> str:
    """'; they part at line N': the first record one reading has and the other has not (CSV/TSV)."""
    if info.format not in ("csv", "csv.gz", "tsv"):
        return ""
    with text_stream(info) as t:
        starts = census.record_starts(t, delimiter(info))
    mine = {r["line"] for r in ctx.quarantine.rows if r["file"] == info.name}
    name = f"bronze/{info.entity}"
    if ctx.lake.exists(name):
        t = ctx.lake.dataset(name).to_table(columns=["_line"], filter=(pads.field("_file_sha256") == info.sha256)
                                            & (pads.field("_drop") == ctx.drop_id))
        mine |= set(t.column("_line").to_pylist())
    there = set(starts)
    gone = [s for s in starts if s not in mine] + sorted(m for m in mine if m not in there)
    return f"; the readings part at line {min(gone)} / 自第{min(gone)}行起不一致" if gone else ""
