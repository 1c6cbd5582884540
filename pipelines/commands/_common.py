"""What several commands share: exit codes, lake and config resolution, the screening options."""
from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

from pipelines import config
from pipelines.contract import (  # noqa: F401  (the commands take them from here)
    EXIT_BAD_INPUT, EXIT_GATE_FAILED, EXIT_LAKE_BUSY, EXIT_OK, EXIT_REJECTED,
)
from pipelines.storage import Lake, utcnow



def add_lake(p) -> None:
    p.add_argument("--lake", type=Path, help="lake root (default: conf lake)")


def parse_clock(value: str | None) -> dt.datetime:
    """`--at` (yyyy-MM-dd or ISO time, UTC) or the pipeline's clock; read here, passed down."""
    if not value:
        return utcnow()
    t = dt.datetime.fromisoformat(value)
    return (t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)).astimezone(dt.timezone.utc)


def lake_of(args, conf: dict | None = None) -> Lake:
    """`--lake`, else conf `lake`."""
    return Lake(args.lake or (conf if conf is not None else config.load())["lake"])


def fail(command: str, message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"fundguard {command}: {message}", file=sys.stderr)
    return code


def add_screen_arguments(p) -> None:
    """The options `fundguard run` and `fundguard screen` share."""
    p.add_argument("--lake", type=Path, help="lake root 数据湖根目录 (default: conf lake)")
    p.add_argument("--engine", choices=["duckdb", "spark"], help="screening engine (default: conf engine)")
    p.add_argument("--period", help="YYYY or YYYY-MM 期间")
    p.add_argument("--institution", action="append", help="only these institutions (repeatable)")
    p.add_argument("--tags", action="append", help="only rules with these focus tags, e.g. 血液净化 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--memory", help="memory budget, e.g. 4GB (default: conf screen.memory); a lake that does not "
                                    "fit it is screened in batches of institutions and persons 内存预算")
