"""Tiny claims tables written into a lake's silver tables, for screening with imported knowledge."""
from __future__ import annotations

import csv
from pathlib import Path

from pipelines.screen.pipeline import INPUT_TABLES
from pipelines.screen.regression import typed_csv

TABLE_OF = {v: t for v, t in INPUT_TABLES.items()}


def write_claims(lake, tmp: Path, tables: dict[str, list[dict]]) -> None:
    """Each entity's rows (canonical names, text values) typed by the contract into `silver/<entity>`."""
    tmp.mkdir(parents=True, exist_ok=True)
    for entity, rows in tables.items():
        path = tmp / f"{entity}.csv"
        names = list(dict.fromkeys(k for r in rows for k in r))
        with path.open("w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, names)
            w.writeheader()
            w.writerows(rows)
        lake.overwrite(TABLE_OF[entity], typed_csv(path, entity))


def fee(sn: int, mdtrt: str, psn: str, inst: str, time: str, code: str, amount: str = "10.00", cnt: str = "1",
        **extra) -> dict:
    """A fund line (inscp_scp_amt = amount)."""
    return {"feedetl_sn": str(sn), "mdtrt_id": mdtrt, "setl_id": f"S{mdtrt}", "psn_no": psn, "fixmedins_code": inst,
            "fee_ocur_time": time, "hilist_code": code, "cnt": cnt, "pric": amount, "det_item_fee_sumamt": amount,
            "inscp_scp_amt": amount, **extra}
