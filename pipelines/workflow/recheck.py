"""回头看: for problems confirmed or upheld last period, does the same rule still fire at the same
institution this period? Those institutions did not rectify (未整改) and are listed for a re-check."""
from __future__ import annotations

from decimal import Decimal

import pandas as pd

COLUMNS = ["fixmedins_code", "rule_id", "problems_before", "amount_before", "hits_now", "amount_now",
           "rectified"]


def _dec_sum(values) -> Decimal:
    return sum((Decimal(str(v)) for v in values if v is not None and not pd.isna(v)), Decimal(0))


def recheck(previous_cases: pd.DataFrame, current_suspects: pd.DataFrame) -> pd.DataFrame:
    """One row per (institution, rule) with a confirmed/upheld problem last period; `rectified` is False
    when the rule fired again at that institution this period."""
    prev = previous_cases[previous_cases["outcome"] == "positive"] if not previous_cases.empty else previous_cases
    if prev.empty:
        return pd.DataFrame(columns=COLUMNS)
    before = prev.groupby(["fixmedins_code", "rule_id"]).agg(
        problems_before=("suspect_id", "size"), amount_before=("amount", _dec_sum)).reset_index()
    if current_suspects.empty:
        now = pd.DataFrame(columns=["fixmedins_code", "rule_id", "hits_now", "amount_now"])
    else:
        now = current_suspects.groupby(["fixmedins_code", "rule_id"]).agg(
            hits_now=("suspect_id", "size"), amount_now=("amount", _dec_sum)).reset_index()
    out = before.merge(now, on=["fixmedins_code", "rule_id"], how="left")
    out["hits_now"] = out["hits_now"].fillna(0).astype(int)
    out["amount_now"] = [a if isinstance(a, Decimal) else Decimal(0) for a in out["amount_now"]]
    out["rectified"] = out["hits_now"] == 0
    return out[COLUMNS].sort_values(["rectified", "fixmedins_code", "rule_id"]).reset_index(drop=True)


def not_rectified(result: pd.DataFrame) -> list[str]:
    """Institutions to re-check: at least one confirmed problem whose rule still fires."""
    return sorted(set(result.loc[~result["rectified"].astype(bool), "fixmedins_code"]))
