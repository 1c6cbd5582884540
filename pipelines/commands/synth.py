"""`fundguard synth`: write a sample district drop and its answer key 生成样例数据.

    fundguard synth --out data/landing --scale 1 --seed 7      (scale 1 ≈ 60,000 fee lines, 20 institutions)

The answer key is written beside the drop (`<out>.answer_key.csv`).
Exit codes: 0 written.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, type=Path, help="drop folder to (re)create")
    parser.add_argument("--scale", type=float, default=1.0, help="1 = about 60,000 fee lines, 20 institutions")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--year", type=int, default=2023)


def run(args: argparse.Namespace) -> int:
    from pipelines.synth.generator import generate

    s = generate(args.out, scale=args.scale, seed=args.seed, year=args.year)
    rows = s["rows"]
    print(f"synth: wrote {args.out} ({s['institutions']} institutions, {s['persons']:,} persons, "
          f"{rows.get('fee_list', 0):,} fee lines, {rows.get('mdtrt', 0):,} visits) in {s['seconds']} s")
    fams = s["key_rows_per_family"]
    print(f"answer key: {s['answer_key']} ({sum(fams.values()):,} rows, {sum(1 for v in fams.values() if v)} families)")
    print("  " + ", ".join(f"{k} {v}" for k, v in fams.items()))
    return 0
