"""Peer groups and robust peer scores (median / MAD) per indicator, with an explanation per flagged value.

Peer group: 机构类型 × 医院等级 × 所属区划 when the district has several 区划, coarsened until the group has
`min_peers` institutions: type × hosp_lv, then type × level class (三级/二级/一级/无等级), then type, then all.
Without `fixmedins` every institution is in one group (全部机构).

Robust z = (value − median) / (1.4826 · MAD); when the MAD is 0, 1.2533 · mean absolute deviation; the
spread is at least 5 % of the median and the indicator's floor (a share: 1 percentage point), so a tight
group does not turn a tiny difference into a large score; when it is 0, z is 0. Scores need at least 3 peers with a value. A value is an outlier when it is on the risky side
(`labels.RISKY`) with z ≥ `z_flag`.
"""
from __future__ import annotations


import numpy as np
import pandas as pd

from pipelines.analytics.labels import (BY_NAME, FLOORS, HOSP_LV_LABELS, LEVEL_CLASS, LEVEL_CLASS_EN, RATES, RISKY,
                                        TYPE_LABELS)

MIN_SCORED = 3
#: the spread is at least this share of the median (and the indicator's own floor, `labels.Indicator.floor`)
REL_FLOOR = 0.05


def _levels(a: pd.DataFrame) -> list[tuple[pd.Series, pd.Series]]:
    """Candidate (zh, en) labels per institution, finest first."""
    t = a["fixmedins_type"].fillna("1")
    tz = t.map(lambda x: TYPE_LABELS.get(x, (f"类型{x}", f"type {x}"))[0])
    te = t.map(lambda x: TYPE_LABELS.get(x, (f"类型{x}", f"type {x}"))[1])
    lv = a["hosp_lv"].fillna("11")
    lz = lv.map(lambda x: HOSP_LV_LABELS.get(x, x))
    cz = lv.map(lambda x: LEVEL_CLASS.get(x, "无等级"))
    ce = cz.map(LEVEL_CLASS_EN)
    out = []
    if a["admdvs"].nunique(dropna=True) > 1:
        ad = a["admdvs"].fillna("未知区划")
        out.append((tz + "·" + lz + "·" + ad, te + ", " + lz + ", " + ad))
    out += [(tz + "·" + lz, te + ", " + lz), (tz + "·" + cz, te + ", " + ce + " (" + cz + ")"), (tz, te),
            (pd.Series("全部机构", index=a.index), pd.Series("all institutions", index=a.index))]
    return out


def assign_peer_groups(codes: list[str], fixmedins: pd.DataFrame | None, min_peers: int) -> pd.DataFrame:
    """fixmedins_code, peer_group (Chinese label), peer_group_en for each institution in `codes`."""
    a = pd.DataFrame({"fixmedins_code": sorted(set(codes))})
    cols = ["fixmedins_type", "hosp_lv", "admdvs"]
    if fixmedins is not None and len(fixmedins):
        f = fixmedins.drop_duplicates("fixmedins_code")
        a = a.merge(f[["fixmedins_code", *[c for c in cols if c in f.columns]]], on="fixmedins_code", how="left")
    for c in cols:
        if c not in a.columns:
            a[c] = None
    a["peer_group"] = None
    a["peer_group_en"] = None
    for zh, en in _levels(a):
        sizes = zh.map(zh.value_counts())
        take = a["peer_group"].isna() & (sizes >= min_peers)
        a.loc[take, "peer_group"] = zh[take]
        a.loc[take, "peer_group_en"] = en[take]
    rest = a["peer_group"].isna()
    a.loc[rest, "peer_group"], a.loc[rest, "peer_group_en"] = "全部机构", "all institutions"
    return a[["fixmedins_code", "peer_group", "peer_group_en"]]


KEYS = ["grain", "period", "peer_group", "indicator"]


