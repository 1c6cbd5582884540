"""`fundguard analyze`: indicators, peer outliers, the item watch and the institution risk of a lake, in one
MLflow run whose id is the `run_id` of every row written.

Reads silver (mdtrt and setl required; diag, fee_list_net, fixmedins, insp_result, kb_param and
gold/suspects when present) and replaces the analysed periods of gold/indicators, gold/peer_outliers,
gold/item_watch and gold/institution_risk. A supervised model is logged and registered in the MLflow Model
Registry (`<model_name>_<grain>`) with its metrics, permutation importances and a model card.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd
import pyarrow as pa

from pipelines import config, contract
from pipelines.analytics import covisit, indicators, io, item_watch, peers, risk
from pipelines.storage import Lake
from pipelines.tracking import Tracker, metric_key

#: types of our own fitted models (skops refuses unknown types)
TRUSTED = ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor", "numpy.clip", "numpy.dtype",
           "sklearn.utils._bunch.Bunch", "pipelines.analytics.stack.SizeStack",
           "pipelines.analytics.stack.QuantileBins"]
RISK_COLUMNS = ("fixmedins_code", "period", "peer_group", "risk_score", "risk_rank", "model_name", "model_version",
                "drivers", "run_id")


@dataclass
class Computed:
    indicators: pd.DataFrame
    peer_scores: pd.DataFrame
    risk: dict[str, risk.RiskResult]
    item_watch: pd.DataFrame | None
    pairs: pa.Table
    groups: pa.Table
    absent: list[str]
    seconds: dict[str, float] = field(default_factory=dict)   # indicators, risk, item_watch


@dataclass
class AnalyzeResult:
    run_id: str
    periods: list[str]
    computed: Computed
    models: dict[str, tuple[str, str]] = field(default_factory=dict)   # grain -> (model_name, model_version)
    versions: dict[str, int | None] = field(default_factory=dict)      # gold table -> version written
    input_versions: dict[str, int] = field(default_factory=dict)


def settings(conf: Mapping | None, kb_param: Mapping[str, str]) -> dict:
    """The analytics settings: conf `analytics.yml`, co-visit thresholds overridden by kb_param."""
    s = dict(conf if conf is not None else config.load("analytics"))
    cv = dict(s.get("covisit") or {})
    for k in ("min_days", "min_ratio"):
        if f"covisit_{k}" in kb_param:
            cv[k] = float(kb_param[f"covisit_{k}"])
    s["covisit"] = cv
    return s


def in_period(periods: pd.Series, period: str | None) -> pd.Series:
    """Rows of the analysed period: a year covers itself and its months; a month only itself."""
    if not period:
        return pd.Series(True, index=periods.index)
    return (periods == period) | (periods.str.startswith(period + "-") if len(period) == 4 else False)


def compute(con, have: set[str], period: str | None, s: Mapping) -> Computed:
    """Every analysis of the registered inputs (pure: the connection's views in, frames out)."""
    t0 = time.perf_counter()
    years = io.years_of(con, period)
    if not years:
        raise contract.UsageError("no visits in the lake (silver/mdtrt is empty) / 没有就诊数据")
    indicators.build_visits(con, have, years)
    have = indicators.present_columns(con, have)   # mdtrt.atddr_no when some visit names a physician
    cv = s.get("covisit") or {}
    pairs = covisit.covisit_pairs(con, int(cv.get("min_days", 4)), float(cv.get("min_ratio", 20)))
    covisit.mark_covisits(con, pairs)
    ind = indicators.compute_indicators(con, have, years).to_pandas()
    ind = ind[in_period(ind["period"], period)].reset_index(drop=True)
    if not len(ind):
        raise contract.UsageError(f"no visits in period {period} / 该期间没有就诊数据")
    fx = con.sql("SELECT * FROM fixmedins").to_df() if "fixmedins" in have else None
    pp = s.get("peers") or {}
    groups = peers.assign_peer_groups(ind["fixmedins_code"].tolist(), fx, int(pp.get("min_peers", 5)))
    scores = peers.peer_scores(ind, groups, float(pp.get("z_flag", 3.0)))
    zw = peers.wide_z(scores)
    feats = risk.feature_frame(ind, zw, groups)
    labels = risk.institution_labels(con.sql("SELECT fixmedins_code, result FROM insp_result").to_df()
                                     if "insp_result" in have else None)
    rp = risk.RiskParams(**{k: v for k, v in (s.get("risk") or {}).items() if k in risk.RiskParams.__annotations__})
    positions = risk.positions_wide(scores)
    t1 = time.perf_counter()
    by_grain = {g: risk.score_grain(feats[feats["grain"] == g], positions, labels, rp)
                for g in ("year", "month") if (feats["grain"] == g).any()}
    t2 = time.perf_counter()
    watch = None
    if "fee" in have:
        im = con.sql(item_watch.item_month_sql(have)).to_df()
        wp = item_watch.WatchParams(**{k: v for k, v in (s.get("item_watch") or {}).items()
                                       if k in item_watch.WatchParams.__annotations__})
        watch = pd.concat([item_watch.item_watch(im, y, wp) for y in years], ignore_index=True)
        if period and len(period) == 7:
            watch = watch[watch["period"] == period].reset_index(drop=True)
    secs = {"indicators": t1 - t0, "risk": t2 - t1, "item_watch": time.perf_counter() - t2}
    return Computed(ind, scores, by_grain, watch, pairs, covisit.covisit_groups(pairs), indicators.absent_inputs(have),
                    secs)


def _kb_param(con, have: set[str]) -> dict[str, str]:
    if "kb_param" not in have:
        return {}
    return {k: v for k, v in con.sql("SELECT key, value FROM kb_param").fetchall()}


def analyze(lake: Lake, period: str | None = None, conf: Mapping | None = None,
            analytics_conf: Mapping | None = None) -> AnalyzeResult:
    """Analyse the lake for `period` (YYYY, YYYY-MM or every year) and write the gold tables."""
    period = contract.check_period(period)
    con = io.connect()
    used = io.register_inputs(con, lake)
    have = io.available(used)
    s = settings(analytics_conf, _kb_param(con, have))
    comp = compute(con, have, period, s)
    periods = sorted(comp.indicators["period"].unique())
    conf = dict(conf if conf is not None else config.load())
    with Tracker(lake, conf, tags={"step": "analyze"}) as t:
        res = AnalyzeResult(t.run_id, periods, comp, input_versions=used)
        _track(t, comp, s, period, used)
        for grain, rr in comp.risk.items():
            res.models[grain] = _register(t, grain, rr, s) if rr.supervised else (risk.UNSUPERVISED, "1")
        res.versions = write(lake, res)
        t.log_params({f"output_version.{k}": v for k, v in res.versions.items()})
    return res


def analyze_published(lake_root: str | Path, period: str | None) -> dict:
    """`analyze` after a publication (the screening DAG's `analyze_period`): a short JSON-able outcome."""
    res = analyze(Lake(lake_root), period)
    return {"run_id": res.run_id, "periods": res.periods, "models": {g: f"{n}/{v}" for g, (n, v) in res.models.items()},
            "output_versions": res.versions, "input_versions": res.input_versions}


def _track(t: Tracker, comp: Computed, s: Mapping, period: str | None, used: Mapping[str, int]) -> None:
    params = {"period": period or "all", "absent_inputs": ",".join(comp.absent) or "none",
              **{f"input_version.{k}": v for k, v in sorted(used.items())}}
    for sect in ("peers", "covisit", "risk", "item_watch"):
        params.update({f"{sect}.{k}": v for k, v in (s.get(sect) or {}).items()})
    t.log_params(params)
    m = {"institutions": comp.indicators["fixmedins_code"].nunique(), "periods": comp.indicators["period"].nunique(),
         "peer_outliers": int(comp.peer_scores["flagged"].sum()), "covisit_pairs": comp.pairs.num_rows,
         "covisit_groups": len(set(comp.groups.column("group_id").to_pylist()))}
    m.update({f"seconds.{k}": v for k, v in comp.seconds.items()})
    if comp.item_watch is not None:
        m["item_watch.abnormal"] = int(comp.item_watch["abnormal"].sum())
    for grain, rr in comp.risk.items():
        m[f"risk.{grain}.supervised"] = int(rr.supervised)
        m[f"risk.{grain}.labelled"] = rr.n_labelled
        m[f"risk.{grain}.positive"] = rr.n_positive
        m.update({metric_key("risk", grain, k): v for k, v in rr.metrics.items()})
    t.log_metrics(m)


def model_card(grain: str, rr: risk.RiskResult, s: Mapping) -> str:
    top = list(rr.importances.items())[:10]
    lines = [f"# 机构风险模型 Institution risk model ({grain})", "",
             "**用途 Intended use**: rank institutions for on-site inspection (重点检查); a score is a priority, "
             "not a finding. Every inspection decision needs the evidence of the suspect list.", "",
             f"**模型 Model**: `{rr.model_kind}` (pipelines/analytics/models.py), chosen by repeated stratified "
             f"group k-fold on the labelled institutions among: "
             + ", ".join(f"{k[len('cv_roc_auc.'):]} cv ROC-AUC {v:.3f}" for k, v in rr.metrics.items()
                         if k.startswith("cv_roc_auc.")) + "; class_weight=balanced, params "
             f"{json.dumps(s.get('risk') or {}, ensure_ascii=False)}", "",
             f"**标签 Labels**: insp_result (1 = violation found at any inspection of the institution); "
             f"{rr.n_labelled} labelled institutions, {rr.n_positive} positive.", "",
             f"**验证 Validation**: stratified group k-fold by institution; cv ROC-AUC "
             f"{rr.metrics.get('cv_roc_auc', float('nan')):.3f}, average precision "
             f"{rr.metrics.get('cv_average_precision', float('nan')):.3f}. Labelled institutions are scored "
             "out-of-fold only.", "",
             f"**特征 Features** ({len(rr.features)}): indicators per institution and period, their robust z "
             "against peers (机构类型 × 医院等级 × 区划), log sizes and sizes against peers.", "",
             "**置换重要性 Permutation importance (ROC-AUC drop)**:", ""]
    lines += [f"- {n}: {v:.4f}" for n, v in top]
    lines += ["", "**局限 Limitations**: labels come from past inspections, which were not drawn at random: the model "
              "learns what inspectors found where they looked. Re-train as outcomes arrive; watch drift of the "
              "indicators; institutions with few visits have noisy indicators."]
    return "\n".join(lines) + "\n"


def _register(t: Tracker, grain: str, rr: risk.RiskResult, s: Mapping) -> tuple[str, str]:
    """Log the fitted model, its card and importances; register a new version; (name, version)."""
    import mlflow.sklearn
    from mlflow.exceptions import MlflowException

    name = f"{s.get('model_name') or 'fundguard_institution_risk'}_{grain}"
    card = model_card(grain, rr, s)
    with tempfile.TemporaryDirectory() as d:
        mdir = Path(d) / "model"
        mlflow.sklearn.save_model(rr.model, str(mdir), skops_trusted_types=TRUSTED)
        (mdir / "model_card.md").write_text(card, encoding="utf-8")
        (mdir / "features.json").write_text(json.dumps(rr.features, ensure_ascii=False), encoding="utf-8")
        t.log_artifact(mdir, f"model_{grain}")
    t.log_dict({"permutation_importance": rr.importances, "metrics": rr.metrics}, f"importance_{grain}.json")
    t.log_metrics({metric_key("importance", grain, k): v for k, v in list(rr.importances.items())[:50]})
    try:
        t.client.create_registered_model(name, description="FundGuard institution risk ranking 机构风险排序")
    except MlflowException:
        pass   # already registered: add a version
    src = f"{t.client.get_run(t.run_id).info.artifact_uri}/model_{grain}"
    mv = t.client.create_model_version(name, src, run_id=t.run_id, description=card)
    t.set_tags({f"model.{grain}": f"{name}/{mv.version}"})
    return name, str(mv.version)


def risk_table(res: AnalyzeResult) -> pd.DataFrame:
    parts = []
    for grain, rr in res.computed.risk.items():
        name, version = res.models[grain]
        df = rr.scores.copy()
        df["model_name"] = name
        df["model_version"] = [f"{version}-oof" if o else version for o in df["oof"]]
        df["run_id"] = res.run_id
        parts.append(df)
    out = pd.concat(parts, ignore_index=True)
    return out[list(RISK_COLUMNS)]


def write(lake: Lake, res: AnalyzeResult) -> dict[str, int | None]:
    """Replace the analysed periods of the gold tables; {table: version written}."""
    c, meta = res.computed, {"run_id": res.run_id}
    ind = c.indicators.assign(run_id=res.run_id)
    out = {io.INDICATORS_TABLE: io.write_periods(lake, io.INDICATORS_TABLE, _arrow(ind), res.periods, meta)}
    ps = c.peer_scores.drop(columns=["peer_group_en"]).assign(run_id=res.run_id)
    out[io.PEER_TABLE] = io.write_periods(lake, io.PEER_TABLE, _arrow(ps), res.periods, meta)
    out[io.RISK_TABLE] = io.write_periods(lake, io.RISK_TABLE, _arrow(risk_table(res)), res.periods, meta)
    if c.item_watch is not None:
        w = c.item_watch.assign(run_id=res.run_id)
        months = sorted(set(w["period"])) or [p for p in res.periods if len(p) == 7]
        out[io.ITEM_WATCH_TABLE] = io.write_periods(lake, io.ITEM_WATCH_TABLE, _arrow(w), months, meta)
    return out


def _arrow(df: pd.DataFrame) -> pa.Table:
    t = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    return t.cast(pa.schema([pa.field(f.name, pa.string() if pa.types.is_null(f.type) else f.type)
                             for f in t.schema]))


def summary(res: AnalyzeResult, top: int = 10) -> str:
    """A short printout: models used, the riskiest institutions of each year, flagged items, tables written."""
    c = res.computed
    lines = [f"分析 analyze: run_id {res.run_id}; periods {res.periods[0]} … {res.periods[-1]} ({len(res.periods)})"]
    if c.absent:
        lines.append(f"缺少输入 absent inputs: {', '.join(c.absent)} (指标为空 / those indicators are null)")
    for grain, (name, version) in res.models.items():
        rr = c.risk[grain]
        how = (f"supervised {rr.model_kind}, {rr.n_labelled} labelled ({rr.n_positive} positive), cv ROC-AUC "
               f"{rr.metrics['cv_roc_auc']:.3f}" if rr.supervised else
               f"unsupervised ({rr.reason})")
        lines.append(f"风险模型 risk model [{grain}]: {name} v{version} — {how}")
    rk = risk_table(res)
    years = sorted(p for p in rk["period"].unique() if len(p) == 4)
    for y in years:
        lines.append(f"\n风险排序 risk ranking {y} (前 {top}):")
        r = rk[rk["period"] == y].sort_values("risk_rank").head(top)
        for row in r.itertuples():
            d = json.loads(row.drivers)
            why = "; ".join(f"{x['label_zh']} z={x['robust_z']}" for x in d) or "-"
            lines.append(f"  {row.risk_rank:>3}  {row.fixmedins_code:<16} {row.risk_score:8.3f}  {row.peer_group}  {why}")
    flagged = int(c.peer_scores["flagged"].sum())
    lines.append(f"\n同类离群 peer outliers: {flagged}; 结伴就医 co-visit pairs: {c.pairs.num_rows}")
    if c.item_watch is not None:
        ab = c.item_watch[c.item_watch["abnormal"] & (c.item_watch["scope"] == "district")]
        items = sorted(set(ab["hilist_code"] + " " + ab["hilist_name"].fillna("")))
        lines.append(f"重点药品耗材异常增长 abnormal growth: {len(items)} items" + (": " + ", ".join(items[:10]) if items else ""))
    lines += [f"写入 wrote {t} (Delta version {v})" for t, v in res.versions.items()]
    return "\n".join(lines)
