"""`fundguard kb import` wiring: read a folder of batch files, recognise, read points, reconcile, write a
release. Wiring only: the steps are in layout/sources/points/release/reconcile, the I/O in io."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from pipelines import contract
from pipelines.kb import io
from pipelines.kb.layout import LayoutError, load_layout
from pipelines.kb.phrasings import load_curation, load_phrasings
from pipelines.kb.points import Readers, read_batch
from pipelines.kb.reconcile import Reconciliation, reconcile
from pipelines.kb.release import PRECEDENCE, hilist_rows, item_pair_rows, merge_local, validity
from pipelines.kb.sources import Refusal, group_batches


class KbImportError(ValueError):
    """The import cannot run at all (no folder, no batch file, a bad local or curation file)."""


@dataclass
class ImportResult:
    release_id: str | None
    reconciliation: Reconciliation
    written: bool
    message: str
    in_force: bool = False


def _readers(rules_kb: Path) -> tuple:
    layout = load_layout(io.load_yaml("batches.yml", rules_kb))
    phrasings = load_phrasings(io.load_yaml("phrasings.yml", rules_kb))
    try:
        curation = load_curation(io.read_curation(rules_kb / "curation"))
    except ValueError as exc:
        raise KbImportError(str(exc)) from exc
    return layout, Readers(phrasings, curation)


def read_folder(src: Path, rules_kb: Path = io.RULES_KB):
    """(batches, knowledge, reconciliation, hashes) of every batch file in `src`; nothing written."""
    try:
        files = io.list_sources(src)
    except FileNotFoundError as exc:
        raise KbImportError(str(exc)) from exc
    if not files:
        raise KbImportError(f"{src}: no batch file (.xlsx or .csv)")
    layout, readers = _readers(rules_kb)
    hashes = {p.name: io.sha256(p) for p in files}
    raws, refused = [], []
    for p in files:
        try:
            raws.extend(io.read_source(p, layout))
        except LayoutError as exc:
            refused.append(Refusal(exc.file, exc.sheet, exc.message))
    batches, more = group_batches(raws, layout)
    knowledge = [read_batch(b.sheets, readers) for b in batches]
    return batches, knowledge, reconcile(batches, knowledge, refused + more, hashes), hashes


def _release_id(effective: dt.date, sources: list[dict], local: list[dict]) -> str:
    digest = hashlib.sha256(json.dumps([str(effective), sources, local], sort_keys=True).encode()).hexdigest()
    return f"{effective:%Y%m%d}-{digest[:8]}"


def _local(local_dir: Path | None) -> dict[str, tuple[list[dict], list[dict]]]:
    if local_dir is None:
        return {}
    try:
        return {e: io.read_local(local_dir, e) for e in contract.KB_ENTITIES}
    except ValueError as exc:
        raise KbImportError(str(exc)) from exc


def import_release(src: Path, lake, *, effective: dt.date, local_dir: Path | None = None, partial: bool = False,
                   now: dt.datetime | None = None, rules_kb: Path = io.RULES_KB) -> ImportResult:
    """Import every batch file of `src` as one new release (nothing written when a file is refused, unless
    `partial`: then the accepted files' batches make the release and the refused ones are listed)."""
    batches, knowledge, rec, hashes = read_folder(src, rules_kb)
    local = _local(local_dir)
    if rec.refused and not partial:
        return ImportResult(None, rec, False, f"{len(rec.refused)} file(s) refused: no release written "
                            "(fix or remove them, or import the others with --partial)")
    if not batches:
        return ImportResult(None, rec, False, "no batch accepted: no release written")
    sources = [{"file": f, "sha256": hashes[f], "batch": b.batch, "kind": b.kind} for b in batches for f in b.files]
    local_sources = [s for _, srcs in local.values() for s in srcs]
    release_id = _release_id(effective, sources, local_sources)
    existing = io.releases(lake)
    if any(r["release_id"] == release_id for r in existing):
        return ImportResult(release_id, rec, False, f"already imported as release {release_id}: nothing written")
    points = [dict(p, release_id=release_id) for k in knowledge for p in k.points]
    codes = [dict(c, release_id=release_id) for k in knowledge for c in k.codes]
    lake.append(io.POINT_TABLE, io.typed(points, io.point_schema()), partition_by=["release_id"])
    lake.append(io.CODE_TABLE, io.typed(codes, io.code_schema()), partition_by=["release_id"])
    created = now or dt.datetime.now()
    valid = validity([*existing, {"release_id": release_id, "effective_date": effective, "created_at": created}])
    in_force = valid[release_id][1] is None
    versions = _write_kb_tables(lake, release_id, batches, points, codes, local, valid)
    row = {"release_id": release_id, "effective_date": effective, "created_at": created,
           "sources": json.dumps(sources, ensure_ascii=False), "precedence": PRECEDENCE,
           "local_sources": json.dumps(local_sources, ensure_ascii=False),
           "points": rec.total("points_read"), "points_mapped": rec.total("points_mapped"),
           "points_curation": rec.total("points_curation"), "code_rows": rec.total("code_rows_read"),
           "rows_rejected": rec.total("rows_rejected"), "count_mismatches": rec.total("count_mismatches"),
           "kb_versions": json.dumps(versions)}
    import pyarrow as pa
    lake.append(io.RELEASE_TABLE, pa.Table.from_pylist([row], schema=io.release_schema()))
    report = lake.folder("reports", "kb") / f"{release_id}.json"
    report.write_text(json.dumps({"release": {**row, "effective_date": str(effective),
                                              "created_at": str(row["created_at"])}, **rec.as_dict()},
                                 ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    msg = f"release {release_id} written (effective {effective})" + (
        "" if in_force else f"; in force for claims dated before {valid[release_id][1]} (a later release follows)")
    return ImportResult(release_id, rec, True, msg, in_force)


def _write_kb_tables(lake, release_id: str, batches, points, codes, local, valid: dict) -> dict[str, int]:
    """kb_hilist, kb_item_pair (national, with local rows over them) and kb_param (local, when given). The kb
    tables keep the rows of every release, each with its days in force (kb_valid_from, kb_valid_to): the rules
    join the row in force on a claim's date, so one pass screens claims of any date."""
    shapes = {b.kind: b.sheets[0].layout.kind.shape for b in batches}
    hil = merge_local(hilist_rows(points, codes, shapes, release_id), local.get("kb_hilist", ([], []))[0],
                      ("hilist_code",))
    pairs = merge_local(item_pair_rows(points, codes, release_id), local.get("kb_item_pair", ([], []))[0],
                        ("hilist_code_a", "hilist_code_b"))
    for r in (*hil, *pairs):
        r["kb_release"] = release_id
    versions = {t: lake.overwrite(t, io.dated_table(lake, t, rows, contract.arrow_schema(e), release_id, valid))
                for t, e, rows in (("silver/kb_hilist", "kb_hilist", hil), ("silver/kb_item_pair", "kb_item_pair", pairs))}
    params = local.get("kb_param", ([], []))[0]
    if params:
        versions["silver/kb_param"] = lake.overwrite("silver/kb_param",
                                                     io.typed(params, contract.arrow_schema("kb_param")))
    return versions
