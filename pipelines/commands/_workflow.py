"""Helpers shared by the workflow's thin commands (the lake, the clock, the exit code)."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from pipelines import config
from pipelines.storage import Lake, utcnow

EXIT_OK, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2


def add_lake(p) -> None:
    p.add_argument("--lake", type=Path, help="lake root (default: conf lake)")


def lake_of(args) -> Lake:
    return Lake(args.lake or config.load()["lake"])


def parse_clock(value: str | None) -> dt.datetime:
    """`--at` (yyyy-MM-dd or ISO time, UTC) or the pipeline's clock; read here, passed down."""
    if not value:
        return utcnow()
    t = dt.datetime.fromisoformat(value)
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def fail(command: str, message: str) -> int:
    print(f"fundguard {command}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT
