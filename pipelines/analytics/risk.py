"""Institution risk (gold/institution_risk): a supervised model when inspection outcomes label enough
institutions, else an unsupervised composite of peer-outlier scores and rule-hit rates.

- Unsupervised: the mean of the `top_k` highest robust z-scores on the risky side (clipped to [0, 10]) over
  the rate indicators, rule-hit rates (gold/suspects) included when present.
- Supervised: the candidate of `models.py` (by default the size stack: gradient boosting with a logistic
  regression on every feature, next to a logistic regression on the size features alone, weighed by a
  second stage) chosen by cross-validated ROC-AUC on the labelled institutions, on the indicators, their
  peer z-scores, anomaly aggregates (max, sum, mean of the top 3, counts above 2 and 3) and the size
  features: log volumes (visits, persons, stays, money, physicians, diagnosis groups, and the counts derived
  from them in `DERIVED`: outpatient visits, patients and physicians shared with other institutions,
  inpatients, days with visits) and each against its peers (log minus the peer median). An institution with
  a label is scored only out-of-fold (by fold models that did not see it); the others by the chosen candidate
  fitted on every label.
- Label of an institution: 1 when any of its inspections (`insp_result.result`) found a violation, else 0.
One grain (`year` or `month`) at a time; the periods of a grain share one model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipelines.analytics import models
from pipelines.analytics.labels import BY_NAME, INDICATORS, RATES, RISKY
from pipelines.analytics.models import ModelParams

UNSUPERVISED = "unsupervised_peer_composite"
VOLUMES = tuple(i.name for i in INDICATORS if i.volume)
#: counts derived from the indicators (a size a supervisor reads next to the totals), as (name, formula)
DERIVED = {
    "outpatient_visits": lambda f: f["visits"] - f["inpatient_stays"],
    "shared_persons": lambda f: f["shared_patient_share"] * f["persons"],
    "shared_physicians": lambda f: f["shared_physician_share"] * f["physicians"],
    "inpatient_persons": lambda f: (f["inpatient_stays"] / f["stays_per_inpatient"]).fillna(0.0),
    "active_days": lambda f: f["visits"] / f["visits_per_active_day"],
}
SIZE_PREFIXES = ("log_", "rel_")


@dataclass
class RiskParams:
    min_labelled: int = 20
    min_per_class: int = 5
    folds: int = 5
    top_k: int = 3
    seed: int = 0
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 8
    lr_c: float = 0.1     # inverse regularisation of the logistic regression
    cv_repeats: int = 2   # repeated k-fold: the model choice is less of a coin toss on few labels
    candidates: tuple[str, ...] = models.CANDIDATES
    min_gain: float = 0.03
    threads: int = 1      # OpenMP threads of the booster: on a shared machine more threads spin and crawl
    importance_rows: int = 2000   # permutation importances on at most this many labelled rows (a seeded draw)
    min_cv_auc: float = 0.6   # a chosen model whose cv ROC-AUC is below this ranks no better than chance: unsupervised


@dataclass
class RiskResult:
    scores: pd.DataFrame            # fixmedins_code, period, peer_group, risk_score, risk_rank, oof, drivers
    supervised: bool
    model: object | None = None
    model_kind: str = ""            # the candidate chosen by cross-validation (models.CANDIDATES)
    features: list[str] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    importances: dict = field(default_factory=dict)
    n_labelled: int = 0
    n_positive: int = 0
    reason: str = ""                # why the score is unsupervised (empty when supervised)


def institution_labels(insp: pd.DataFrame | None) -> pd.Series:
    """fixmedins_code -> 1 when any inspection found a violation, else 0 (empty without outcomes)."""
    if insp is None or not len(insp):
        return pd.Series(dtype="int64")
    r = pd.to_numeric(insp["result"], errors="coerce")
    return r.groupby(insp["fixmedins_code"]).max().dropna().astype("int64")


def feature_frame(ind: pd.DataFrame, zw: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Model features per institution and period: rates, peer z-scores, log sizes and sizes against peers."""
    f = ind[["fixmedins_code", "period", "grain", *RATES, *VOLUMES]].merge(
        zw, on=["fixmedins_code", "period", "grain"], how="left").merge(groups, on="fixmedins_code", how="left")
    sizes = {**{v: f[v] for v in VOLUMES}, **{n: make(f) for n, make in DERIVED.items()}}
    for v, x in sizes.items():
        lv = np.log1p(x.astype(float).clip(lower=0))
        f[f"log_{v}"] = lv
        f[f"rel_{v}"] = lv - lv.groupby([f["period"], f["peer_group"]]).transform("median")
    z = np.clip(np.nan_to_num(f[[f"z_{c}" for c in RISKY if f"z_{c}" in f.columns]].to_numpy(float)), 0, 10)
    f["anomaly_max"], f["anomaly_sum"] = z.max(axis=1, initial=0.0), z.sum(axis=1)
    f["anomaly_top3"] = np.sort(z, axis=1)[:, -3:].mean(axis=1) if z.shape[1] else 0.0
    f["anomaly_n2"], f["anomaly_n3"] = (z > 2).sum(axis=1), (z > 3).sum(axis=1)
    return f.drop(columns=list(VOLUMES))


