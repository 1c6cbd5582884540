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


@pytest.fixture(autouse=True)
def lazy_staging(monkeypatch):
    """Stage every fast-path file lazily, as a large one is (the test files are small); the tests elsewhere,
    and `test_small_and_lazy_staging_load_the_same`, run the default, where small files are copied."""
    from pipelines.ingest import staging
    monkeypatch.setattr(staging, "LAZY_MIN_ROWS", 0)
