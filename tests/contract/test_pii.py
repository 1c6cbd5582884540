"""Personal data is hashed with HMAC-SHA256 under the lake's key, the same in Python and DuckDB; outside
dev/ci no command starts without a real key."""
from __future__ import annotations

import hashlib
import hmac

import duckdb
import pytest

from pipelines import config
from pipelines.cli import main
from pipelines.contract.pii import pii_hash, pii_hash_sql

KEYS = ["k", "一把中文密钥", "x" * 64, "y" * 65, "z" * 200]       # short, unicode, a block, longer than one
VALUES = ["张三", "110101199003077777", "", "O'Brien", "a" * 300]


@pytest.mark.parametrize("key", KEYS)
def test_python_and_duckdb_compute_the_same_hmac(key):
    con = duckdb.connect()
    for value in VALUES:
        want = hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
        assert pii_hash(key, value) == want
        assert con.execute(f"SELECT {pii_hash_sql(key, '?')}", [value]).fetchone()[0] == want
    assert con.execute(f"SELECT {pii_hash_sql(key, 'NULL')}").fetchone()[0] is None


def test_the_hash_is_keyed_not_salted():
    assert pii_hash("k1", "张三") != pii_hash("k2", "张三")
    assert pii_hash("k1", "张三") != hashlib.sha256(("k1" + "张三").encode()).hexdigest()


@pytest.mark.parametrize("env, key, ok", [
    ("dev", config.DEV_PII_KEY, True), ("ci", config.DEV_PII_KEY, True),
    ("prod", "", False), ("prod", config.DEV_PII_KEY, False), ("staging", None, False),
    ("prod", "a-real-key-from-the-vault", True),
])
def test_outside_dev_the_key_must_be_set_and_not_the_development_one(env, key, ok):
    conf = {"pii_key": key}
    if ok:
        assert config.pii_key(conf, env) == key
    else:
        with pytest.raises(config.ConfigError, match="PII key"):
            config.pii_key(conf, env)


def test_prod_refuses_to_start_without_a_key(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FUNDGUARD_ENV", "prod")
    monkeypatch.delenv("FUNDGUARD_PII_KEY", raising=False)
    config._load.cache_clear()
    try:
        assert main(["rules"]) == 2
        assert "FUNDGUARD_PII_KEY" in capsys.readouterr().err
        monkeypatch.setenv("FUNDGUARD_PII_KEY", "a-real-key-from-the-vault")
        config._load.cache_clear()
        assert main(["rules"]) == 0
    finally:
        config._load.cache_clear()
