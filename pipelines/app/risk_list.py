"""The 重点检查 list (`fundguard sample --risk-top N`): the N riskiest institutions of a year from
gold/institution_risk, written next to the 双随机 draw, which it does not change.

The draw stays random and public; the risk list is a separate, targeted list (a priority for on-site
inspection, not a finding). Each row says whether the institution was also drawn at random.
"""
from __future__ import annotations

import json

import pandas as pd
import pyarrow.dataset as pads

from pipelines.analytics.io import RISK_TABLE
from pipelines.contract.spreadsheet import neutralise
from pipelines.storage import Lake

#: column -> header (Chinese and English)
HEADERS = {
    "risk_rank": "风险排名 risk rank", "fixmedins_code": "定点医药机构编号 institution code",
    "fixmedins_name": "定点医药机构名称 institution name", "peer_group": "同类机构组 peer group",
    "risk_score": "风险分 risk score", "drivers": "主要风险指标 main indicators",
    "in_random_draw": "同时被双随机抽中 also drawn at random", "model": "模型 model",
    "run_id": "分析运行 analyze run",
}


class NoRiskRanking(ValueError):
    """gold/institution_risk has no ranking for the period."""


def _drivers_text(raw: str) -> str:
    try:
        items = json.loads(raw or "[]")
    except ValueError:
        return ""
    return "；".join(f"{d['label_zh']} {d['label_en']} {d['value']} (z={d['robust_z']})" for d in items)


def risk_top(lake: Lake, period: str, n: int, fixmedins: pd.DataFrame | None = None,
             drawn: set[str] | frozenset[str] = frozenset()) -> pd.DataFrame:
    """The `n` riskiest institutions of `period` (gold/institution_risk's latest analyze run of that period),
    with Chinese+English headers."""
    if n < 1:
        raise NoRiskRanking(f"--risk-top must be at least 1 (got {n})")
    if not lake.exists(RISK_TABLE):
        raise NoRiskRanking(f"没有机构风险排序 / {RISK_TABLE} does not exist: run `fundguard analyze --period "
                            f"{period}` first")
    r = lake.read(RISK_TABLE, filter=pads.field("period") == period).to_pandas()
    if not len(r):
        raise NoRiskRanking(f"{RISK_TABLE} 没有 {period} 的排序 / has no ranking for {period}: run `fundguard analyze "
                            f"--period {period}` first")
    r = r.sort_values("risk_rank").head(n).reset_index(drop=True)
    names = (fixmedins.drop_duplicates("fixmedins_code").set_index("fixmedins_code")["fixmedins_name"]
             if fixmedins is not None and "fixmedins_name" in fixmedins.columns else pd.Series(dtype=object))
    out = pd.DataFrame({
        "risk_rank": r["risk_rank"].astype(int), "fixmedins_code": r["fixmedins_code"],
        "fixmedins_name": r["fixmedins_code"].map(names).fillna(""), "peer_group": r["peer_group"],
        "risk_score": r["risk_score"].round(4), "drivers": r["drivers"].map(_drivers_text),
        "in_random_draw": r["fixmedins_code"].isin(set(drawn)).map({True: "是 yes", False: "否 no"}),
        "model": r["model_name"] + " v" + r["model_version"].astype(str), "run_id": r["run_id"]})
    text = ["fixmedins_code", "fixmedins_name", "peer_group", "drivers"]
    out[text] = out[text].map(neutralise)        # a name or code a spreadsheet would run as a formula
    return out.rename(columns=HEADERS)
