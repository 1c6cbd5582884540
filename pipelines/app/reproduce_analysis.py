"""Re-run an analyze run from its recorded inputs (`fundguard reproduce --run-id` of a `fundguard analyze` run).

The MLflow run of `analyze` (tag `step=analyze`) records the period, the Delta version of each input
(`input_version.<table>`) and the version of gold/institution_risk it wrote. The inputs are read by time
travel at those versions, every analysis is computed again (current code and settings, nothing written, no
model registered), and the institution_risk rows compared with what the run wrote: the same institutions
and periods, the same peer group, rank and drivers, and scores equal to `SCORE_TOL`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import pandas as pd
import pyarrow.dataset as pads

from pipelines import config
from pipelines.analytics import io
from pipelines.app import analyze as an
from pipelines.app.reproduce import NotReproducible
from pipelines.storage import Lake

SCORE_TOL = 1e-9
COMPARED = ("peer_group", "risk_score", "risk_rank", "drivers")


@dataclass
class AnalysisReproduction:
    run_id: str
    period: str | None
    risk_version: int | None
    input_versions: dict[str, int]
    recorded: pd.DataFrame
    recomputed: pd.DataFrame
    missing: list[tuple[str, str]] = field(default_factory=list)    # (institution, period) written, not again
    extra: list[tuple[str, str]] = field(default_factory=list)
    changed: list[tuple[str, str, str, object, object]] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.missing or self.extra or self.changed)


def analyze_run_params(lake: Lake, run_id: str, conf: Mapping | None = None) -> dict[str, str] | None:
    """The params of `run_id` when it is an analyze run, else None (not in MLflow, or another step)."""
    from pipelines.tracking import client

    try:
        run = client(lake, dict(conf if conf is not None else config.load())).get_run(run_id)
    except Exception:
        return None
    return dict(run.data.params) if run.data.tags.get("step") == "analyze" else None


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return abs(float(a) - float(b)) <= SCORE_TOL
    return a == b


def compare(recorded: pd.DataFrame, again: pd.DataFrame):
    """(missing, extra, changed) between two institution_risk frames keyed by institution and period."""
    key = ["fixmedins_code", "period"]
    r = recorded.set_index(key)
    a = again.set_index(key)
    missing = sorted(set(r.index) - set(a.index))
    extra = sorted(set(a.index) - set(r.index))
    changed = []
    for k in sorted(set(r.index) & set(a.index)):
        for col in COMPARED:
            x, y = r.at[k, col], a.at[k, col]
            if not _same(x, y):
                changed.append((k[0], k[1], col, x, y))
    return missing, extra, changed


def reproduce_analysis(lake: Lake, run_id: str, params: Mapping[str, str],
                       analytics_conf: Mapping | None = None) -> AnalysisReproduction:
    versions = {k.split(".", 1)[1]: int(v) for k, v in params.items() if k.startswith("input_version.")}
    risk_v = params.get(f"output_version.{io.RISK_TABLE}")
    if not versions or risk_v in (None, "None"):
        raise NotReproducible(f"运行 {run_id} 没有记录输入版本或输出版本 / analyze run {run_id} recorded no input "
                              "or output versions")
    period = None if params.get("period") in (None, "all") else params["period"]
    for table, v in versions.items():
        try:
            lake.delta(table, v)
        except Exception as exc:
            raise NotReproducible(f"输入表 {table} 的版本 {v} 已不可读（可能已被 vacuum）/ input {table} version "
                                  f"{v} can no longer be read (vacuumed?): {exc}") from exc
    recorded = lake.read(io.RISK_TABLE, int(risk_v), filter=pads.field("run_id") == run_id).to_pandas()
    con = io.connect()
    used = io.register_inputs(con, lake, versions)
    missing_inputs = sorted(set(versions) - set(used))
    if missing_inputs:
        raise NotReproducible(f"输入表 {missing_inputs} 已不在数据湖中 / inputs {missing_inputs} are gone from the lake")
    have = io.available(used)
    s = an.settings(analytics_conf, an._kb_param(con, have))
    comp = an.compute(con, have, period, s)
    res = an.AnalyzeResult(run_id, sorted(comp.indicators["period"].unique()), comp, input_versions=used)
    res.models = {g: ("", "") for g in comp.risk}
    again = an.risk_table(res)
    out = AnalysisReproduction(run_id, period, int(risk_v), versions, recorded, again)
    out.missing, out.extra, out.changed = compare(recorded, again)
    return out
