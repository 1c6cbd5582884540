"""Where a claim-time pass spends its time: single-claim passes of `pipelines.serve.evaluate.Session` over a
lake, every DuckDB statement timed and grouped (typing, netting, look-ups, filling, each rule).

    .venv/bin/python benchmarks/serve_profile.py --lake DIR [--claims 60] [--pass-size 1] [--top 20]

Runs in-process, without HTTP. Prints ms per pass by stage and the most expensive statements, with the load
average (the figures are of this run only).
"""
from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.app.serve import claim_service  # noqa: E402
from pipelines.serve import evaluate  # noqa: E402
from pipelines.serve.passes import CLAIM_PARTS  # noqa: E402
from pipelines.serve.claim import build_claim, claim_model  # noqa: E402
from pipelines.serve.replay import lake_claims  # noqa: E402
from pipelines.serve.service import Settings  # noqa: E402
from pipelines.storage import Lake  # noqa: E402


class TracingCursor:
    """A DuckDB cursor whose statements are timed under a label (`rule <id>`, `type fee_list`, ...)."""

    def __init__(self, cur, labels: dict[str, str], times: dict[str, float], counts: dict[str, int]):
        self._cur, self._labels, self.times, self.counts = cur, labels, times, counts

    def _label(self, sql: str) -> str:
        m = re.match(r'\s*EXECUTE\s+"?(\w+)"?', sql)
        if m:
            return self._labels.get(m.group(1), m.group(1))
        words = re.sub(r'\s+', ' ', sql.strip()).split(' ')
        target = next((w.strip('"') for w in words[1:4] if w.strip('"').isidentifier() and w.upper() not in
                       ("INTO", "FROM", "TEMP", "TABLE", "OR", "REPLACE", "BY", "NAME", "SELECT")), "")
        return f"{words[0].lower()} {target}".strip()

    def _timed(self, label: str, fn, *a):
        t = time.perf_counter()
        try:
            return fn(*a)
        finally:
            self.times[label] += time.perf_counter() - t
            self.counts[label] += 1

    def execute(self, sql, *params):
        rel = self._timed(self._label(sql), self._cur.execute, sql, *params)
        return rel

    def sql(self, sql):
        label = self._label(sql)
        cur = self._cur

        class Lazy:       # the statement runs when its result is fetched
            def to_arrow_table(inner):
                return self._timed(label, lambda: cur.sql(sql).to_arrow_table())
        return Lazy()

    def __getattr__(self, name):
        return getattr(self._cur, name)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", required=True)
    ap.add_argument("--claims", type=int, default=60)
    ap.add_argument("--pass-size", type=int, default=1, help="claims (of different persons) per pass")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    lake = Lake(Path(args.lake))
    t0 = time.perf_counter()
    svc = claim_service(lake, Settings(token="profile", refresh_seconds=0, background_load=False, workers=1))
    svc.start()
    print(f"lake loaded in {time.perf_counter() - t0:.1f}s: {svc.holder.current.rows}")
    ids = lake.read("silver/mdtrt", columns=["mdtrt_id"]).column("mdtrt_id").to_pylist()
    random.Random(args.seed).shuffle(ids)
    model = claim_model(5000)
    claims = [build_claim(model.model_validate(b)) for b in lake_claims(lake, visits=ids[:args.claims])
              if b["fee_list"]]
    passes, people = [], set()
    for c in claims:            # passes of different persons
        if not passes or len(passes[-1]) >= args.pass_size or c.psn_no in people:
            passes.append([])
            people = set()
        passes[-1].append(c)
        people.add(c.psn_no)
    session = evaluate.Session(svc.holder.current, svc.program)
    labels = {f"r{i}": f"rule {r.rule_id}" for i, r in enumerate(svc.program.rules)}
    labels |= {f"t_{e}": f"type {e}" for e in CLAIM_PARTS} | {"n_fee": "net fee_list"}
    times, counts = defaultdict(float), defaultdict(int)
    for p in passes[:3]:        # warm-up
        session.check_many(p)
    session.cur = TracingCursor(session.cur, labels, times, counts)
    load0 = os.getloadavg()[0]
    t = time.perf_counter()
    for p in passes[3:]:
        session.check_many(p)
    wall = time.perf_counter() - t
    n = len(passes) - 3
    svc.stop()
    stages = defaultdict(float)
    for label, v in times.items():
        stages[label.split(" ")[0]] += v
    print(f"{n} passes of up to {args.pass_size} claim(s): {wall / n * 1000:.1f} ms/pass "
          f"(DuckDB statements {sum(times.values()) / n * 1000:.1f} ms, {sum(counts.values()) / n:.0f} statements "
          f"per pass); load average {load0:.2f} → {os.getloadavg()[0]:.2f}")
    for s, v in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  {s:10s} {v / n * 1000:8.2f} ms/pass")
    print("most expensive statements (ms/pass, runs/pass):")
    for label, v in sorted(times.items(), key=lambda kv: -kv[1])[:args.top]:
        print(f"  {label:45s} {v / n * 1000:7.2f}  {counts[label] / n:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
