"""Layered configuration helpers."""
from __future__ import annotations

import pytest

from pipelines import config


def test_parse_memory():
    assert config.parse_memory("4GB") == 4 * 2**30
    assert config.parse_memory("512mb") == 512 * 2**20
    assert config.parse_memory("1.5G") == int(1.5 * 2**30)
    assert config.parse_memory("8GiB") == 8 * 2**30
    assert config.parse_memory(None) is None
    with pytest.raises(ValueError):
        config.parse_memory("four gigs")
