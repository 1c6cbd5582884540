"""District-year scale on DuckDB: a drop of ≥ 40 M fee lines built, ingested and screened with the commands
users run, each in its own process, timed end to end and with its peak RSS read from the process (wait4).

    .venv/bin/python benchmarks/scale.py [--scale 680] [--data data/scale] [--memory 4GB]
                                         [--compare-whole] [--incremental]

Prints, measured in this run: lines/s of `fundguard ingest` and `fundguard screen` (commands end to end) and of
the screening's inner loop (`screen()` as the command timed it, without imports, MLflow and the summary), peak
RSS of each, the ratio of the screening to one DuckDB scan-and-aggregate of the same netted fee lines, and the
suspect count. Scale 1 ≈ 59,000 fee lines (scale 170 ≈ 10 M, scale 680 ≈ 40 M). Check `df -h` first: scale
680 needs ~15 GB.

`--compare-whole` also screens the whole lake at once (no budget; ~1 GB of RSS per million fee lines) and
checks that the batched run's list is the same, finding for finding. `--incremental` publishes the batched
list, builds a second, monthly drop (late refunds of lines of a few institutions, with their settlements
re-sent), runs `fundguard run --incremental` on it, then a full `fundguard screen` of the same lake, and checks
that the published list equals the full re-screen; it prints both times.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COMPARED = ["suspect_id", "rule_id", "fixmedins_code", "period", "psn_no", "feedetl_sn", "amount", "evidence"]


def run_child(args: list[str], label: str) -> tuple[float, str]:
    """Run a child process to its end; (wall seconds, stdout). A failure stops the benchmark, saying why."""
    t0 = time.perf_counter()
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise SystemExit(f"{label} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0, proc.stdout


def timed_command(cmd: list[str], label: str) -> tuple[float, float, str]:
    """A command in a child process; (wall seconds, peak RSS in GB as the kernel reported it to GNU time
    (`%M`, the child's ru_maxrss), stdout)."""
    stamp = Path(f"/tmp/fundguard-bench-{os.getpid()}-{label}.time")
    wall, out = run_child(["/usr/bin/time", "-f", "%M", "-o", str(stamp), *cmd], label)
    rss = int(stamp.read_text().strip().splitlines()[-1]) / 2**20
    stamp.unlink(missing_ok=True)
    return wall, rss, out


def fundguard(*args: str) -> list[str]:
    return [sys.executable, "-m", "pipelines.cli", *args]


def screen_figures(out: str) -> tuple[float, int, int]:
    """(screen() seconds, batches, suspects) from `fundguard screen`'s output."""
    inner = re.search(r"screen\(\) ([\d.]+)s, (\d+) 批", out)
    suspects = re.search(r"疑点 suspects: (\d+)", out)
    if not inner or not suspects:
        raise SystemExit(f"unexpected `fundguard screen` output:\n{out[-2000:]}")
    return float(inner.group(1)), int(inner.group(2)), int(suspects.group(1))


def scan_aggregate(lake_dir: Path) -> tuple[float, int]:
    """One DuckDB scan-and-aggregate of the netted fee lines (the floor any screening pays)."""
    import duckdb

    from pipelines.storage import Lake, native_select

    snap = Lake(lake_dir).native_files("silver/fee_list_net")
    con = duckdb.connect()
    t0 = time.perf_counter()
    cols = ["fixmedins_code", "hilist_code", "det_item_fee_sumamt"]
    rows = con.sql(f"SELECT count(*), sum(n) FROM (SELECT fixmedins_code, hilist_code, count(*) AS n, "
                   f"sum(det_item_fee_sumamt) AS amt FROM ({native_select(snap, columns=cols)}) GROUP BY ALL)").fetchall()
    return time.perf_counter() - t0, int(rows[0][1])


def compare_whole(lake_dir: Path) -> tuple[float, float, bool, int]:
    """Child: the whole lake screened at once (no budget, nothing written); compared with staging/suspects.
    (seconds, peak GB, equal, suspects)."""
    stamp = Path(f"/tmp/fundguard-bench-{os.getpid()}-whole.time")
    wall, out = run_child(["/usr/bin/time", "-f", "%M", "-o", str(stamp), sys.executable, __file__,
                           "--whole-child", str(lake_dir)], "whole")
    rss = int(stamp.read_text().strip().splitlines()[-1]) / 2**20
    equal, n, secs = out.strip().splitlines()[-1].split()
    return float(secs), rss, equal == "equal", int(n)


def whole_child(lake_dir: str) -> None:
    from pipelines.catalog import load_catalog
    from pipelines.screen.engines import DuckDBEngine
    from pipelines.screen.pipeline import STAGING, screen
    from pipelines.storage import Lake

    lake, catalog = Lake(lake_dir), load_catalog()
    t0 = time.perf_counter()
    whole = screen(lake, DuckDBEngine(), catalog, catalog.select(), run_id="bench-whole", write_staging=False,
                   progress=False).suspects
    secs = time.perf_counter() - t0
    key = [("suspect_id", "ascending")]
    batched = lake.read(STAGING).select(COMPARED).cast(whole.select(COMPARED).schema).sort_by(key)
    equal = batched.equals(whole.select(COMPARED).sort_by(key))
    print("equal" if equal else "DIFFERENT", whole.num_rows, f"{secs:.2f}")


def monthly_drop(landing: Path, lake_dir: Path, out: Path, institutions: int = 10, per_institution: int = 100,
                 skip: set[str] = frozenset()) -> int:
    """A drop as a bureau receives it a month later: late refunds (whole lines, with `init_feedetl_sn`) of
    `per_institution` lines of each of `institutions` institutions (none of `skip`, refunded by an earlier
    drop), and their settlements re-sent with the totals the refunds leave. Returns the refunded lines."""
    from pipelines import contract
    from pipelines.storage import Lake

    picked: dict[str, list[dict]] = {}
    header = None
    with next(iter(sorted(landing.glob("fee_list_part*.csv")))).open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames
        for r in reader:
            if r["fixmedins_code"] in skip:
                continue
            lines = picked.setdefault(r["fixmedins_code"], []) if (r["fixmedins_code"] in picked
                                                                    or len(picked) < institutions) else None
            if lines is not None and len(lines) < per_institution and not r["init_feedetl_sn"] \
                    and not r["cnt"].startswith("-"):
                lines.append(r)
            if len(picked) == institutions and all(len(v) == per_institution for v in picked.values()):
                break
    out.mkdir(parents=True)
    delta: dict[str, float] = {}
    with (out / "fee_list_part99.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        for n, r in enumerate(x for v in picked.values() for x in v):
            neg = {k: ("-" + r[k] if r[k] and k in ("cnt", "det_item_fee_sumamt", "inscp_scp_amt") else r[k])
                   for k in header}
            w.writerow(dict(neg, feedetl_sn=f"98{n:010d}", fulamt_ownpay_amt="0.00", init_feedetl_sn=r["feedetl_sn"]))
            delta[r["setl_id"]] = delta.get(r["setl_id"], 0.0) - float(r["det_item_fee_sumamt"])
    # a settlement's other amounts (the contract's money fields of setl) are scaled with its total
    amounts = [f.name for f in contract.ENTITIES["setl"].fields if f.type == "money" and f.name != "medfee_sumamt"]
    totals = {r["setl_id"]: r["medfee_sumamt"] for r in Lake(lake_dir).read(
        "silver/setl", columns=["setl_id", "medfee_sumamt"]).to_pylist() if r["setl_id"] in delta}
    with (landing / "setl.csv").open(encoding="utf-8") as fh, (out / "setl.csv").open("w", encoding="utf-8",
                                                                                      newline="") as oh:
        reader = csv.DictReader(fh)
        w = csv.DictWriter(oh, fieldnames=reader.fieldnames)
        w.writeheader()
        for r in reader:
            if r["setl_id"] in delta:
                old = float(totals[r["setl_id"]])
                new = old + delta[r["setl_id"]]
                # the settlement's other amounts shrink with its total (a self-paid amount above the new
                # total would be an inconsistent settlement, which the gate rightly refuses to publish)
                parts = {k: f"{float(r[k]) * new / old:.2f}" for k in amounts
                         if k in r and r[k] not in ("", None) and old}
                w.writerow(dict(r, **parts, medfee_sumamt=f"{new:.2f}"))
    return sum(len(v) for v in picked.values())


def gold_equals_staging(lake_dir: Path) -> bool:
    from pipelines.contract import GOLD_SUSPECTS, STAGING_SUSPECTS
    from pipelines.storage import Lake

    lake, key = Lake(lake_dir), [("suspect_id", "ascending")]
    gold = lake.read(GOLD_SUSPECTS).select(COMPARED).sort_by(key)
    return gold.equals(lake.read(STAGING_SUSPECTS).select(COMPARED).cast(gold.schema).sort_by(key))


def incremental(landing: Path, lake: Path, memory: str) -> dict:
    """Publish, load a monthly drop incrementally, then a full re-screen: figures and the equality check."""
    run_child(fundguard("publish", "--lake", str(lake)), "publish")
    earlier = sorted(lake.parent.glob("drop-month*"))
    skip = {r["fixmedins_code"] for d in earlier for r in csv.DictReader(
        (d / "fee_list_part99.csv").open(encoding="utf-8"))}
    drop2 = lake.parent / f"drop-month{len(earlier) + 2}"
    refunds = monthly_drop(landing, lake, drop2, skip=skip)
    try:
        inc = timed_command(fundguard("run", "--landing", str(drop2), "--lake", str(lake), "--incremental",
                                      "--memory", memory, "--quiet"), "incremental")
    except SystemExit as exc:          # the figures measured so far are still printed, with the failure
        return {"refunds": refunds, "error": str(exc)}
    full = timed_command(fundguard("screen", "--lake", str(lake), "--memory", memory, "--quiet"), "full")
    scope = re.search(r"增量 incremental: [^)]*\)", inc[2])
    return {"refunds": refunds, "inc": inc, "full": full, "scope": scope.group(0) if scope else "FULL RUN",
            "equal": gold_equals_staging(lake)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=680.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", type=Path, default=Path("data/scale"))
    ap.add_argument("--memory", default="4GB")
    ap.add_argument("--compare-whole", action="store_true", help="also screen the whole lake at once and compare")
    ap.add_argument("--incremental", action="store_true", help="then a monthly drop, incremental vs full")
    ap.add_argument("--whole-child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.whole_child:
        whole_child(args.whole_child)
        return 0
    landing, lake = args.data / "landing", args.data / "lake"
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores, shared machine)", flush=True)
    if not landing.exists():
        wall, rss, out = timed_command(fundguard("synth", "--out", str(landing), "--scale", str(args.scale), "--seed",
                                                 str(args.seed)), "synth")
        print(f"synth {wall:.0f}s peak {rss:.2f} GB: {out.strip().splitlines()[0]}", flush=True)
    figures = {}
    if not (lake / "silver" / "fee_list_net").exists():
        figures["ingest"] = timed_command(fundguard("ingest", "--landing", str(landing), "--lake", str(lake)), "ingest")
        print(f"ingest {figures['ingest'][0]:.0f}s", flush=True)
    scan_secs, fee_lines = scan_aggregate(lake)
    figures["screen"] = timed_command(fundguard("screen", "--lake", str(lake), "--memory", args.memory, "--quiet"),
                                      "screen")
    inner, batches, suspects = screen_figures(figures["screen"][2])
    print(f"screen {figures['screen'][0]:.0f}s", flush=True)
    whole = compare_whole(lake) if args.compare_whole else None
    inc = incremental(landing, lake, args.memory) if args.incremental else None
    print(f"\nnetted fee lines: {fee_lines:,}; memory budget {args.memory}; load average now {os.getloadavg()[0]:.1f}")
    print(f"{'what':<38}{'seconds':>9}{'lines/s':>13}{'peak RSS':>11}")
    if "ingest" in figures:
        w, r, _ = figures["ingest"]
        print(f"{'fundguard ingest (command)':<38}{w:>9.1f}{fee_lines / w:>13,.0f}{r:>9.2f}GB   (target ≤ 4 GB)")
    w, r, _ = figures["screen"]
    print(f"{'fundguard screen --memory (command)':<38}{w:>9.1f}{fee_lines / w:>13,.0f}{r:>9.2f}GB   (target ≤ 6 GB)")
    print(f"{'  of which screen() (inner loop)':<38}{inner:>9.1f}{fee_lines / inner:>13,.0f}{'':>11}   {batches} batches")
    print(f"{'one DuckDB scan-and-aggregate':<38}{scan_secs:>9.2f}{fee_lines / scan_secs:>13,.0f}")
    print(f"screen() / scan-and-aggregate = {inner / scan_secs:.1f}×; command / screen() = {w / inner:.1f}×; "
          f"suspects: {suspects:,}")
    if whole:
        secs, rss, equal, n = whole
        print(f"{'whole lake at once, screen()':<38}{secs:>9.1f}{fee_lines / secs:>13,.0f}{rss:>9.2f}GB   "
              f"{n:,} suspects; batched list {'IDENTICAL' if equal else 'DIFFERENT'}")
    if inc and "error" in inc:
        print(f"monthly drop: {inc['refunds']} late refunds; `fundguard run --incremental` FAILED "
              f"(exit 137 is the kernel's out-of-memory kill):\n{inc['error'][-1500:]}")
        return 1
    if inc:
        (iw, ir, _), (fw, fr, fout) = inc["inc"], inc["full"]
        print(f"monthly drop: {inc['refunds']} late refunds; {inc['scope']}")
        print(f"{'fundguard run --incremental (command)':<38}{iw:>9.1f}{'':>13}{ir:>9.2f}GB   load + screen + gate + publish")
        print(f"{'fundguard screen, full re-screen':<38}{fw:>9.1f}{fee_lines / fw:>13,.0f}{fr:>9.2f}GB   "
              f"screen() {screen_figures(fout)[0]:.1f}s")
        print(f"incremental / full = {iw / fw:.2f}×; published list equals the full re-screen: "
              f"{'YES' if inc['equal'] else 'NO'}")
    return 0 if (not whole or whole[2]) and (not inc or inc["equal"]) else 1


if __name__ == "__main__":
    sys.exit(main())
