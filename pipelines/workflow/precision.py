"""Rule precision from the institutions' answers and the on-site verdicts.

A finding's outcome is its latest answer or verdict (cases.current_cases): positive (confirmed or upheld),
negative (dismissed), pending (disputed, not yet verified), unanswered. Per rule:

    precision       = positive / (positive + negative)              (decided findings only)
    precision_floor = positive / (positive + negative + pending)    (as if every open dispute were won)

A rule with at least `min_decided` decided findings and precision below `min_precision` goes to review.
"""
from __future__ import annotations

import pandas as pd

COLUMNS = ["rule_id", "findings", "confirmed", "upheld", "positive", "negative", "pending", "unanswered",
           "decided", "precision", "precision_floor", "review"]


def rule_precision(cases: pd.DataFrame, *, min_precision: float, min_decided: int) -> pd.DataFrame:
    if cases.empty:
        return pd.DataFrame(columns=COLUMNS)
    c = cases.assign(
        _confirmed=(cases["outcome"] == "positive") & (cases["verdict"] != "upheld"),
        _upheld=cases["verdict"] == "upheld",
        _pos=cases["outcome"] == "positive", _neg=cases["outcome"] == "negative",
        _pend=cases["outcome"] == "pending", _un=cases["outcome"] == "unanswered")
    g = c.groupby("rule_id").agg(findings=("suspect_id", "size"), confirmed=("_confirmed", "sum"),
                                 upheld=("_upheld", "sum"), positive=("_pos", "sum"), negative=("_neg", "sum"),
                                 pending=("_pend", "sum"), unanswered=("_un", "sum")).reset_index()
    g["decided"] = g["positive"] + g["negative"]
    g["precision"] = (g["positive"] / g["decided"]).where(g["decided"] > 0)
    floor_base = g["decided"] + g["pending"]
    g["precision_floor"] = (g["positive"] / floor_base).where(floor_base > 0)
    g["review"] = (g["decided"] >= min_decided) & (g["precision"] < min_precision)
    for col in ("findings", "confirmed", "upheld", "positive", "negative", "pending", "unanswered", "decided"):
        g[col] = g[col].astype(int)
    return g[COLUMNS].sort_values(["review", "precision", "rule_id"], ascending=[False, True, True],
                                  na_position="last").reset_index(drop=True)


def period_step(period: str) -> int:
    """MLflow step of a period, so each rule's precision plots over time: 2023 → 2023, 2023-04 → 202304."""
    return int(period.replace("-", ""))


def tracking_metrics(precision: pd.DataFrame) -> dict[str, float]:
    """Per-rule metrics for MLflow (rules with no decided finding have no precision to log)."""
    from pipelines.tracking import metric_key

    out: dict[str, float] = {}
    for r in precision.itertuples(index=False):
        out[metric_key("findings", "rule", r.rule_id)] = float(r.findings)
        out[metric_key("decided", "rule", r.rule_id)] = float(r.decided)
        if pd.notna(r.precision):
            out[metric_key("precision", "rule", r.rule_id)] = float(r.precision)
        if pd.notna(r.precision_floor):
            out[metric_key("precision_floor", "rule", r.rule_id)] = float(r.precision_floor)
    out["rules_to_review"] = float(precision["review"].sum()) if not precision.empty else 0.0
    return out


def track(lake, conf: dict, period: str, precision: pd.DataFrame) -> str:
    """One MLflow run per period, updated by each report: per-rule precision at step `period_step(period)`;
    returns the run id."""
    from pipelines.tracking import Tracker

    with Tracker(lake, conf, run_name=f"rule precision {period}",
                 tags={"kind": "rule_precision", "period": period}, reuse=True) as t:
        t.log_metrics(tracking_metrics(precision), step=period_step(period))
        t.set_tags({"rules": len(precision),
                    "rules_to_review": ",".join(precision.loc[precision["review"], "rule_id"]) or "-"})
        return t.run_id
