"""Ingestion wiring: a landing drop → bronze, silver, quarantine, `_meta` tables, through `Lake` only.

    check every file (entity, format, encoding, headers)      inspection   nothing written if one is refused
    skip files already in the ledger (same sha256)            ledger
    per file: string rows → bronze (one commit per file) and staging:
        a plain UTF-8 CSV/TSV in one pass, staged lazily      fastpath, staging
        other files in Python batches, typed on a thread      bronze, typist, readers
    per entity: in-drop duplicates → silver                   dedup, silver
    fee_list: refund netting → silver/fee_list_net            netting (on a thread, beside the other tables)
    quarantine, reconciliation, incomplete records            reconcile
    validate hook (restores every table written by the load on failure), then ledger and report

Every step takes the load's `LoadContext` (context.py): the staging DuckDB, the lake, the report, the
quarantine rows, the salt.
"""
from __future__ import annotations

import sys
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from pipelines import contract
from pipelines.ingest import bronze, dedup, faults, fastpath, journal, ledger, netting, nodes, reconcile, silver
from pipelines.ingest.context import QUARANTINE, LoadContext, Quarantine, staging_connection, trace
from pipelines.ingest.inspection import FileInfo, IngestError, RefusedFile, inspect_file, list_drop
from pipelines.ingest.listing import DropListing, list_landing
from pipelines.ingest.manifest import read_manifest
from pipelines.ingest.report import FileReport, LoadReport
from pipelines.ingest.staging import Staging
from pipelines.storage import Lake, utcnow

__all__ = ["ingest_drop", "load_knowledge_base", "LoadReport", "FileReport", "IngestError", "RefusedFile"]

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
    journal.recover(lake, ledger.ledger_loads(lake))
    journal.clean_tmp(lake)
    listing = list_landing(landing)
    if files is not None:
        wanted = {Path(f).resolve() for f in files}
        listing.files = [(p, n) for p, n in listing.files if p.resolve() in wanted]
        listing.skipped, listing.refused = [], []
    manifest = read_manifest(landing)
    infos = _inspect(listing, drop_id)
    faults.point("ingest.listed")
    now = utcnow()
    report = LoadReport(f"{drop_id}@{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}", drop_id)
    for name, why in listing.skipped:
        report.files.append(FileReport(name, "-", "-", None, "", status="skipped", note=why))
    todo = _files_to_load(lake, report, infos)
    if not todo:
        report.status = "nothing_to_load"
        ledger.write_report(lake, report, now)
        return report
    with tempfile.TemporaryDirectory(prefix="fundguard-ingest-", dir=journal.tmp_dir(lake)) as tmp:
        con = staging_connection(Path(tmp))
        try:
            ctx = LoadContext(con, lake, report, Quarantine(report.load_id, drop_id, now), salt, batch_rows, progress,
                              decimal=manifest.decimal)
            _load(ctx, todo, validate)
        finally:
            con.close()
    return report


def load_knowledge_base(kb_dir: Path, lake: Lake, *, salt: str, batch_rows: int = 250_000,
                        only_if_missing: bool = True, progress: bool = False,
                        validate: Validator | None = None) -> LoadReport | None:
    """Ingest a knowledge-base folder (e.g. the shipped rules/kb/*.csv) as a drop.

    With `only_if_missing`, only the kb tables silver lacks are loaded (None when it holds every one the
    folder has): a drop's own knowledge base is never replaced by the sample.
    """
    kb_dir = Path(kb_dir)
    files = [p for p in list_drop(kb_dir) if contract.entity_of(p.name) in contract.KB_ENTITIES]
    if only_if_missing:
        files = [p for p in files if not lake.exists(f"silver/{contract.entity_of(p.name)}")]
    if not files:
        return None
    return ingest_drop(kb_dir, lake, drop_id=f"kb-{kb_dir.name}", salt=salt, batch_rows=batch_rows,
                       progress=progress, validate=validate, files=files)


# ---------------------------------------------------------------- the load

def _inspect(listing: DropListing, drop_id: str) -> list[FileInfo]:
    """Every file inspected and counted; the drop refused whole when one file is."""
    infos, refused = [], list(listing.refused)
    for p, name in listing.files:
        try:
            infos.append(inspect_file(p, name))
        except RefusedFile as exc:
            refused.append(str(exc))
    if refused:
        raise RefusedFile(f"drop {drop_id} refused, nothing loaded / 数据包被拒收, 未入库:\n  " + "\n  ".join(refused))
    return infos


