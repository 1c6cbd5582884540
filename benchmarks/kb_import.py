"""Importing the national knowledge base at its published sizes: all 18 batches (26 files, ~3,600 knowledge points,
~21,000 code rows), generated in the published shapes (pipelines/synth/kb_batches.py), then imported as one
release into a fresh lake with `import_release` (what `fundguard kb import` runs). Prints the time of each step,
the points/code rows per second and the peak RSS read from the process.

    python -m benchmarks.kb_import [--csv] [--keep DIR]

Target of issue #15: the import in under 30 s on this machine.
"""
from __future__ import annotations

import argparse
import datetime as dt
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", action="store_true", help="the same sheets saved as CSV instead of .xlsx")
    ap.add_argument("--keep", type=Path, default=None, help="write the batch files and the lake here and keep them")
    args = ap.parse_args(argv)
    from pipelines.kb.pipeline import import_release
    from pipelines.storage import Lake
    from pipelines.synth.kb_batches import write_batches

    root = args.keep or Path(tempfile.mkdtemp(prefix="fundguard-kb-bench-"))
    try:
        t0 = time.perf_counter()
        expected = write_batches(root / "src", scale=1.0, as_csv=args.csv)
        t1 = time.perf_counter()
        res = import_release(root / "src", Lake(root / "lake"), effective=dt.date(2025, 7, 1))
        t2 = time.perf_counter()
        rec = res.reconciliation
        points, codes = rec.total("points_read"), rec.total("code_rows_read")
        exact = all((f.points_read, f.code_rows_read) == (e.points_read, e.code_rows_read)
                    for f, e in zip(sorted(rec.files, key=lambda f: f.file), sorted(expected, key=lambda e: e.file)))
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"files {len(rec.files)} ({'csv' if args.csv else 'xlsx'}), points {points:,}, code rows {codes:,}, "
              f"mapped {rec.total('points_mapped'):,}, needs curation {rec.total('points_curation'):,}, "
              f"reconciliation exact: {exact}")
        print(f"generate {t1 - t0:.1f} s; import (read, recognise, map, write release) {t2 - t1:.1f} s "
              f"= {codes / (t2 - t1):,.0f} code rows/s; release {res.release_id} written: {res.written}")
        print(f"peak RSS of this process: {peak:,.0f} MB; target: import < 30 s")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