def feature_names(f: pd.DataFrame) -> list[str]:
    skip = {"fixmedins_code", "period", "grain", "peer_group", "peer_group_en"}
    return [c for c in f.columns if c not in skip and f[c].notna().any()]


def size_columns(feats: list[str]) -> tuple[int, ...]:
    """Positions of the size features (log volumes and volumes against peers) in `feats`."""
    return tuple(i for i, c in enumerate(feats) if c.startswith(SIZE_PREFIXES))


def unsupervised_scores(f: pd.DataFrame, top_k: int) -> np.ndarray:
    cols = [f"z_{c}" for c in RISKY if f"z_{c}" in f.columns]
    z = f[cols].to_numpy(dtype=float)
    z = np.clip(np.nan_to_num(z, nan=0.0), 0, 10)
    k = min(top_k, z.shape[1])
    return np.sort(z, axis=1)[:, -k:].mean(axis=1) if k else np.zeros(len(f))


def model_params(p: RiskParams) -> ModelParams:
    return ModelParams(seed=p.seed, max_iter=p.max_iter, learning_rate=p.learning_rate,
                       max_leaf_nodes=p.max_leaf_nodes, lr_c=p.lr_c, folds=p.folds, cv_repeats=p.cv_repeats,
                       candidates=tuple(p.candidates), min_gain=p.min_gain)


def supervised_scores(f: pd.DataFrame, y: pd.Series, feats: list[str], p: RiskParams):
    """(scores, out-of-fold mask, fitted model, cv metrics, importances)."""
    from threadpoolctl import threadpool_limits

    import sklearn.ensemble  # noqa: F401  (loaded before the limit: it limits the libraries loaded)

    with threadpool_limits(limits=p.threads):
        return _supervised(f, y, feats, p)


def _supervised(f, y, feats, p):
    from sklearn.inspection import permutation_importance
    from sklearn.metrics import average_precision_score, roc_auc_score

    mp = model_params(p)
    lab = f["fixmedins_code"].isin(y.index).to_numpy()
    X = f[feats].to_numpy(dtype=float)
    yl = f.loc[lab, "fixmedins_code"].map(y).to_numpy().astype(int)
    groups = f.loc[lab, "fixmedins_code"].to_numpy()
    Xl = X[lab]
    name, oof, aucs, model = models.select_model(Xl, yl, groups, mp, size_columns(feats))
    scores = np.full(len(f), np.nan)
    scores[lab] = oof
    if (~lab).any():
        scores[~lab] = model.predict_proba(X[~lab])[:, 1]
    metrics = {"cv_roc_auc": float(roc_auc_score(yl, oof)), "cv_average_precision": float(average_precision_score(yl, oof)),
               "cv_folds": mp.folds, "cv_repeats": mp.cv_repeats, "labelled_rows": int(lab.sum()),
               "positive_rate": float(yl.mean()), **{f"cv_roc_auc.{k}": v for k, v in aucs.items()},
               **{f"stack_weight.{k}": v for k, v in (model.weights if name == "size_stack" else {}).items()}}
    # the importances weigh the drivers; on the month grain (an institution's 12 months) every repeat of every
    # feature predicted all labelled rows: 83 % of an analysis of 5,410 institutions (docs/decisions.md §38)
    pi = permutation_importance(model, Xl, yl, scoring="roc_auc", n_repeats=5, random_state=p.seed,
                                max_samples=min(len(yl), p.importance_rows))
    imp = {n: float(v) for n, v in sorted(zip(feats, pi.importances_mean), key=lambda t: -t[1])}
    return scores, lab, model, name, metrics, imp


