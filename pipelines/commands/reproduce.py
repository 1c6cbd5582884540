"""`fundguard reproduce`: re-run a published screening or an analyze run from its recorded inputs and compare.

    fundguard reproduce --run-id 0f3a… --lake data/lake

A screening run: re-screened, the suspect ids, amounts and evidence compared with gold/suspects. An analyze
run (`fundguard analyze`, or the screening DAG's `analyze_period`): re-analysed from the recorded input
versions, the gold/institution_risk rows compared (peer group, score, rank, drivers).
Exit codes: 0 identical; 1 they differ; 2 not reproducible (the run was never published, its inputs were
vacuumed, or the rules changed since).
"""
from __future__ import annotations

import argparse
import sys

from pipelines import config
from pipelines.commands._common import lake_of


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run-id", required=True, help="the run to reproduce (gold/suspects.run_id)")
    parser.add_argument("--lake", help="lake root (default: conf `lake`)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), help="engine (default: conf `engine`)")


def run(args) -> int:
    from pipelines.app.reproduce import NotReproducible, reproduce
    from pipelines.screen.engines import make_engine

    from pipelines.app.reproduce_analysis import analyze_run_params

    conf = config.load()
    lake = lake_of(args, conf)
    params = analyze_run_params(lake, args.run_id, conf)
    if params is not None:
        return _analysis(lake, args.run_id, params)
    try:
        res = reproduce(lake, args.run_id, engine=make_engine(args.engine or conf.get("engine", "duckdb")))
    except NotReproducible as exc:
        print(f"无法复现 cannot reproduce: {exc}", file=sys.stderr)
        return 2
    print(f"运行 run {res.run_id}: gold/suspects version {res.gold_version}, fingerprint {res.fingerprint}")
    print(f"  已发布 published {res.published.num_rows} suspects, 复现 re-screened {res.rescreened.num_rows}")
    if res.equal:
        print("  一致 identical: same suspect ids, amounts and evidence")
        return 0
    for sid in res.missing[:20]:
        print(f"  - 已发布但未复现 published, not found again: {sid}")
    for sid in res.extra[:20]:
        print(f"  + 复现多出 found again, not published: {sid}")
    for sid, col, a, b in res.changed[:20]:
        print(f"  ~ {sid} {col}: published {a!r}, now {b!r}")
    print(f"  不一致 differs: {len(res.missing)} missing, {len(res.extra)} extra, {len(res.changed)} changed")
    return 1


def _analysis(lake, run_id: str, params: dict) -> int:
    from pipelines.app.reproduce import NotReproducible
    from pipelines.app.reproduce_analysis import reproduce_analysis

    try:
        res = reproduce_analysis(lake, run_id, params)
    except NotReproducible as exc:
        print(f"无法复现 cannot reproduce: {exc}", file=sys.stderr)
        return 2
    print(f"分析运行 analyze run {res.run_id}: period {res.period or 'all'}, gold/institution_risk version "
          f"{res.risk_version}, inputs {res.input_versions}")
    print(f"  已写入 written {len(res.recorded)} risk rows, 复现 recomputed {len(res.recomputed)}")
    if res.equal:
        print("  一致 identical: same institutions, peer groups, scores, ranks and drivers")
        return 0
    for k in res.missing[:20]:
        print(f"  - 已写入但未复现 written, not recomputed: {k}")
    for k in res.extra[:20]:
        print(f"  + 复现多出 recomputed, not written: {k}")
    for code, period, col, a, b in res.changed[:20]:
        print(f"  ~ {code} {period} {col}: written {a!r}, now {b!r}")
    print(f"  不一致 differs: {len(res.missing)} missing, {len(res.extra)} extra, {len(res.changed)} changed")
    return 1
