"""Tiny hand-made lakes for the gate and publish tests: `make_lake` is the `silver_lake` fixture (tests/conftest.py);
the suspects and the catalog checked against it are built here too."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa

from pipelines import contract
from pipelines.catalog import Catalog, Rule, load_catalog
from pipelines.contract import SUSPECT_SCHEMA
from pipelines.storage import Lake

D = Decimal


def typed(entity: str, rows: list[dict], extra: dict[str, pa.DataType] | None = None) -> pa.Table:
    """Rows (any subset of the contract columns) as the entity's typed silver table."""
    schema = contract.arrow_schema(entity)
    for name, t in (extra or {}).items():
        schema = schema.append(pa.field(name, t))
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


def ts(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s)


def build_silver(lake: Lake) -> dict[str, int]:
    """Silver of two institutions, written as Delta tables; returns their versions."""
    fee = [
        # H1, visit M1 (settlement S1 = 80.00): two bed-days on one day
        dict(mdtrt_id="M1", feedetl_sn="1", setl_id="S1", psn_no="P1", fixmedins_code="H1", hilist_code="X1",
             fee_ocur_time=ts("2023-03-01 08:00:00"), cnt=D("1"), pric=D("40"), det_item_fee_sumamt=D("40.00"),
             period="2023-03"),
        dict(mdtrt_id="M1", feedetl_sn="2", setl_id="S1", psn_no="P1", fixmedins_code="H1", hilist_code="X1",
             fee_ocur_time=ts("2023-03-01 20:00:00"), cnt=D("1"), pric=D("40"), det_item_fee_sumamt=D("40.00"),
             period="2023-03"),
        # H1, visit M2 (settlement S2 = 100.00), April
        dict(mdtrt_id="M2", feedetl_sn="3", setl_id="S2", psn_no="P2", fixmedins_code="H1", hilist_code="X2",
             fee_ocur_time=ts("2023-04-02 08:00:00"), cnt=D("5"), pric=D("20"), det_item_fee_sumamt=D("100.00"),
             period="2023-04"),
        # H2, visit M7
        dict(mdtrt_id="M7", feedetl_sn="10", setl_id="S7", psn_no="P6", fixmedins_code="H2", hilist_code="X1",
             fee_ocur_time=ts("2023-03-05 10:00:00"), cnt=D("1"), pric=D("40"), det_item_fee_sumamt=D("40.00"),
             period="2023-03"),
    ]
    mdtrt = [
        dict(mdtrt_id="M1", psn_no="P1", fixmedins_code="H1", med_type="21", begntime=ts("2023-03-01 07:00:00"),
             endtime=ts("2023-03-03 07:00:00"), period="2023-03"),
        dict(mdtrt_id="M2", psn_no="P2", fixmedins_code="H1", med_type="21", begntime=ts("2023-04-02 07:00:00"),
             endtime=ts("2023-04-05 07:00:00"), period="2023-04"),
        dict(mdtrt_id="M7", psn_no="P6", fixmedins_code="H2", med_type="11", begntime=ts("2023-03-05 09:00:00"),
             period="2023-03"),
    ]
    setl = [
        dict(setl_id="S1", mdtrt_id="M1", psn_no="P1", fixmedins_code="H1", setl_time=ts("2023-03-03 09:00:00"),
             medfee_sumamt=D("80.00"), fulamt_ownpay_amt=D("10.00"), fund_pay_sumamt=D("60.00"), period="2023-03"),
        dict(setl_id="S2", mdtrt_id="M2", psn_no="P2", fixmedins_code="H1", setl_time=ts("2023-04-05 09:00:00"),
             medfee_sumamt=D("100.00"), fulamt_ownpay_amt=D("30.00"), fund_pay_sumamt=D("60.00"), period="2023-04"),
        dict(setl_id="S7", mdtrt_id="M7", psn_no="P6", fixmedins_code="H2", setl_time=ts("2023-03-05 11:00:00"),
             medfee_sumamt=D("40.00"), fund_pay_sumamt=D("30.00"), period="2023-03"),
    ]
    inv = [dict(fixmedins_code="H1", hilist_code="X2", mvmt_type="stocktake", cnt=D("3"),
                occur_time=ts("2023-01-01 00:00:00"), period="2023-01")]
    versions = {}
    for name, entity, rows in (("silver/fee_list_net", "fee_list", fee), ("silver/mdtrt", "mdtrt", mdtrt),
                               ("silver/setl", "setl", setl), ("silver/inv_movement", "inv_movement", inv)):
        versions[name] = lake.append(name, typed(entity, rows), partition_by=["fixmedins_code", "period"])
    return versions


