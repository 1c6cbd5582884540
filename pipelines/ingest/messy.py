"""Rewrite a canonical drop into a "messy twin": the same records in every form contract §1 accepts.

Loading the twin must give the same silver tables as loading the original (minus lineage columns).
The twin uses: xlsx with Chinese labels and numeric (unpadded) codes; GBK CSV with Chinese labels;
GB18030 TSV with upper-case names and `yyyyMMddHHmmss` times; UTF-8-with-BOM CSV with upper-case
agency aliases and an unknown extra column; JSONL with JSON numbers; fee lines split into a .csv.gz part
(aliases, unpadded codes, `yyyy/MM/dd HH:mm` / date-only times where lossless), a parquet part (typed
timestamps and float counts) and a JSONL part (Chinese labels); inventory as parquet with the national
3501–3507 names; rows shuffled.

    python -m pipelines.ingest.messy SRC_DROP DST_DROP [--seed 7]
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines import contract
from pipelines.ingest.inspection import inspect_file, list_drop
from pipelines.ingest.readers import read_batches

Rows = list[dict[str, str | None]]


def _read_entity_rows(src: Path) -> dict[str, Rows]:
    out: dict[str, Rows] = {}
    for p in list_drop(src):
        info = inspect_file(p)
        rows = out.setdefault(info.entity, [])
        for rb in read_batches(info, 100_000):
            t = rb.table.drop_columns(["_line"])
            present = set(info.mapping.values())
            for r in t.to_pylist():
                rows.append({k: v for k, v in r.items() if k in present})
    return out


def _parse_time(v: str | None) -> dt.datetime | None:
    if not v or not v.strip():
        return None
    for fmt in contract.TIME_FORMATS:
        try:
            return dt.datetime.strptime(v.strip(), fmt)
        except ValueError:
            continue
    return None


def _other_time(v: str | None, style: str) -> str | None:
    """The same instant in another contract format, never losing information."""
    t = _parse_time(v)
    if t is None:
        return v
    if style == "compact":
        return t.strftime("%Y%m%d%H%M%S")
    if t.time() == dt.time(0):
        return t.strftime("%Y-%m-%d")
    if t.second == 0:
        return t.strftime("%Y/%m/%d %H:%M")
    return t.strftime("%Y%m%d%H%M%S")


def _unpad(v: str | None) -> str | None:
    return v[1:] if v and len(v) == 2 and v[0] == "0" and v[1].isdigit() else v


def _alias(entity: str, name: str, prefer: tuple[str, ...] = ()) -> str:
    f = contract.ENTITIES[entity].field(name)
    for a in f.aliases:
        if a.isascii() and (not prefer or a in prefer):
            return a
    return name


def _label(entity: str, name: str) -> str:
    return contract.ENTITIES[entity].field(name).label or name


def _convert(entity: str, rows: Rows, *, times: str | None = None, unpad: bool = False) -> Rows:
    ent = contract.ENTITIES[entity]
    out = []
    for r in rows:
        r2 = dict(r)
        for f in ent.fields:
            if f.name not in r2:
                continue
            if times and f.type in (contract.TS,):
                r2[f.name] = _other_time(r2[f.name], times)
            if unpad and f.type == contract.CODE2:
                r2[f.name] = _unpad(r2[f.name])
        out.append(r2)
    return out


def _write_text(path: Path, header: list[str], rows: list[list], encoding: str, delimiter: str = ",",
                gz: bool = False) -> None:
    opener = (lambda: gzip.open(path, "wt", encoding=encoding, newline="")) if gz else \
        (lambda: open(path, "w", encoding=encoding, newline=""))
    with opener() as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\r\n" if encoding != "utf-8" else "\n")
        w.writerow(header)
        w.writerows([["" if v is None else v for v in r] for r in rows])


def _table(rows: Rows, names: list[str], headers: list[str]) -> tuple[list[str], list[list]]:
    return headers, [[r.get(n) for n in names] for r in rows]


def _encodable(rows: Rows, encoding: str) -> bool:
    try:
        for r in rows:
            for v in r.values():
                if v:
                    v.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _num(v: str | None):
    """A numeric-looking string as a JSON/Excel number when that is lossless, else the string."""
    if v is None or v == "":
        return None
    try:
        if v.isdigit() and not (len(v) > 1 and v[0] == "0"):
            return int(v)
        f = float(v)
        if repr(f) == v or str(f) == v:
            return f
    except ValueError:
        pass
    return v


def make_messy_twin(src_drop: Path, dst_drop: Path, seed: int = 7) -> list[Path]:
    """Write the messy twin of `src_drop` into `dst_drop`; return the files written."""
    src_drop, dst_drop = Path(src_drop), Path(dst_drop)
    dst_drop.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    data = _read_entity_rows(src_drop)
    written: list[Path] = []
    for entity, rows in sorted(data.items()):
        rows = list(rows)
        rng.shuffle(rows)
        fields = contract.ENTITIES[entity].names
        names = [n for n in fields if any(n in r for r in rows[:1])] if rows else fields
        writer = _WRITERS.get(entity, _write_kb_default)
        written += writer(dst_drop, entity, rows, names, rng)
    return written


def _write_xlsx(path: Path, header: list[str], rows: list[list]) -> None:
    import openpyxl
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("data")
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)


def _w_fixmedins(dst, entity, rows, names, rng):
    rows = _convert(entity, rows, unpad=True)
    header = [_label(entity, n) for n in names]
    numeric = {"hosp_lv", "aprv_bed_cnt", "fixmedins_type", "medins_natu"}
    body = [[_num(r.get(n)) if n in numeric else r.get(n) for n in names] for r in rows]
    p = dst / f"{entity}.xlsx"
    _write_xlsx(p, header, body)
    return [p]


def _w_psn(dst, entity, rows, names, rng):
    enc = "gbk" if _encodable(rows, "gbk") else "gb18030"
    p = dst / f"{entity}.csv"
    _write_text(p, *_table(rows, names, [_label(entity, n) for n in names]), encoding=enc)
    return [p]


def _w_mdtrt(dst, entity, rows, names, rng):
    rows = _convert(entity, rows, times="compact")
    p = dst / f"{entity}.tsv"
    _write_text(p, *_table(rows, names, [n.upper() for n in names]), encoding="gb18030", delimiter="\t")
    return [p]


def _w_setl(dst, entity, rows, names, rng):
    rows = _convert(entity, rows, times="mixed")
    header = [_alias(entity, n).upper() for n in names] + ["REMARK_备注"]
    body = [[r.get(n) for n in names] + ["extra column, ignored"] for r in rows]
    p = dst / f"{entity}.csv"
    _write_text(p, header, body, encoding="utf-8-sig")
    return [p]


def _w_diag(dst, entity, rows, names, rng):
    p = dst / f"{entity}.jsonl"
    with open(p, "w", encoding="utf-8") as f:
        for r in rows:
            obj = {n: (_num(r.get(n)) if n in ("maindiag_flag", "diag_type") else r.get(n)) for n in names}
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            if rng.random() < 0.3:
                f.write("\n")  # blank lines are not rows
    return [p]


def _w_fee_list(dst, entity, rows, names, rng):
    n = len(rows)
    a, b = rows[: n // 3], rows[n // 3: 2 * n // 3]
    c = rows[2 * n // 3:]
    out = []
    # part 1: csv.gz, agency aliases, unpadded codes, other time formats
    a = _convert(entity, a, times="mixed", unpad=True)
    prefer = ("bkkp_sn", "med_list_codg", "bilg_dr_code", "inscp_amt", "medins_list_code")
    p = dst / f"{entity}-2022-part-a.csv.gz"
    _write_text(p, *_table(a, names, [_alias(entity, x, prefer) for x in names]), encoding="utf-8", gz=True)
    out.append(p)
    # part 2: parquet with typed timestamps and float counts
    cols = {}
    for x in names:
        vals = [r.get(x) for r in b]
        f = contract.ENTITIES[entity].field(x)
        if f.type == contract.TS:
            cols[x] = pa.array([_parse_time(v) for v in vals], pa.timestamp("us"))
        elif x == "cnt":
            cols[x] = pa.array([None if v in (None, "") else float(v) for v in vals], pa.float64())
        else:
            cols[x] = pa.array(vals, pa.string())
    p = dst / f"{entity}_part2.parquet"
    pq.write_table(pa.table(cols), p)
    out.append(p)
    # part 3: jsonl with Chinese labels and JSON numbers
    p = dst / f"{entity}_part3.jsonl"
    with open(p, "w", encoding="utf-8") as fh:
        for r in c:
            obj = {_label(entity, x): (_num(r.get(x)) if x in ("cnt", "pric") else r.get(x)) for x in names}
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
    out.append(p)
    return out


def _w_inv(dst, entity, rows, names, rng):
    national = {"hilist_code": "med_list_codg", "pric": "finl_trns_pric", "batch_no": "fixmedins_bchno"}
    cols = {}
    for x in names:
        vals = [r.get(x) for r in rows]
        if x == "occur_time":
            cols["occur_time"] = pa.array([_parse_time(v) for v in vals], pa.timestamp("us"))
        else:
            cols[national.get(x, x)] = pa.array(vals, pa.string())
    p = dst / f"{entity}.parquet"
    pq.write_table(pa.table(cols), p)
    return [p]


def _write_kb_default(dst, entity, rows, names, rng):
    if entity == "kb_hilist":
        p = dst / f"{entity}.csv"
        _write_text(p, *_table(_convert(entity, rows, unpad=True), names, [_label(entity, n) for n in names]),
                    encoding="gb18030")
    elif entity == "kb_item_pair":
        p = dst / f"{entity}.xlsx"
        _write_xlsx(p, [n.upper() for n in names], [[r.get(n) for n in names] for r in rows])
    else:
        p = dst / f"{entity}.tsv"
        _write_text(p, *_table(rows, names, names), encoding="utf-8", delimiter="\t")
    return [p]


_WRITERS = {"fixmedins": _w_fixmedins, "psn": _w_psn, "mdtrt": _w_mdtrt, "setl": _w_setl, "diag": _w_diag,
            "fee_list": _w_fee_list, "inv_movement": _w_inv}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src", type=Path)
    ap.add_argument("dst", type=Path)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    for p in make_messy_twin(a.src, a.dst, a.seed):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
