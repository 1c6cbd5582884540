"""Claims waiting to be checked, and the workers that check them in passes (pipelines.serve.evaluate).

Each worker owns one DuckDB session on the current warm lake. It takes the oldest waiting claim and, with it,
up to `max_pass - 1` more waiting claims of other persons and visits, and checks them in one pass: under load
the passes grow and the rules' fixed cost is shared; a lone claim goes through at once.

A claim is checked at settlement time, while a cashier waits: one that waited more than `max_wait` seconds
for a pass is not checked but answered `Overloaded` (the caller settles now and retries, or leaves the claim
to the after-the-fact screening), so that when more claims come than the service can check, the waiting time
stays bounded instead of growing with the queue. A claim whose caller gave up (its future cancelled) is
skipped. A claim held back because a claim of its person is in the pass (one pass checks a person once) starts
its wait again: it waits for its person, not for capacity. A pass that fails is re-run claim by claim, so a
claim that cannot be checked fails alone.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future

from pipelines.serve.claim import Claim
from pipelines.serve.evaluate import RuleProgram, Session
from pipelines.serve.passes import Outcome
from pipelines.serve.history import WarmHolder
from pipelines.serve.lite import LiteSession

#: what runs a pass, by `serve.engine` (decision 42: SQLite keeps its statements' plans, DuckDB 2.0 does not)
ENGINES = {"sqlite": LiteSession, "duckdb": Session}


def session_class(engine: str):
    if engine not in ENGINES:
        raise ValueError(f"serve.engine: {engine!r} is not one of {', '.join(ENGINES)}")
    return ENGINES[engine]


class Overloaded(RuntimeError):
    """A claim not checked in time: it waited too long for a pass (answered 503 with Retry-After)."""


class Dispatcher:
    def __init__(self, holder: WarmHolder, program: RuleProgram, workers: int, max_pass: int,
                 max_wait: float | None = None, engine: str = "sqlite"):
        self.holder, self.program, self.max_pass = holder, program, max(1, max_pass)
        self.session = session_class(engine)
        self.max_wait = max_wait if max_wait and max_wait > 0 else None
        self._queue: deque[tuple[Claim, Future, float]] = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"serve-worker-{i}")
                         for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def submit(self, claims: list[Claim], since: float | None = None) -> list[Future]:
        """Queue `claims` for a pass; `since` (time.monotonic()) is when their request arrived, so that time
        spent before the queue (the HTTP server's own) counts towards `max_wait` too. A request that has
        already waited that long is refused at once."""
        now = time.monotonic()
        since = now if since is None else since
        if self.max_wait and now - since > self.max_wait:
            raise self._overloaded()
        futures = [Future() for _ in claims]
        with self._cv:
            if self._stopping:
                raise RuntimeError("the service is shutting down")
            self._queue.extend((c, f, since) for c, f in zip(claims, futures))
            self._cv.notify(len(claims))
        return futures

    def _take(self) -> list[tuple[Claim, Future]] | None:
        with self._cv:
            while not self._queue and not self._stopping:
                self._cv.wait()
            if not self._queue:
                return None
            batch, people, visits, rest = [], set(), set(), deque()
            late = time.monotonic() - self.max_wait if self.max_wait else None
            while self._queue and len(batch) < self.max_pass:
                claim, fut, since = item = self._queue.popleft()
                if fut.cancelled():
                    continue
                if late is not None and since < late:
                    if fut.set_running_or_notify_cancel():
                        fut.set_exception(self._overloaded())
                    continue
                if claim.psn_no in people or claim.mdtrt_id in visits:
                    # it waits for its own person's claim, not for capacity: its wait starts again
                    rest.append((claim, fut, time.monotonic()))
                    continue
                if not fut.set_running_or_notify_cancel():
                    continue
                people.add(claim.psn_no)
                visits.add(claim.mdtrt_id)
                batch.append(item[:2])
            self._queue.extendleft(reversed(rest))
            return batch

    def _overloaded(self) -> Overloaded:
        return Overloaded(f"not checked: waited over {self.max_wait:g} s for a pass; retry later "
                          f"/ 系统繁忙，等待超过 {self.max_wait:g} 秒，请稍后重试")

    def _work(self) -> None:
        mine: tuple | None = None          # (warm lake, this worker's session on it)
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            try:
                warm = self.holder.acquire()
            except RuntimeError as exc:
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            try:
                if mine is None or mine[0] is not warm:
                    mine = (warm, self._session(warm))
            except Exception as exc:       # no session on this lake: every claim taken gets the error
                mine = None
                for _, fut in batch:
                    fut.set_exception(exc)
            else:
                self._check(mine[1], warm, batch)
            finally:
                self.holder.release(warm)

    def _session(self, warm):
        """A session on `warm`: one made with its load, else a new one."""
        try:
            return warm.spare.pop()
        except IndexError:
            session = self.session(warm, self.program)
            warm.sessions.append(session)
            return session

    @staticmethod
    def _check(session: Session, warm, batch: list[tuple[Claim, Future]]) -> None:
        """One pass; when it fails, each of its claims alone, so that a claim the pass cannot check fails
        only itself, not the other callers' claims that shared its pass."""
        try:
            outcomes = session.check_many([c for c, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:
                Dispatcher._check(session, warm, [one])
            return
        for (_, fut), outcome in zip(batch, outcomes):
            outcome.warm, outcome.pass_claims = warm, len(batch)
            fut.set_result(outcome)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the claims already waiting, then stop the workers."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=timeout)


__all__ = ["Dispatcher", "Outcome", "Overloaded"]
