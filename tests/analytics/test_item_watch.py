"""Key drugs and consumables (pipelines.analytics.item_watch): growth against each item's own history."""
import json

import pandas as pd

from pipelines.analytics.item_watch import WatchParams, item_watch

MONTHS = [f"{y}-{m:02d}" for y in (2022, 2023) for m in range(1, 13)]


def spend(item: str, month: str) -> float:
    if item == "GROW":       # triples from July 2023 on, and stays there
        return 3000.0 if month >= "2023-07" else 1000.0
    if item == "SEASON":     # every December three times its usual spend
        return 3000.0 if month.endswith("-12") else 1000.0
    if item == "SPIKE":      # one month half again as much, then back
        return 1500.0 if month == "2023-03" else 1000.0
    return {"STABLE": 1000.0, "OTHER": 10000.0}[item]


def item_months() -> pd.DataFrame:
    rows = [{"fixmedins_code": "H1", "admdvs": "110101", "hilist_code": item, "hilist_name": item, "month": m,
             "amt": spend(item, m), "cnt": 10.0, "lines": 1000.0}
            for item in ("GROW", "SEASON", "SPIKE", "STABLE", "OTHER") for m in MONTHS]
    return pd.DataFrame(rows)


def district(watch: pd.DataFrame) -> pd.DataFrame:
    return watch[watch["scope"] == "district"].set_index(["hilist_code", "period"])


def test_sustained_growth_is_flagged_and_a_season_or_a_single_bump_is_not():
    watch = item_watch(item_months(), "2023", WatchParams())
    d = district(watch)
    flagged = set(d.index[d["abnormal"]].get_level_values(0))
    assert flagged == {"GROW"}
    assert d.loc[("GROW", "2023-07"), "abnormal"] and d.loc[("GROW", "2023-07"), "growth_ratio"] > 2
    # December 2023 is like December 2022: its season, compared with the same month last year
    assert d.loc[("SEASON", "2023-12"), "growth_ratio"] > 2
    assert d.loc[("SEASON", "2023-12"), "yoy_growth"] == 0.0
    assert not d.loc[("SEASON", "2023-12"), "abnormal"]
    # one month up by half, not sustained and not a spike far beyond the noise
    assert d.loc[("SPIKE", "2023-03"), "growth_ratio"] >= 1.4 and not d.loc[("SPIKE", "2023-03"), "abnormal"]
    assert d.loc[("GROW", "2023-08"), "mom_growth"] == 0.0 and d.loc[("GROW", "2023-07"), "mom_growth"] == 2.0


def test_drivers_name_the_institution_behind_the_growth_and_every_series_has_every_month():
    watch = item_watch(item_months(), "2023", WatchParams())
    drivers = json.loads(district(watch).loc[("GROW", "2023-07"), "drivers"])
    assert drivers[0]["fixmedins_code"] == "H1" and drivers[0]["increase"] == 2000.0
    assert len(watch) == 2 * 5 * 12          # district and institution scope, five items, twelve months


def test_without_last_year_the_recent_baseline_alone_decides():
    im = item_months()
    watch = item_watch(im[im["month"] >= "2023-01"], "2023", WatchParams())
    d = district(watch)
    assert d["yoy_growth"].isna().all() and d.loc[("GROW", "2023-07"), "abnormal"]
    assert d.loc[("GROW", "2023-02"), "baseline_share"] != d.loc[("GROW", "2023-02"), "baseline_share"]  # NaN: < 3 months
