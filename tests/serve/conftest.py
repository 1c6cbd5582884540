"""Lakes for the service tests: the sample district, and the same district with a second drop that re-sends
files and refunds lines."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipelines import config
from pipelines.app.load import load_drop
from pipelines.storage import Lake
from pipelines.synth.generator import generate

from .drops import resend_and_refund_drop


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
