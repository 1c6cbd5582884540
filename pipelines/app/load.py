"""Loading a landing drop: ingestion into bronze/silver, the silver suite, and a knowledge base in silver."""
from __future__ import annotations

from pathlib import Path

from pipelines import config
from pipelines.storage import Lake
from pipelines.storage.lock import holds_lease


def kb_dir_of(conf: dict, override: Path | None = None) -> Path:
    """The knowledge-base folder: `override`, else conf `kb_dir` (relative to the repository)."""
    kb_dir = Path(override or conf.get("kb_dir", "rules/kb"))
    return kb_dir if kb_dir.is_absolute() else config.REPO_ROOT / kb_dir


@holds_lease("fundguard ingest", creates=True)
def load_drop(landing: Path, lake: Lake, conf: dict, progress: bool = True, *,
              drop_id: str | None = None, batch_rows: int | None = None, kb_dir: Path | None = None):
    """Ingest a landing drop, checked by the silver suite (`ingest`, `run` and the ingest DAG alike), then the
    knowledge base of `kb_dir` (default: conf `kb_dir`, the shipped sample) for each kb table silver lacks.
    Returns (load report, kb report or None)."""
    from pipelines.ingest import faults
    from pipelines.ingest.pipeline import ingest_drop, load_knowledge_base
    from pipelines.quality.silver import validate_silver

    batch_rows = int(batch_rows or conf["ingest"]["batch_rows"])
    report = ingest_drop(Path(landing), lake, drop_id=drop_id, salt=config.pii_key(conf), batch_rows=batch_rows,
                         progress=progress, validate=validate_silver)
    faults.point("load.drop_done")
    kb = None
    folder = kb_dir_of(conf, kb_dir)
    if folder.is_dir():
        kb = load_knowledge_base(folder, lake, salt=config.pii_key(conf), batch_rows=batch_rows, progress=False)
    return report, kb