def _drivers(row, z_cols: list[str], weights: dict[str, float] | None, n: int = 3) -> str:
    """JSON: the top indicators of a row (by peer z, weighted by model importance when supervised)."""
    cands = []
    for c in z_cols:
        ind = c[2:]
        z = row.get(c)
        if z is None or z != z or z <= 0:
            continue
        w = 1.0 if weights is None else max(weights.get(c, 0.0), 0.0) + max(weights.get(ind, 0.0), 0.0)
        if weights is not None and w <= 0:
            continue
        cands.append((z * w, ind, z))
    cands.sort(reverse=True)
    out = []
    for _, ind, z in cands[:n]:
        i = BY_NAME[ind]
        out.append({"indicator": ind, "label_zh": i.zh, "label_en": i.en, "value": _num(row.get(ind)),
                    "peer_median": _num(row.get(f"med_{ind}")), "percentile": _num(row.get(f"pct_{ind}")),
                    "robust_z": round(float(z), 2)})
    return json.dumps(out, ensure_ascii=False)


def _num(v):
    return None if v is None or v != v else round(float(v), 4)


def score_grain(f: pd.DataFrame, positions: pd.DataFrame, y: pd.Series, p: RiskParams) -> RiskResult:
    """Risk of every row of one grain. `positions`: peer median and percentile per row and indicator."""
    f = f.reset_index(drop=True)
    labelled = y[y.index.isin(f["fixmedins_code"])]
    supervised = (len(labelled) >= p.min_labelled and labelled.value_counts().reindex([0, 1]).fillna(0).min()
                  >= p.min_per_class)
    res = RiskResult(scores=pd.DataFrame(), supervised=bool(supervised), n_labelled=int(len(labelled)),
                     n_positive=int(labelled.sum()) if len(labelled) else 0)
    weights = None
    if supervised:
        res.features = feature_names(f)
        s, lab, res.model, res.model_kind, res.metrics, res.importances = supervised_scores(
            f, labelled, res.features, p)
        weights = res.importances
        if res.metrics["cv_roc_auc"] < p.min_cv_auc:     # the labels teach nothing the model can use
            res.supervised, res.model, weights = False, None, None
            res.reason = (f"the best model ({res.model_kind}) ranked the labelled institutions out-of-fold no better "
                          f"than chance: cv ROC-AUC {res.metrics['cv_roc_auc']:.3f} < {p.min_cv_auc}")
    else:
        res.reason = (f"{res.n_labelled} labelled institutions, {res.n_positive} with a violation: a model needs "
                      f"{p.min_labelled} labelled and {p.min_per_class} of each outcome")
    if not res.supervised:
        s, lab = unsupervised_scores(f, p.top_k), np.zeros(len(f), dtype=bool)
    rows = f.merge(positions, on=["fixmedins_code", "period"], how="left")
    z_cols = [c for c in f.columns if c.startswith("z_")]
    out = f[["fixmedins_code", "period", "peer_group"]].copy()
    out["risk_score"] = s
    out["oof"] = lab
    out["drivers"] = [_drivers(r, z_cols, weights) for r in rows.to_dict("records")]
    out["risk_rank"] = out.groupby("period")["risk_score"].rank(ascending=False, method="first").astype("int64")
    res.scores = out.sort_values(["period", "risk_rank"]).reset_index(drop=True)
    return res


def positions_wide(scores: pd.DataFrame) -> pd.DataFrame:
    """Peer median (`med_<ind>`) and percentile (`pct_<ind>`) per institution and period, for the drivers."""
    w = scores.pivot_table(index=["fixmedins_code", "period"], columns="indicator",
                           values=["peer_median", "percentile"], aggfunc="first")
    w.columns = [f"{'med' if a == 'peer_median' else 'pct'}_{b}" for a, b in w.columns]
    return w.reset_index()
