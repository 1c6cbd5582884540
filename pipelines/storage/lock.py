"""One writer per lake: a lease file under `<lake>/_lock/writer.json`.

Every command and DAG task that writes the lake takes the lease (`Lake.writer(owner)`); a second writer
waits up to `wait_s`, then gives up with `LakeBusy` naming the holder (commands exit 3). The holder renews
its heartbeat every `heartbeat_s` from a background thread; a lease whose heartbeat is older than
`stale_s` (a killed process) is broken by the next writer, which says so. Within one process the lease is
re-entrant (`fundguard run` loads, screens and publishes under one lease).

The lease is created with an exclusive create (`O_CREAT | O_EXCL`), atomic on local and network file
systems. On object storage the same protocol needs a conditional put (if-none-match), which the lake does
not do yet: run one scheduler per lake there (the Airflow pool `fundguard_lake` serialises the DAGs).
"""
from __future__ import annotations

import datetime as dt
import errno
import functools
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

LOCK_DIR, LOCK_FILE = "_lock", "writer.json"
DEFAULT_WAIT_S, DEFAULT_STALE_S, DEFAULT_HEARTBEAT_S = 600.0, 120.0, 10.0

_held: dict[Path, int] = {}          # lease files this process holds -> depth (re-entrant)
_held_guard = threading.Lock()


class LakeBusy(RuntimeError):
    """Another writer holds the lake; `holder` is its lease (owner, pid, host, start, heartbeat)."""

    def __init__(self, root: Path, holder: dict, waited_s: float):
        self.root, self.holder, self.waited_s = root, holder, waited_s
        super().__init__(
            f"数据湖正被占用 / lake busy: {root} is held by {holder.get('owner', '?')} "
            f"(pid {holder.get('pid', '?')} on {holder.get('host', '?')}, since {holder.get('start', '?')}, "
            f"last heartbeat {holder.get('heartbeat', '?')}); waited {waited_s:.0f} s")


@dataclass(frozen=True)
class LeasePolicy:
    wait_s: float = DEFAULT_WAIT_S
    stale_s: float = DEFAULT_STALE_S
    heartbeat_s: float = DEFAULT_HEARTBEAT_S


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def read_holder(path: Path) -> dict | None:
    """The lease as written, None when there is none; a lease still being written reads as {}."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _try_create(path: Path, lease: dict) -> bool:
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(lease, f, ensure_ascii=False)
    return True


def _break_stale(path: Path, stale_s: float, log) -> None:
    """Remove the lease when its heartbeat (the file's mtime) is older than `stale_s`."""
    if path.exists() and _age_s(path) > stale_s:
        holder = read_holder(path) or {}
        try:
            path.rename(path.with_name(f"stale-{time.time_ns()}.json"))
        except FileNotFoundError:
            return
        log(f"stale lease of {holder.get('owner', '?')} (pid {holder.get('pid', '?')}) broken after "
            f"{stale_s:.0f} s without heartbeat")


def _heartbeat(path: Path, every_s: float, stop: threading.Event) -> None:
    while not stop.wait(every_s):
        if read_holder(path) is None:
            return
        try:
            os.utime(path)
        except FileNotFoundError:
            return


@contextmanager
def lease(root: Path, owner: str, policy: LeasePolicy = LeasePolicy(), log=lambda msg: None) -> Iterator[dict]:
    """Hold the lake's writer lease for the block (see the module docstring)."""
    folder = Path(root) / LOCK_DIR
    path = folder / LOCK_FILE
    with _held_guard:
        if path in _held:
            _held[path] += 1
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield read_holder(path) or {}
        finally:
            with _held_guard:
                _held[path] -= 1
        return
    if not Path(root).is_dir():       # a lease never creates a lake: only loading a drop does (Lake.writer(create))
        raise FileNotFoundError(errno.ENOENT, "不是数据湖 / not a lake: no such folder", str(root))
    folder.mkdir(exist_ok=True)
    me = {"owner": owner, "pid": os.getpid(), "host": socket.gethostname(), "start": _now()}
    me["heartbeat"] = me["start"]
    t0 = time.monotonic()
    while not _try_create(path, me):
        _break_stale(path, policy.stale_s, log)
        waited = time.monotonic() - t0
        if waited >= policy.wait_s:
            raise LakeBusy(Path(root), read_holder(path) or {}, waited)
        time.sleep(min(0.5, max(policy.wait_s - waited, 0.01)))
    with _held_guard:
        _held[path] = 1
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(path, policy.heartbeat_s, stop), daemon=True)
    beat.start()
    try:
        yield me
    finally:
        stop.set()
        with _held_guard:
            _held.pop(path, None)
        if (read_holder(path) or {}).get("pid") == me["pid"]:
            path.unlink(missing_ok=True)


def holds_lease(owner: str, when=None, creates: bool = False):
    """Decorator: run a step under the writer lease of the Lake it is given (its first Lake argument);
    `when(kwargs)` false runs it without the lease (e.g. a gate that publishes nothing); `creates`: the step
    may create the lake (loading a drop)."""
    def wrap(step):
        @functools.wraps(step)
        def run(*args, **kwargs):
            lake = next((a for a in (*args, *kwargs.values()) if hasattr(a, "writer")), None)
            if lake is None or (when is not None and not when(kwargs)):
                return step(*args, **kwargs)
            with lake.writer(owner, create=creates):
                return step(*args, **kwargs)
        return run
    return wrap
