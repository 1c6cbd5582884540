"""Key drugs and consumables (重点药品耗材监测, gold/item_watch).

The top `top_n` items by fund spend of the base year per district (`admdvs`) and the top `top_n_institution`
per institution; for each of them and each month: fund spend, quantity, month-over-month and year-over-year
growth, and a flag for abnormal growth against the item's own history:

- the item's month is measured as its share of the scope's fund spend that month (district or institution),
  which takes out the seasons and volume swings every item shares;
- baseline: the median share of the previous `window` months (at least `min_history`); growth ratio =
  share / baseline; growth z = (share − baseline) / max(1.4826·MAD, baseline · max(`min_rel_scale`,
  1/√(baseline lines)) — the last term is the counting noise of an item billed a few times a month;
- abnormal when growth ratio ≥ `growth_min` and growth z ≥ `z_min`, and, when the same month of the previous
  year is known, its share grew by `growth_min` against that month too (a peak the item also had a year
  ago is its season, not abnormal growth); and the rise is sustained (the previous month rose too) unless
  this month's growth z reaches `spike_z` (a single noisy month is not abnormal growth).
Drivers of a district row: the institutions whose spend on the item rose most above their own baseline.
Fund spend of a line: `inscp_scp_amt` (符合范围金额); without it, the line's amount unless it is 丙类 (03).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass
class WatchParams:
    top_n: int = 30
    top_n_institution: int = 10
    window: int = 6
    min_history: int = 3
    growth_min: float = 1.5
    z_min: float = 3.0
    min_rel_scale: float = 0.15
    spike_z: float = 6.0


def item_month_sql(have: set[str]) -> str:
    """Fund spend and quantity per institution, district, item and month (views `fee`, `fixmedins`)."""
    dist = ("LEFT JOIN (SELECT fixmedins_code, any_value(admdvs) AS admdvs FROM fixmedins GROUP BY 1) i "
            "USING (fixmedins_code)" if "fixmedins" in have else "")
    adm = "coalesce(i.admdvs, '全部')" if dist else "'全部'"
    return f"""
    SELECT f.fixmedins_code, {adm} AS admdvs, f.hilist_code, any_value(f.hilist_name) AS hilist_name,
           f.period AS month,
           sum(CASE WHEN f.inscp_scp_amt IS NOT NULL THEN f.inscp_scp_amt
                    WHEN coalesce(f.chrgitm_lv, '') <> '03' THEN f.det_item_fee_sumamt ELSE 0 END)::DOUBLE AS amt,
           sum(f.cnt)::DOUBLE AS cnt, count(*)::DOUBLE AS lines
    FROM fee f {dist} GROUP BY ALL"""


def _base_year(months: pd.Series, year: str) -> str:
    prev = str(int(year) - 1)
    return prev if (months.str[:4] == prev).any() else year


def _flags(top: pd.DataFrame, keys: list[str], months: int, p: WatchParams) -> pd.DataFrame:
    """Growth figures of every series (one item in one scope), each with all `months` months (`_complete`):
    the series are rows of a matrix and each month a column, so every figure is computed for all at once."""
    top = top.sort_values([*keys, "hilist_code", "month"]).reset_index(drop=True)
    n = len(top) // months
    sh, ln = top["share"].to_numpy(float).reshape(n, months), top["lines"].to_numpy(float).reshape(n, months)
    amt = top["amt"].to_numpy(float).reshape(n, months)
    base, z, ratio = (np.full((n, months), np.nan) for _ in range(3))
    for t in range(months):
        lo = max(0, t - p.window)
        if t - lo < p.min_history:
            continue
        hist = sh[:, lo:t]
        b = np.median(hist, axis=1)
        poisson = 1 / np.sqrt(np.maximum(np.median(ln[:, lo:t], axis=1), 1.0))
        mad = 1.4826 * np.median(np.abs(hist - b[:, None]), axis=1)
        scale = np.maximum(np.maximum(mad, np.maximum(p.min_rel_scale, poisson) * b), 1e-12)
        base[:, t], z[:, t] = b, (sh[:, t] - b) / scale
        ratio[:, t] = np.where(b > 0, sh[:, t] / np.where(b > 0, b, 1.0), np.inf)

    def shifted(a: np.ndarray, k: int) -> np.ndarray:     # each series' value k months earlier (NaN before)
        out = np.full_like(a, np.nan)
        if k < months:
            out[:, k:] = a[:, :-k]
        return out

    prev, ly_amt, ly = shifted(amt, 1), shifted(amt, 12), shifted(sh, 12)
    with np.errstate(divide="ignore", invalid="ignore"):
        mom = np.where(prev > 0, amt / np.where(prev > 0, prev, 1.0) - 1, np.nan)
        yoy = np.where(ly_amt > 0, amt / np.where(ly_amt > 0, ly_amt, 1.0) - 1, np.nan)
        seasonal_ok = np.isnan(ly) | (sh >= p.growth_min * ly)
        rise = (ratio >= p.growth_min) & (z >= p.z_min) & seasonal_ok
    rose_before = np.zeros_like(rise)
    rose_before[:, 1:] = rise[:, :-1]
    top["mom_growth"], top["yoy_growth"] = mom.ravel(), yoy.ravel()
    top["baseline_share"], top["growth_ratio"], top["growth_z"] = base.ravel(), ratio.ravel(), z.ravel()
    top["abnormal"] = (rise & (rose_before | (z >= p.spike_z))).ravel()
    top["note"] = np.where(np.isnan(ly).ravel(), "无上年同期：按近期基线判断 / no same month last year: recent baseline only",
                           "已对照上年同期 / checked against the same month last year")
    return top


def _complete(df: pd.DataFrame, keys: list[str], months: list[str]) -> pd.DataFrame:
    """Every month for every series (missing months: zero spend)."""
    idx = df[keys].drop_duplicates().merge(pd.DataFrame({"month": months}), how="cross")
    out = idx.merge(df, on=[*keys, "month"], how="left")
    out[["amt", "cnt", "lines"]] = out[["amt", "cnt", "lines"]].fillna(0.0)
    return out


def _scope(im: pd.DataFrame, keys: list[str], n: int, base_year: str, months: list[str], p: WatchParams):
    series = im.groupby([*keys, "hilist_code", "month"], as_index=False)[["amt", "cnt", "lines"]].sum()
    base = series[series["month"].str[:4] == base_year].groupby([*keys, "hilist_code"], as_index=False)["amt"].sum()
    base = base[base["amt"] > 0].sort_values([*keys, "amt", "hilist_code"], ascending=[*[True] * len(keys), False, True])
    base["base_rank"] = base.groupby(keys).cumcount() + 1
    base = base[base["base_rank"] <= n].rename(columns={"amt": "base_fund_amt"})
    total = series.groupby([*keys, "month"], as_index=False)["amt"].sum().rename(columns={"amt": "scope_amt"})
    top = _complete(series.merge(base[[*keys, "hilist_code"]], on=[*keys, "hilist_code"]), [*keys, "hilist_code"],
                    months)
    top = top.merge(total, on=[*keys, "month"], how="left")
    top["share"] = top["amt"] / top["scope_amt"].where(top["scope_amt"] > 0)
    top["share"] = top["share"].fillna(0.0)
    out = _flags(top, keys, len(months), p) if len(top) else top
    return out.merge(base, on=[*keys, "hilist_code"], how="left")


def _drivers(row, inst: pd.DataFrame, p: WatchParams) -> str:
    h = inst[(inst["admdvs"] == row["admdvs"]) & (inst["hilist_code"] == row["hilist_code"])]
    now = h[h["month"] == row["month"]].set_index("fixmedins_code")["amt"]
    prior = h[(h["month"] < row["month"])].sort_values("month").groupby("fixmedins_code").tail(p.window)
    base = prior.groupby("fixmedins_code")["amt"].median()
    inc = (now - base.reindex(now.index).fillna(0.0)).sort_values(ascending=False)
    total = inc[inc > 0].sum()
    out = [{"fixmedins_code": c, "fund_amt": round(float(now[c]), 2), "baseline": round(float(base.get(c, 0.0)), 2),
            "increase": round(float(v), 2), "share_of_increase": round(float(v / total), 3) if total > 0 else None}
           for c, v in inc.head(3).items() if v > 0]
    return json.dumps(out, ensure_ascii=False)


def item_watch(im: pd.DataFrame, year: str, p: WatchParams) -> pd.DataFrame:
    """The watch of every month of `year` (history from every month the data holds)."""
    if not len(im):
        return pd.DataFrame(columns=COLUMNS)
    months = sorted(im["month"].dropna().unique())
    base_year = _base_year(pd.Series(months), year)
    names = im.groupby("hilist_code")["hilist_name"].agg(lambda s: s.dropna().iloc[0] if s.notna().any() else None)
    dist = _scope(im, ["admdvs"], p.top_n, base_year, months, p).assign(scope="district", fixmedins_code=None)
    inst = _scope(im, ["admdvs", "fixmedins_code"], p.top_n_institution, base_year, months, p).assign(scope="institution")
    out = pd.concat([dist, inst], ignore_index=True)
    out = out[out["month"].str[:4] == year].copy()
    out["drivers"] = "[]"
    flagged = out.index[(out["scope"] == "district") & out["abnormal"]]
    if len(flagged):
        out.loc[flagged, "drivers"] = [_drivers(r, im, p) for r in out.loc[flagged].to_dict("records")]
    out["hilist_name"] = out["hilist_code"].map(names)
    out["base_year"] = base_year
    out = out.rename(columns={"month": "period", "amt": "fund_amt"})
    return out[list(COLUMNS)].sort_values(["period", "scope", "admdvs", "fixmedins_code", "base_rank"],
                                          na_position="first").reset_index(drop=True)


COLUMNS = ("period", "scope", "admdvs", "fixmedins_code", "hilist_code", "hilist_name", "base_year", "base_rank",
           "base_fund_amt", "fund_amt", "cnt", "share", "mom_growth", "yoy_growth", "baseline_share",
           "growth_ratio", "growth_z", "abnormal", "drivers", "note")
