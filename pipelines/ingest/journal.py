"""A load as a transaction. Before a load writes, it records in its journal (`<lake>/_meta/journal/<id>.json`)
the version of every table it may write; it writes bronze, silver, quarantine, then the ledger (the commit
point), the report, and removes the journal. A journal found on the next start is a load that died: if the
ledger holds its files it had committed (the journal just goes); otherwise each table it wrote goes back to
its version before that load, so no row and no ledger entry of a dead load survives, and re-sending the
drop loads it once. A rollback touches only the tables at a version this load wrote: another load's
versions are never restored away (the lake lock also keeps loads from overlapping).

Scratch files of a load (the staging DuckDB, its spill) live under `<lake>/_tmp/`, removed when the load
ends and, after a crash, on the next start."""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from pipelines.storage import Lake

JOURNAL = Path("_meta") / "journal"
TMP = "_tmp"


def _dir(lake: Lake) -> Path:
    return Path(lake.root) / JOURNAL


def _file(lake: Lake, load_id: str) -> Path:
    return _dir(lake) / (load_id.replace("/", "_").replace("@", "_") + ".json")


def begin(lake: Lake, load_id: str, before: dict[str, int | None]) -> None:
    """The load's journal, written atomically before its first write."""
    d = _dir(lake)
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"load_id": load_id, "before": before}), encoding="utf-8")
    os.replace(tmp, _file(lake, load_id))


def end(lake: Lake, load_id: str) -> None:
    _file(lake, load_id).unlink(missing_ok=True)


def tmp_dir(lake: Lake) -> Path:
    d = Path(lake.root) / TMP
    d.mkdir(parents=True, exist_ok=True)
    return d


def clean_tmp(lake: Lake) -> None:
    """Scratch folders of loads that died (the caller holds the lake's lease: no load is running)."""
    d = Path(lake.root) / TMP
    if d.is_dir():
        for p in d.glob("fundguard-ingest-*"):
            shutil.rmtree(p, ignore_errors=True)


def recover(lake: Lake, committed_loads: set[str]) -> list[str]:
    """Roll back every load that died before its commit point; returns what was done (also on stderr)."""
    from pipelines.ingest.ledger import restore
    done = []
    d = _dir(lake)
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        entry = json.loads(p.read_text(encoding="utf-8"))
        load_id, before = entry["load_id"], entry["before"]
        if load_id not in committed_loads:
            restore(lake, before, list(before))
            done.append(f"load {load_id} died before its commit: {', '.join(sorted(before))} restored "
                        f"/ 上次入库中断, 已回滚")
        p.unlink()
    for msg in done:
        print(f"fundguard: {msg}", file=sys.stderr)
    return done
