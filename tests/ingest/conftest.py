from __future__ import annotations

import pytest

from pipelines.storage import Lake

SALT = "test-salt"


@pytest.fixture
def lake(tmp_path) -> Lake:
    return Lake(tmp_path / "lake")


@pytest.fixture
def load(lake):
    """ingest_drop with the test salt, small batches (several batches per file) and no progress bars."""
    from pipelines.ingest import ingest_drop

    def _load(folder, **kw):
        kw.setdefault("salt", SALT)
        kw.setdefault("batch_rows", 2)
        kw.setdefault("progress", False)
        return ingest_drop(folder, kw.pop("lake", lake), **kw)
    return _load
