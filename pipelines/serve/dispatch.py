"""Claims waiting to be checked, and the workers that check them in passes (pipelines.serve.evaluate).

Each worker owns one DuckDB session on the current warm lake. It takes the oldest waiting claim and, with it,
up to `max_pass - 1` more waiting claims of other persons and visits, and checks them in one pass: under load
the passes grow and the rules' fixed cost is shared; a lone claim goes through at once.
"""
from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future

from pipelines.serve.claim import Claim
from pipelines.serve.evaluate import Outcome, RuleProgram, Session
from pipelines.serve.history import WarmHolder


class Dispatcher:
    def __init__(self, holder: WarmHolder, program: RuleProgram, workers: int, max_pass: int):
        self.holder, self.program, self.max_pass = holder, program, max(1, max_pass)
        self._queue: deque[tuple[Claim, Future]] = deque()
        self._cv = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, daemon=True, name=f"serve-worker-{i}")
                         for i in range(max(1, workers))]
        for t in self._threads:
            t.start()

    def submit(self, claims: list[Claim]) -> list[Future]:
        futures = [Future() for _ in claims]
        with self._cv:
            if self._stopping:
                raise RuntimeError("the service is shutting down")
            self._queue.extend(zip(claims, futures))
            self._cv.notify(len(claims))
        return futures

    def _take(self) -> list[tuple[Claim, Future]] | None:
        with self._cv:
            while not self._queue and not self._stopping:
                self._cv.wait()
            if not self._queue:
                return None
            batch, people, visits, rest = [], set(), set(), deque()
            while self._queue and len(batch) < self.max_pass:
                claim, fut = item = self._queue.popleft()
                if claim.psn_no in people or claim.mdtrt_id in visits:
                    rest.append(item)
                    continue
                people.add(claim.psn_no)
                visits.add(claim.mdtrt_id)
                batch.append(item)
            self._queue.extendleft(reversed(rest))
            return batch

    def _work(self) -> None:
        mine: tuple | None = None          # (warm lake, this worker's session on it)
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                warm = self.holder.acquire()
            except RuntimeError as exc:
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            try:
                if mine is None or mine[0] is not warm:
                    mine = (warm, Session(warm, self.program))
                    warm.sessions.append(mine[1])
                outcomes = mine[1].check_many([c for c, _ in batch])
                for o in outcomes:
                    o.warm = warm
            except Exception as exc:       # a failure of the pass: every claim in it gets the error
                outcomes = None
                for _, fut in batch:
                    fut.set_exception(exc)
            finally:
                self.holder.release(warm)
            for (_, fut), outcome in zip(batch, outcomes or ()):
                fut.set_result(outcome)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the claims already waiting, then stop the workers."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=timeout)


__all__ = ["Dispatcher", "Outcome"]