def _robust(long: pd.DataFrame) -> pd.DataFrame:
    """Median, MAD, robust z and percentile of each value within its (grain, period, peer group, indicator)."""
    g = long.groupby(KEYS, sort=False, dropna=False)["value"]
    med, n = g.transform("median"), g.transform("count")
    dev = (long["value"] - med).abs()
    by = [long[k] for k in KEYS]
    mad = dev.groupby(by, sort=False, dropna=False).transform("median")
    mean_ad = dev.groupby(by, sort=False, dropna=False).transform("mean")
    scale = np.where(mad > 0, 1.4826 * mad, 1.2533 * mean_ad)
    floor = np.maximum(long["indicator"].map(FLOORS).fillna(0.0).to_numpy(), REL_FLOOR * med.abs().to_numpy())
    scale = np.maximum(scale, floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(scale > 0, (long["value"] - med) / scale, np.where(long["value"].notna(), 0.0, np.nan))
    z = np.where(n >= MIN_SCORED, z, np.nan)
    return long.assign(peer_median=med, peer_mad=mad, robust_z=z, percentile=g.rank(pct=True, method="max") * 100,
                       peers=n)


def peer_scores(ind: pd.DataFrame, groups: pd.DataFrame, z_flag: float) -> pd.DataFrame:
    """Long frame: one row per institution, period and rate indicator with its peer position."""
    base = ind[["fixmedins_code", "period", "grain", *RATES]].merge(groups, on="fixmedins_code", how="left")
    long = base.melt(id_vars=["fixmedins_code", "period", "grain", "peer_group", "peer_group_en"],
                     value_vars=list(RATES), var_name="indicator", value_name="value")
    out = _robust(long)
    med = out["peer_median"].where(out["peer_median"] > 0)
    out["ratio_to_median"] = out["value"] / med
    out["flagged"] = out["indicator"].isin(RISKY) & (out["robust_z"] >= z_flag)
    out["explanation_zh"], out["explanation_en"] = "", ""
    flagged = out.index[out["flagged"]]
    if len(flagged):
        texts = [_explain(r) for r in out.loc[flagged].itertuples()]
        out.loc[flagged, "explanation_zh"] = [t[0] for t in texts]
        out.loc[flagged, "explanation_en"] = [t[1] for t in texts]
    return out.sort_values(["grain", "period", "fixmedins_code", "indicator"]).reset_index(drop=True)


def _fmt(v: float) -> str:
    return f"{v:.1%}" if abs(v) < 1 and v != 0 else f"{v:,.4g}"


def _explain(r) -> tuple[str, str]:
    i = BY_NAME[r.indicator]
    pct = f"{r.percentile:.0f}"
    if r.ratio_to_median == r.ratio_to_median:       # not NaN
        zh = (f"{i.zh} {_fmt(r.value)}，为同类机构（{r.peer_group}）中位数 {_fmt(r.peer_median)} 的 "
              f"{r.ratio_to_median:.1f} 倍，位于第 {pct} 百分位（稳健Z={r.robust_z:.1f}）")
        en = (f"{i.en} {r.ratio_to_median:.1f}× the median of {r.peer_group_en} ({_fmt(r.value)} vs "
              f"{_fmt(r.peer_median)}), {pct}th percentile (robust z {r.robust_z:.1f})")
    else:
        zh = (f"{i.zh} {_fmt(r.value)}，同类机构（{r.peer_group}）中位数为 {_fmt(r.peer_median)}，位于第 {pct} 百分位"
              f"（稳健Z={r.robust_z:.1f}）")
        en = (f"{i.en} {_fmt(r.value)} against a median of {_fmt(r.peer_median)} in {r.peer_group_en}, "
              f"{pct}th percentile (robust z {r.robust_z:.1f})")
    return zh, en


def wide_z(scores: pd.DataFrame) -> pd.DataFrame:
    """robust_z per institution and period, one column per indicator (`z_<indicator>`)."""
    w = scores.pivot_table(index=["fixmedins_code", "period", "grain"], columns="indicator", values="robust_z",
                           aggfunc="first", dropna=False)
    w.columns = [f"z_{c}" for c in w.columns]
    return w.reset_index()
