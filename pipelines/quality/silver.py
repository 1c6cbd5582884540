"""The silver suite after a load (the ingestion's `validate` hook).

What it checks is data: `silver_suite.yml` — per silver table the load changed: key unique and not null,
required fields filled, codes in their code tables, money and times in range; across tables: fee lines
refer to known visits, and each settlement's medfee_sumamt equals the sum of its netted fee lines within
0.01. A settlement (or visit) whose related rows were quarantined in this load is a warning ("incomplete
settlement", with its ids), not a failure (contract §1: it stays loaded and is reported as incomplete).
`validate_silver` reads the tables and this load's quarantined rows, computes the frames the suite names
(`silver_frames.FRAMES`) and runs the suite.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines import contract
from pipelines.quality import gx as qgx
from pipelines.quality import suite as qsuite
from pipelines.quality.silver_frames import FRAMES, NET, SilverInputs, tables_read
from pipelines.storage import Lake, native_select
from pipelines.storage.partitions import changed_partition_values

SUITE_PATH = Path(__file__).with_name("silver_suite.yml")
INSTITUTION = "fixmedins_code"


@dataclass
class SuiteResult:
    success: bool
    failures: list[str]
    warnings: list[str]
    report_path: Path | None
    results: dict = field(default_factory=dict)


def silver_tables(lake: Lake) -> list[str]:
    names = [f"silver/{e}" for e in contract.ENTITIES] + [NET]
    return [n for n in names if lake.exists(n)]


# ------------------------------------------------------------------------------ quarantined relations

def quarantined_ids(rows: list[tuple[str, str | None]]) -> dict[str, set[str]]:
    """Ids of records whose related rows were quarantined, from (entity, raw row JSON) pairs: setl_id and
    mdtrt_id of fee lines, mdtrt_id of visits, psn_no of persons (any header the contract accepts)."""
    out: dict[str, set[str]] = {"fee_setl": set(), "fee_mdtrt": set(), "mdtrt": set(), "psn": set()}
    maps = {e: contract.header_map(e) for e in ("fee_list", "mdtrt", "psn")}
    for ent, raw in rows:
        try:
            row = json.loads(raw or "{}")
        except ValueError:
            continue
        canon = {}
        for k, v in row.items():
            name = maps[ent].get(re.sub(r"\s+", "", str(k)).lstrip("\ufeff").lower(), k)
            if v not in (None, ""):
                canon.setdefault(name, str(v).strip())
        if ent == "fee_list":
            if canon.get("setl_id"):
                out["fee_setl"].add(canon["setl_id"])
            if canon.get("mdtrt_id"):
                out["fee_mdtrt"].add(canon["mdtrt_id"])
        elif ent == "psn":
            if canon.get("psn_no"):
                out["psn"].add(canon["psn_no"])
        elif canon.get("mdtrt_id"):
            out["mdtrt"].add(canon["mdtrt_id"])
    return out


def _quarantined(lake: Lake, load_id: str) -> dict[str, set[str]]:
    """The ids of `quarantined_ids` for the rows this load quarantined."""
    if not lake.exists(contract.QUARANTINE):
        return quarantined_ids([])
    import pyarrow.dataset as pads
    q = lake.read(contract.QUARANTINE, columns=["entity", "raw_row"],
                  filter=(pads.field("load_id") == load_id) & pads.field("entity").isin(["fee_list", "mdtrt", "psn"]))
    return quarantined_ids(list(zip(q.column("entity").to_pylist(), q.column("raw_row").to_pylist())))


def read_inputs(lake: Lake, before_versions: dict[str, int | None], load_id: str) -> SilverInputs:
    """The silver tables the load changed (all when `before_versions` is empty; a table it does not name was
    not written by the load), those the cross-table checks read, and this load's quarantined ids. Tables
    partitioned by institution are read in the partitions of the institutions the load changed
    (`changed_institutions`): a monthly drop is checked with what it touched, not with the whole district."""
    existing = silver_tables(lake)
    changed = [n for n in existing if not before_versions
               or (n in before_versions and before_versions[n] != lake.version(n))]
    insts = changed_institutions(lake, changed, before_versions)
    tables = {n: _source(lake, n, insts) for n in tables_read(changed, set(existing))}
    return SilverInputs(changed, tables, _quarantined(lake, load_id), lake.folder("tmp", "silver-suite"))


def _source(lake: Lake, name: str, insts: set | None):
    """A silver table as the frames read it: its snapshot's files when a plain Parquet reader may read them
    (in the partitions of `insts` when given and the table is partitioned by institution), else a dataset."""
    snap = lake.native_files(name)
    if snap is not None and native_select(snap) is not None:
        if insts is not None and INSTITUTION in snap.partition_by:
            snap = snap.only(INSTITUTION, {str(v) for v in insts})
        if snap.files:
            return snap
    return lake.dataset(name, partitions={INSTITUTION: insts} if insts is not None else None, where_partitioned=True)


def changed_institutions(lake: Lake, changed: list[str], before_versions: dict[str, int | None]) -> set | None:
    """The institutions whose partitions the load added or removed files in, across the changed tables
    partitioned by institution; None (check everything) when one of them is new to this load or a changed
    partition has no institution."""
    insts: set = set()
    for n in changed:
        values = None
        if before_versions.get(n) is not None:
            values = changed_partition_values(lake, n, before_versions[n], INSTITUTION)
        elif INSTITUTION in lake.delta(n).metadata().partition_columns:
            return None                               # new to this load: everything it holds is new
        if values is None:
            continue                                  # not partitioned by institution: read whole
        if None in values:
            return None
        insts |= values
    return insts


# ------------------------------------------------------------------------------ the suite

def validate_silver(lake: Lake, before_versions: dict[str, int | None], load_id: str,
                    report_dir: Path | None = None) -> SuiteResult:
    """Validate the silver tables a load changed (all when `before_versions` is empty)."""
    suite = qsuite.load_suite(SUITE_PATH)
    inputs = read_inputs(lake, before_versions or {}, load_id)
    if report_dir is None:
        report_dir = lake.folder("reports", "silver", re.sub(r"[^A-Za-z0-9_.-]", "_", load_id) or "load")
    frames = {kind: FRAMES[kind](inputs) for kind in suite.frames}
    run = qsuite.run(suite, frames, {"load_id": load_id}, report_dir)
    if run is None:
        return SuiteResult(True, [], [], None, {"silver_expectations": 0})
    failures, warnings = qgx.messages(run, "failure"), qgx.messages(run, "warning")
    results = {"silver_success": int(run.success), "silver_expectations": run.stats["expectations"],
               "silver_failed_expectations": run.stats["failed"], "silver_warnings": run.stats["warned"]}
    return SuiteResult(run.success, failures, warnings, report_dir, results)
