"""Lakes for the service tests: the sample district, and the same district with a second drop that re-sends
files and refunds lines."""
from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pipelines import config
from pipelines.app.load import load_drop
from pipelines.storage import Lake
from pipelines.synth.generator import generate

from .drops import resend_and_refund_drop

TOKEN = "api-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: the service's limits in the HTTP tests: small, so that a test can pass them
LIMITS = {"max_body_bytes": 100_000, "max_batch": 3, "max_lines": 40}


@pytest.fixture(scope="session")
def sample_drop(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve_district") / "landing"
    generate(out, scale=0.3, seed=11)
    return out


@pytest.fixture(scope="session")
def sample_lake(sample_drop, tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("serve_lake"))
    load_drop(sample_drop, lake, config.load(), progress=False)
    return lake


@pytest.fixture(scope="session")
def resent_lake(sample_drop, tmp_path_factory) -> Lake:
    lake = Lake(tmp_path_factory.mktemp("serve_lake_resent"))
    load_drop(sample_drop, lake, config.load(), progress=False)
    second = tmp_path_factory.mktemp("serve_second") / "landing2"
    made = resend_and_refund_drop(sample_drop, second)
    assert made["refunds"] > 100 and min(made["partial"], made["whole"], made["without_init"]) > 10, made
    load_drop(second, lake, config.load(), progress=False)
    return lake


@pytest.fixture(scope="module")
def client(sample_lake):
    """The service over the sample lake, loaded before the first request, with the test token and LIMITS."""
    from pipelines.app.serve import create_app
    from pipelines.serve.service import Settings

    settings = Settings(token=TOKEN, salt="test-salt", refresh_seconds=0, background_load=False, **LIMITS)
    with TestClient(create_app(sample_lake, settings), raise_server_exceptions=False) as c:
        yield c
