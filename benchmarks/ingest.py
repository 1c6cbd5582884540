"""Ingestion benchmark: fee lines per second and peak memory on a drop of ≥ 10 million fee lines.

    python benchmarks/ingest.py [--rows 10000000] [--data data/bench/ingest] [--fresh]

The drop (canonical CSVs: fee_list in parts, plus matching mdtrt/psn/fixmedins) is written once with
numpy/pyarrow and reused. The load runs in a child process so that its peak RSS (ru_maxrss of the
child, which includes DuckDB and delta-rs threads) is measured alone. Target (issue "Ingestion that
loses nothing"): ≥ 200,000 fee lines/s with peak memory < 4 GB on a 2-core machine.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CHUNK = 1_000_000
LINES_PER_VISIT = 20
PARTS = 4


def _s(prefix: str, ints: np.ndarray, width: int = 0) -> pa.Array:
    a = pc.cast(pa.array(ints, pa.int64()), pa.string())
    if width:
        a = pc.utf8_lpad(a, width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), a, "")


def _money(cents: np.ndarray) -> pa.Array:
    frac = pc.utf8_lpad(pc.cast(pa.array(np.abs(cents) % 100), pa.string()), width=2, padding="0")
    sign = pa.array(np.where(cents < 0, "-", ""))
    whole = pc.cast(pa.array(np.abs(cents) // 100), pa.string())
    return pc.binary_join_element_wise(sign, whole, ".", frac, "")


def _write_visits(out: Path, rng: np.random.Generator, institutions: int, persons: int, v_inst: np.ndarray,
                  v_psn: np.ndarray, v_begin: np.ndarray) -> None:
    """fixmedins.csv, psn.csv and mdtrt.csv of the drop (one mdtrt row per visit)."""
    visits = len(v_inst)
    fix = pa.table({"fixmedins_code": _s("H", np.arange(institutions), 5),
                    "fixmedins_name": _s("医院", np.arange(institutions)),
                    "hosp_lv": pa.array(rng.choice(["01", "02", "05", "08", "11"], institutions)),
                    "admdvs": pa.array(["110101"] * institutions)})
    pacsv.write_csv(fix, out / "fixmedins.csv")
    psn = pa.table({"psn_no": _s("P", np.arange(persons), 9), "psn_name": _s("姓名", np.arange(persons)),
                    "certno": _s("1101011980", np.arange(persons), 8),
                    "gend": pa.array(rng.choice(["1", "2"], persons)),
                    "brdy": pc.strftime(pa.array(np.datetime64("1940-01-01") + rng.integers(0, 25000, persons)
                                                 .astype("timedelta64[D]")), format="%Y-%m-%d")})
    pacsv.write_csv(psn, out / "psn.csv")
    mdtrt = pa.table({"mdtrt_id": _s("M", np.arange(visits), 10), "psn_no": _s("P", v_psn, 9),
                      "fixmedins_code": _s("H", v_inst, 5), "med_type": pa.array(rng.choice(["11", "21"], visits)),
                      "begntime": pc.strftime(pa.array(v_begin), format="%Y-%m-%d %H:%M:%S")})
    pacsv.write_csv(mdtrt, out / "mdtrt.csv")


def _fee_lines(idx: np.ndarray, rng: np.random.Generator, items: np.ndarray, v_inst: np.ndarray,
               v_psn: np.ndarray, v_begin: np.ndarray) -> pa.Table:
    """fee_list rows of line numbers `idx` (consecutive): ~1 % refunds, each naming the line before it
    (same item and visit)."""
    n = len(idx)
    visit = idx // LINES_PER_VISIT
    cnt = rng.integers(1, 5, n)
    price = rng.integers(100, 50000, n)
    refund = (idx % 97 == 96) & (idx % LINES_PER_VISIT != 0)
    cnt = np.where(refund, -1, cnt)
    amount = cnt * price
    t = v_begin[visit] + (idx % LINES_PER_VISIT * 3600).astype("timedelta64[s]")
    init = np.where(refund, idx - 1, -1)
    init_s = pc.if_else(pa.array(refund), _s("F", init, 10), pa.scalar(""))
    table = pa.table({
        "feedetl_sn": _s("F", idx, 10), "mdtrt_id": _s("M", visit, 10), "setl_id": _s("S", visit, 10),
        "psn_no": _s("P", v_psn[visit], 9), "fixmedins_code": _s("H", v_inst[visit], 5),
        "fee_ocur_time": pc.strftime(pa.array(t), format="%Y-%m-%d %H:%M:%S"),
        "hilist_code": pa.array(items[rng.integers(0, len(items), n)]),
        "med_chrgitm_type": pa.array(rng.choice(["01", "02", "04", "09"], n)),
        "chrgitm_lv": pa.array(rng.choice(["01", "02", "03"], n)),
        "cnt": pc.cast(pa.array(cnt), pa.string()), "pric": _money(price),
        "det_item_fee_sumamt": _money(amount), "inscp_scp_amt": _money(amount),
        "fulamt_ownpay_amt": pa.array(["0"] * n), "bilg_dept_codg": _s("D", visit % 30, 3),
        "bilg_dr_codg": _s("DR", visit % 500, 4), "init_feedetl_sn": init_s,
    })
    if refund.any():
        local = np.arange(n)
        prev = pc.take(table.column("hilist_code"), pa.array(np.where(refund, np.maximum(local - 1, 0), local)))
        table = table.set_column(table.schema.get_field_index("hilist_code"), "hilist_code", prev)
    return table


def generate(out: Path, rows: int, institutions: int = 200, seed: int = 7) -> None:
    """Canonical drop: fee_list_part{1..4}.csv with `rows` lines, plus mdtrt, psn, fixmedins."""
    from pipelines import contract
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    visits = rows // LINES_PER_VISIT + 1
    persons = max(1, visits // 4)
    start = np.datetime64("2022-01-01T00:00:00", "s")
    v_inst = rng.integers(0, institutions, visits)
    v_psn = rng.integers(0, persons, visits)
    v_begin = start + rng.integers(0, 365 * 86400, visits).astype("timedelta64[s]")
    _write_visits(out, rng, institutions, persons, v_inst, v_psn, v_begin)

    items = np.array([f"XA{i:05d}" for i in range(2000)])
    per_part = -(-rows // PARTS)
    written = 0
    for part in range(PARTS):
        writer = None
        end = min(rows, written + per_part)
        while written < end:
            n = min(CHUNK, end - written)
            table = _fee_lines(np.arange(written, written + n), rng, items, v_inst, v_psn, v_begin)
            assert set(table.column_names) <= set(contract.ENTITIES["fee_list"].names)
            if writer is None:
                writer = pacsv.CSVWriter(out / f"fee_list_part{part + 1}.csv", table.schema)
            writer.write_table(table)
            written += n
        if writer is not None:
            writer.close()
    (out / ".complete").write_text(json.dumps({"rows": rows, "institutions": institutions}))


def _ingest_child(drop: Path, lake: Path, batch_rows: int) -> None:
    from pipelines.ingest import ingest_drop
    from pipelines.storage import Lake
    t0 = time.perf_counter()
    rep = ingest_drop(drop, Lake(lake), salt="bench", batch_rows=batch_rows, progress=False)
    elapsed = time.perf_counter() - t0
    fee = sum(f.rows_read for f in rep.files if f.entity == "fee_list")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"elapsed": elapsed, "fee_lines": fee, "rows_read": rep.rows_read,
                      "rows_loaded": rep.rows_loaded, "quarantined": rep.rows_quarantined,
                      "balanced": rep.balanced, "peak_rss_kb": peak, "warnings": len(rep.warnings)}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--institutions", type=int, default=200)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "bench" / "ingest")
    ap.add_argument("--batch-rows", type=int, default=None)
    ap.add_argument("--fresh", action="store_true", help="regenerate the drop")
    ap.add_argument("--child", nargs=2, metavar=("DROP", "LAKE"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.batch_rows is None:
        from pipelines import config
        a.batch_rows = int(config.load("fundguard").get("ingest", {}).get("batch_rows", 250_000))
    if a.child:
        _ingest_child(Path(a.child[0]), Path(a.child[1]), a.batch_rows)
        return 0

    drop = a.data / f"drop_{a.rows}"
    meta = drop / ".complete"
    if a.fresh or not meta.exists():
        shutil.rmtree(drop, ignore_errors=True)
        t0 = time.perf_counter()
        generate(drop, a.rows, a.institutions)
        print(f"generated {a.rows:,} fee lines in {time.perf_counter() - t0:.1f}s -> {drop}")
    lake = a.data / "lake"
    shutil.rmtree(lake, ignore_errors=True)
    out = subprocess.run([sys.executable, __file__, "--child", str(drop), str(lake), "--batch-rows",
                          str(a.batch_rows)], capture_output=True, text=True, env={**os.environ})
    if out.returncode != 0 or os.environ.get("FUNDGUARD_INGEST_TRACE"):
        print(out.stderr, file=sys.stderr)   # phase timings with FUNDGUARD_INGEST_TRACE=1
    if out.returncode != 0:
        return out.returncode
    r = json.loads(out.stdout.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in drop.iterdir() if p.is_file())
    rate = r["fee_lines"] / r["elapsed"]
    peak_gb = r["peak_rss_kb"] / 1024 / 1024
    rows = [
        ("fee lines 费用明细行数", f"{r['fee_lines']:,}"),
        ("rows read (all files) 读入行数", f"{r['rows_read']:,}"),
        ("rows loaded / quarantined 入库/隔离", f"{r['rows_loaded']:,} / {r['quarantined']:,}"),
        ("drop size 数据包大小", f"{size / 1e9:.2f} GB"),
        ("elapsed 耗时", f"{r['elapsed']:.1f} s"),
        ("fee lines/s 每秒行数", f"{rate:,.0f}  (target ≥ 200,000)"),
        ("peak RSS 峰值内存", f"{peak_gb:.2f} GB  (target < 4 GB)"),
        ("cores 核数", str(os.cpu_count())),
        ("batch rows 批大小", f"{a.batch_rows:,}"),
        ("reconciled 对账平衡", str(r["balanced"])),
    ]
    w = max(len(k) for k, _ in rows)
    print("ingest benchmark 入库性能")
    for k, v in rows:
        print(f"  {k.ljust(w)}  {v}")
    shutil.rmtree(lake, ignore_errors=True)
    return 0 if rate >= 200_000 and peak_gb < 4 else 1


if __name__ == "__main__":
    sys.exit(main())