def gate_catalog() -> Catalog:
    """The real families with hand-made rules: one per grain, plus a draft rule."""
    real = load_catalog()

    def rule(rid, family, status="active"):
        return Rule(id=rid, version=1, family=family, template=family, name=rid, category="超量收费",
                    severity="violation", status=status, scope=("住院",), legal_basis="-", description="-")
    rules = [rule("daily_cap_item", "daily_cap"), rule("split_admission_same_diag", "split_admission"),
             rule("self_pay_ratio_inpatient", "self_pay_ratio"), rule("inventory_shortfall_drug", "inventory_shortfall"),
             rule("daily_cap_draft", "daily_cap", status="draft")]
    return Catalog(real.rules_dir, real.families, rules, {}, {})


def sid(rule_id: str, *keys) -> str:
    return hashlib.sha256("|".join([rule_id, *[k or "" for k in keys]]).encode()).hexdigest()


def suspect(rule_id, family, inst, period, *, mdtrt=None, sn=None, setl=None, hilist=None, amount="10.00",
            evidence="参保人P1于2023-03-01使用项目超过每日限量。", run_id="R2", versions=None, when=None) -> dict:
    grain_keys = {"daily_cap": (inst, mdtrt, sn), "split_admission": (inst, mdtrt, setl),
                  "self_pay_ratio": (inst, mdtrt, setl), "inventory_shortfall": (inst, hilist, period)}
    return dict(
        suspect_id=sid(rule_id, *grain_keys.get(family, (inst, mdtrt, sn))), rule_id=rule_id, rule_version=1,
        family=family, category="超量收费", severity="violation", fixmedins_code=inst, period=period, psn_no="P1",
        mdtrt_id=mdtrt, setl_id=setl, feedetl_sn=sn, hilist_code=hilist,
        event_time=ts(when or f"{period}-01 08:00:00"), amount=D(amount) if amount is not None else None,
        evidence=evidence, run_id=run_id, rule_set_fingerprint="fp1",
        input_versions=json.dumps(versions or {}), published_at=None)


def clean_rows(versions=None, run_id="R2") -> list[dict]:
    """One valid suspect of each grain."""
    v = versions
    return [
        suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M1", sn="1", setl="S1", hilist="X1",
                amount="40.00", versions=v, run_id=run_id),
        suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M1", sn="2", setl="S1", hilist="X1",
                amount="40.00", versions=v, run_id=run_id),
        suspect("daily_cap_item", "daily_cap", "H2", "2023-03", mdtrt="M7", sn="10", setl="S7", hilist="X1",
                amount="40.00", versions=v, run_id=run_id),
        suspect("split_admission_same_diag", "split_admission", "H1", "2023-04", mdtrt="M2", amount="100.00",
                versions=v, run_id=run_id),
        suspect("self_pay_ratio_inpatient", "self_pay_ratio", "H1", "2023-04", mdtrt="M2", setl="S2",
                amount="30.00", versions=v, run_id=run_id),
        suspect("inventory_shortfall_drug", "inventory_shortfall", "H1", "2023-04", hilist="X2", amount="20.00",
                versions=v, run_id=run_id),
    ]


def table(rows: list[dict], schema: pa.Schema = SUSPECT_SCHEMA) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)


def make_lake(tmp_path: Path) -> tuple[Lake, dict[str, int]]:
    lake = Lake(tmp_path / "lake")
    return lake, build_silver(lake)
