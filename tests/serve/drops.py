"""A second drop for the service tests: files sent again, refunds, and the settlements they change."""
from __future__ import annotations

import csv
import shutil
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path


def _read(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def resend_and_refund_drop(first: Path, out: Path, every: int = 9) -> dict:
    """A second drop: mdtrt.csv and fee_list_part1.csv sent again unchanged (under other file names); a refund
    for every `every`-th line of fee_list_part1.csv not refunded yet: one unit when cnt > 1, else the whole
    line, pointing back through init_feedetl_sn, or (every third, when the line is alone on its visit, item and
    day) without it; and setl.csv sent again with each settlement's totals reduced by its refunds."""
    out.mkdir(parents=True)
    shutil.copy(first / "mdtrt.csv", out / "mdtrt-resent.csv")
    shutil.copy(first / "fee_list_part1.csv", out / "fee_list_part7.csv")
    lines = [r for p in sorted(first.glob("fee_list*.csv")) for r in _read(p)]
    day = lambda r: (r["mdtrt_id"], r["hilist_code"], r["fee_ocur_time"][:10])  # noqa: E731
    per_day = Counter(day(r) for r in lines)
    sent = Counter((r["mdtrt_id"], r["feedetl_sn"]) for r in lines)   # a line sent twice is left alone
    touched = {day(r) for r in lines if r["cnt"].startswith("-")} | {day(r) for r in lines if r["init_feedetl_sn"]}
    refunds, less, kinds = [], defaultdict(Decimal), Counter()
    for i, r in enumerate(_read(first / "fee_list_part1.csv")):
        cnt = Decimal(r["cnt"])
        if i % every or cnt <= 0 or day(r) in touched or sent[(r["mdtrt_id"], r["feedetl_sn"])] > 1:
            continue
        units = Decimal(1) if cnt > 1 else cnt
        amount = (Decimal(r["det_item_fee_sumamt"]) * units / cnt).quantize(Decimal("0.01"))
        own = (Decimal(r["fulamt_ownpay_amt"] or 0) * units / cnt).quantize(Decimal("0.01"))
        scope = (Decimal(r["inscp_scp_amt"] or 0) * units / cnt).quantize(Decimal("0.01"))
        without = len(refunds) % 3 == 2 and per_day[day(r)] == 1
        refunds.append(dict(r, feedetl_sn=r["feedetl_sn"] + "9", cnt=str(-units), det_item_fee_sumamt=str(-amount),
                            inscp_scp_amt=str(-scope), fulamt_ownpay_amt=str(-own),
                            init_feedetl_sn="" if without else r["feedetl_sn"]))
        kinds["partial" if cnt > 1 else "whole"] += 1
        kinds["without_init" if without else "with_init"] += 1
        less[(r["setl_id"], "medfee_sumamt")] += amount
        less[(r["setl_id"], "fulamt_ownpay_amt")] += own
    _write(out / "fee_list-refunds.csv", refunds)
    settlements = _read(first / "setl.csv")
    for s in settlements:
        for col in ("medfee_sumamt", "fulamt_ownpay_amt"):
            if (s["setl_id"], col) in less:
                s[col] = str(Decimal(s[col] or 0) - less[(s["setl_id"], col)])
    _write(out / "setl-resent.csv", settlements)
    return {"refunds": len(refunds), **kinds}
