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


def load(topic: str = "fundguard", env: str | None = None) -> dict:
    """The merged configuration of one topic for the current environment (a fresh copy)."""
    return deepcopy(_load(topic, env or env_name(), str(conf_dir())))
