"""Layered configuration: conf/base → conf/<FUNDGUARD_ENV> → conf/local (git-ignored, secrets).

Each layer holds YAML files named by topic (`fundguard.yml`, `spark.yml`, ...); a later layer's keys
override the earlier ones, recursively. `FUNDGUARD_CONF_DIR` points at another conf folder.
Values of the form `${ENV_VAR:default}` are read from the environment.
"""
from __future__ import annotations

import os
import re
from copy import deepcopy
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from pipelines.contract import UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
_ENV_RE = re.compile(r"\$\{([A-Z0-9_]+)(?::([^}]*))?\}")


def conf_dir() -> Path:
    return Path(os.environ.get("FUNDGUARD_CONF_DIR", REPO_ROOT / "conf"))


def env_name() -> str:
    return os.environ.get("FUNDGUARD_ENV", "dev")


def deep_merge(base: dict, over: dict) -> dict:
    out = deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else deepcopy(v)
    return out


def _expand(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v) for v in value]
    if isinstance(value, str):
        m = _ENV_RE.fullmatch(value)
        if m:
            return os.environ.get(m.group(1), m.group(2))
        return _ENV_RE.sub(lambda m: os.environ.get(m.group(1), m.group(2) or ""), value)
    return value


def layers(env: str | None = None) -> list[Path]:
    root = conf_dir()
    return [root / "base", root / (env or env_name()), root / "local"]


@lru_cache(maxsize=32)
def _load(topic: str, env: str, root: str) -> dict:
    merged: dict = {}
    for layer in layers(env):
        path = layer / f"{topic}.yml"
        if path.exists():
            merged = deep_merge(merged, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    return _expand(merged)


#: environments that may run with the shipped development PII key (every other one needs a real key)
DEV_ENVS = ("dev", "ci")
DEV_PII_KEY = "fundguard-dev-key-not-a-secret"


class ConfigError(UsageError):
    """The configuration cannot be used as it is (a command exits 2 and says what to set)."""


#: memory a load's DuckDB may use (staging and the silver suite; FUNDGUARD_INGEST_MEMORY overrides): with Python
#: and Arrow beside it a load stays under 4 GB, the suite's frames read 1,000 files at a time (40 M: 3.94 GB, §41)
INGEST_MEMORY = "3GB"


def ingest_memory() -> str:
    return os.environ.get("FUNDGUARD_INGEST_MEMORY", INGEST_MEMORY)


def pii_key(conf: dict | None = None, env: str | None = None) -> str:
    """The key personal data is hashed with (HMAC-SHA256, contract.pii). Outside dev/ci it must be set
    (`FUNDGUARD_PII_KEY` or conf/local `pii_key`) and must not be the development key: FundGuard refuses
    to start rather than hash a bureau's data with a key everybody knows."""
    env = env or env_name()
    key = str((conf if conf is not None else load(env=env)).get("pii_key") or "")
    if env not in DEV_ENVS and (not key or key == DEV_PII_KEY):
        raise ConfigError(f"FUNDGUARD_ENV={env}: set the PII key (FUNDGUARD_PII_KEY, or pii_key in "
                          f"conf/local/fundguard.yml); the development key is refused outside {', '.join(DEV_ENVS)}")
    if not key:
        raise ConfigError("no PII key: set FUNDGUARD_PII_KEY or pii_key in conf/<env>/fundguard.yml")
    return key


def load(topic: str = "fundguard", env: str | None = None) -> dict:
    """The merged configuration of one topic for the current environment (a fresh copy)."""
    return deepcopy(_load(topic, env or env_name(), str(conf_dir())))


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B)?\s*$", re.IGNORECASE)


def parse_memory(text: str | int | None) -> int | None:
    """`4GB`, `512MB`, `1.5G`, `8GiB` or a byte count -> bytes; None/'' -> None (no budget)."""
    if text is None or text == "" or text == 0:
        return None
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"not a memory size: {text!r} (e.g. 4GB, 512MB)")
    return int(float(m.group(1)) * 1024 ** " KMGT".index((m.group(2) or " ").upper()))