def _files_to_load(lake: Lake, report: LoadReport, infos: list[FileInfo]) -> list[FileInfo]:
    """A report line per file; the files to load: not loaded before, not a copy of another file of the drop."""
    known = ledger.ledger_shas(lake)
    todo: list[FileInfo] = []
    seen_in_drop: dict[str, str] = {}
    for info in infos:
        fr = FileReport(info.name, info.entity, info.format, info.encoding, info.sha256,
                        unknown_columns=list(info.unknown_columns), note="; ".join(info.notes))
        report.files.append(fr)
        if info.sha256 in known:
            fr.status, fr.note = "skipped", f"already loaded by {known[info.sha256]} / 文件已入库, 跳过"
        elif info.sha256 in seen_in_drop:
            fr.status, fr.note = "skipped", f"same content as {seen_in_drop[info.sha256]} / 与同批文件内容相同, 跳过"
        else:
            seen_in_drop[info.sha256] = info.name
            todo.append(info)
    return todo


def _load(ctx: LoadContext, todo: list[FileInfo], validate: Validator | None) -> None:
    """Stage, write and reconcile the files `todo`; every table it wrote restored if anything fails."""
    entities = sorted({i.entity for i in todo})
    silver_names = [f"silver/{e}" for e in entities] + ([netting.NET] if "fee_list" in entities else [])
    written = [f"bronze/{e}" for e in entities] + [QUARANTINE] + silver_names
    before = {n: ctx.lake.version(n) for n in written}
    journal.begin(ctx.lake, ctx.load_id, before)
    faults.point("ingest.journal_opened")
    try:
        staging = _stage(ctx, todo)
        faults.point("ingest.staged")
        _write_silver(ctx, staging, entities, before)
        faults.point("ingest.silver_done")
        if ctx.quarantine.rows:
            ctx.report.versions[QUARANTINE] = ctx.lake.append(QUARANTINE, nodes.quarantine_table(ctx.quarantine.rows))
        faults.point("ingest.quarantine_written")
        reconcile.reconcile(ctx, staging)
        reconcile.check_census(ctx, todo)
        ctx.report.incomplete = reconcile.incomplete(ctx, staging)
        faults.point("ingest.reconciled")
        if validate is not None:
            _validate(ctx, validate, before, silver_names, written)
        faults.point("ingest.validated")
        ledger.write_ledger(ctx.lake, ctx.report, todo, ctx.now)     # the commit point
    except BaseException:
        _rollback(ctx, before, written)
        raise
    faults.point("ingest.ledger_written")
    ledger.write_report(ctx.lake, ctx.report, ctx.now)
    faults.point("ingest.report_written")
    journal.end(ctx.lake, ctx.load_id)


def _rollback(ctx: LoadContext, before: dict, written: list[str]) -> None:
    """The tables this load wrote back to their versions before it (only those still at its own version),
    the journal closed."""
    left = ledger.restore(ctx.lake, before, written, mine=ctx.report.versions)
    journal.end(ctx.lake, ctx.load_id)
    if left:
        print("fundguard: not rolled back, written since by another writer / 他人已写入, 未回滚: " + "; ".join(left),
              file=sys.stderr)


def _stage(ctx: LoadContext, todo: list[FileInfo]) -> Staging:
    """Every file to bronze and staging: the fast path where it applies, Python batches otherwise."""
    staging = Staging(ctx)
    batched = [(ord_, info) for ord_, info in enumerate(todo) if not fastpath.stage_fast(ctx, staging, info, ord_)]
    bronze.load_batched(ctx, staging, batched)
    for entity in staging.entities:
        staging.create_view(entity)
    return staging


def _write_silver(ctx: LoadContext, staging: Staging, entities: list[str], before: dict) -> None:
    """Each staged entity deduplicated and written to silver; fee_list netted on a thread meanwhile."""
    nets = None
    for entity in entities:
        if entity not in staging.entities:
            continue
        repeated = dedup.deduplicate(ctx, staging, entity)
        trace(f"dedup {entity}")
        silver.write(ctx, staging, entity, repeated)
        staging.quarantine_parts(entity)
        trace(f"silver/{entity}")
        faults.point("ingest.silver_entity")
        if entity == "fee_list":
            was = before["silver/fee_list"]
            nets = netting.start(ctx, fresh=was is None or not silver.has_rows(ctx.lake, "silver/fee_list", was))
    if nets is not None:
        nets.join()
        trace("silver/fee_list_net")


def _validate(ctx: LoadContext, validate: Validator, before: dict, silver_names: list[str], written: list[str]) -> None:
    """The validate hook on the silver tables written; on failure every table written is restored and the
    load reported as rolled back (IngestError)."""
    result = validate(ctx.lake, {n: before[n] for n in silver_names}, ctx.load_id)
    ctx.report.warnings += list(getattr(result, "warnings", []) or [])
    if getattr(result, "success", False):
        return
    failures = list(getattr(result, "failures", []) or [])
    ctx.report.status = "rolled_back"
    ledger.write_report(ctx.lake, ctx.report, ctx.now)
    raise IngestError(f"load {ctx.load_id} failed validation, silver restored / 校验未通过, 已回滚:\n  "
                      + "\n  ".join(failures or ["(no failure message)"]))
