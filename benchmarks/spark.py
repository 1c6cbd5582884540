"""Spark against DuckDB on one lake, in one run: `screen()` on DuckDB, on Spark local[2], then on a Spark standalone
cluster of 1 and of 2 workers (one core each), all on the partitioned plan with the same memory budget.

    flock /tmp/bench.lock .venv/bin/python benchmarks/spark.py --lake data/s10/lake [--memory 4GB] [--no-local]
        [--workers 1,2] [--worker-memory 3g] [--scratch data/spark-bench]

The lake is not written: its input tables are copied once into `<scratch>/lake` (staging goes there). Prints,
measured in this run: each engine's seconds, the ratio to DuckDB, whether the suspect lists are equal finding
for finding, the peak RSS of this process with its JVM children (sampled with psutil every 0.2 s, and the
children's ru_maxrss), and the cluster's 1 → 2 worker speed-up.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

COMPARED = ["suspect_id", "rule_id", "fixmedins_code", "period", "amount", "evidence"]


class PeakRss:
    """Peak RSS of this process and its descendants (the JVM a Spark session starts), sampled."""

    def __init__(self, every: float = 0.2):
        import psutil

        self.proc, self.every, self.peak, self._stop = psutil.Process(), every, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            for p in [self.proc, *self.proc.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except Exception:  # noqa: BLE001 - a child that ended between listing and reading
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def copy_inputs(source: Path, scratch: Path) -> Path:
    """The source lake's input tables copied under `<scratch>/lake` (once; the source is never written)."""
    from pipelines.screen.pipeline import INPUT_TABLES

    lake = scratch / "lake"
    for table in INPUT_TABLES.values():
        src, dst = source / table, lake / table
        if src.exists() and not dst.exists():
            shutil.copytree(src, dst)
    shutil.rmtree(lake / "staging", ignore_errors=True)
    return lake


def run_screen(lake_dir: Path, engine, memory: int | None, baseline: tuple | None = None) -> tuple[float, float, object]:
    """(seconds, peak GB, suspects) of one `screen()` with nothing committed (write_staging=False), compared with
    `baseline` (DuckDB's figures) when given."""
    from pipelines.catalog import load_catalog
    from pipelines.screen.pipeline import screen
    from pipelines.storage import Lake

    catalog = load_catalog()
    with PeakRss() as rss:
        t0 = time.perf_counter()
        res = screen(Lake(lake_dir), engine, catalog, catalog.select(), run_id=f"bench-{engine.name}",
                     write_staging=False, progress=False, memory=memory)
        secs = time.perf_counter() - t0
    engine.close()
    found = res.suspects.select(COMPARED).sort_by([("suspect_id", "ascending")])
    line = (f"  {engine.name}: {secs:.1f}s, {res.suspects.num_rows:,} suspects, {getattr(res, 'jobs', 1)} batches, "
            f"peak {rss.peak / 2**30:.2f} GB")
    if baseline is not None:       # printed at once: a run stopped later keeps this engine's comparison
        line += f"; {secs / baseline[0]:.1f}× duckdb; same list as duckdb: {'yes' if same(found, baseline[2]) else 'NO'}"
    print(line, flush=True)
    slow = sorted(res.seconds_per_rule.items(), key=lambda kv: -kv[1])[:8]
    print("    slowest rules (s, summed over batches): " + ", ".join(f"{k} {v:.1f}" for k, v in slow), flush=True)
    phases = dict(res.seconds_per_phase)
    if phases:
        phases["other"] = secs - sum(phases.values())
        print("    phases (s): " + ", ".join(f"{k} {v:.1f}" for k, v in phases.items()), flush=True)
    return secs, rss.peak / 2**30, found


def same(found, expected) -> bool:
    return found.num_rows == expected.num_rows and found.cast(expected.schema).equals(expected)


def spark_run(lake_dir: Path, memory: int | None, master: str, baseline: tuple, executor_memory: str | None = None):
    """`screen()` on a fresh Spark session at `master` (stopped afterwards; one JVM serves every session, so the
    driver's memory is the first session's; executors get `executor_memory`, spark.yml's SPARK_EXECUTOR_MEMORY)."""
    from pipelines.screen.engines import SparkEngine, spark_session

    if executor_memory:
        os.environ["SPARK_EXECUTOR_MEMORY"] = executor_memory
    spark = spark_session(master=master)
    try:
        return run_screen(lake_dir, SparkEngine(spark=spark), memory, baseline)
    finally:
        spark.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lake", type=Path, required=True, help="a loaded lake (read only)")
    ap.add_argument("--scratch", type=Path, default=Path("data/spark-bench"))
    ap.add_argument("--memory", default="4GB")
    ap.add_argument("--workers", default="1,2", help="cluster sizes to run (one core each); empty: none")
    ap.add_argument("--worker-memory", default="3g")
    ap.add_argument("--no-local", action="store_true", help="skip Spark local[2] (the cluster runs only)")
    args = ap.parse_args()

    from pipelines.screen.engines import DuckDBEngine
    from pipelines.config import parse_memory

    # a stopped benchmark (SIGTERM) still ends the cluster it started: `standalone_cluster` ends it on exit
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    memory = parse_memory(args.memory)
    lake_dir = copy_inputs(args.lake.resolve(), args.scratch.resolve())
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    print(f"lake {args.lake} (inputs copied to {lake_dir}); memory budget {args.memory}; "
          f"load average at start {os.getloadavg()[0]:.1f} (2 cores, shared machine)", flush=True)
    figures = {"duckdb": run_screen(lake_dir, DuckDBEngine(), memory)}
    if not args.no_local:
        figures["local[2]"] = spark_run(lake_dir, memory, "local[2]", figures["duckdb"])
    sizes = [int(w) for w in args.workers.split(",") if w.strip()]
    if sizes:
        from pipelines.jobs.standalone import standalone_cluster

        for n in sizes:
            folder = args.scratch.resolve() / f"cluster{n}"
            with standalone_cluster(workers=n, folder=folder, cores=1, memory=args.worker_memory) as (master, _):
                figures[f"cluster {n}w"] = spark_run(lake_dir, memory, master, figures["duckdb"],
                                                     args.worker_memory)
            shutil.rmtree(folder, ignore_errors=True)
    duck_secs, _, duck_list = figures["duckdb"]
    print(f"\n{'engine':<14}{'seconds':>9}{'× duckdb':>10}{'peak GB':>9}  same list as duckdb")
    for name, (secs, peak, found) in figures.items():
        print(f"{name:<14}{secs:>9.1f}{secs / duck_secs:>10.1f}{peak:>9.2f}  "
              f"{'yes' if same(found, duck_list) else 'NO'} ({found.num_rows:,} suspects)")
    if "local[2]" in figures:
        print(f"spark local[2] / duckdb = {figures['local[2]'][0] / duck_secs:.1f}× (target ≤ 5×)")
    if "cluster 1w" in figures and "cluster 2w" in figures:
        print(f"cluster speed-up, 1 → 2 workers (1 core each): "
              f"{figures['cluster 1w'][0] / figures['cluster 2w'][0]:.2f}×")
    print(f"ru_maxrss: this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GB, "
          f"largest child (JVM) {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20:.2f} GB; "
          f"load average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
