"""The candidate risk models and their choice by cross-validation on the labelled institutions only.

Candidates (scikit-learn, `class_weight="balanced"`, every step fitted inside the fold):
- `hgb_lr_vote`: HistGradientBoosting soft-voting with the logistic regression below;
- `logistic`: median imputation, standard scaling, then clipping to ±`clip` standard deviations (one extreme
  value cannot dominate), L2 logistic regression;
- `hgb_shallow`: a small, strongly regularised HistGradientBoosting (4 leaves, 100 trees).

`select_model` runs `cv_repeats` × stratified group k-fold (by institution) for each candidate and keeps
the default (the first) unless another's ROC-AUC is higher by more than `min_gain`. The out-of-fold scores
it returns (the mean over repeats; each prediction by a model that did not see the institution) are the
only scores a labelled institution gets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES = ("hgb_lr_vote", "logistic", "hgb_shallow")
CLIP = 5.0


@dataclass(frozen=True)
class ModelParams:
    seed: int = 0
    max_iter: int = 200
    learning_rate: float = 0.05
    max_leaf_nodes: int = 8
    lr_c: float = 0.1          # inverse regularisation of the logistic regression
    folds: int = 5
    cv_repeats: int = 2
    candidates: tuple[str, ...] = CANDIDATES
    min_gain: float = 0.03     # cv ROC-AUC another candidate must add to replace the first (the default)


def _logistic(p: ModelParams):
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         FunctionTransformer(np.clip, kw_args={"a_min": -CLIP, "a_max": CLIP}),
                         LogisticRegression(C=p.lr_c, class_weight="balanced", max_iter=2000))


def _hgb(p: ModelParams, n: int, shallow: bool = False):
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(
        max_iter=100 if shallow else p.max_iter, learning_rate=p.learning_rate,
        max_leaf_nodes=4 if shallow else p.max_leaf_nodes, min_samples_leaf=max(3, min(20, n // 15)),
        l2_regularization=5.0 if shallow else 1.0, class_weight="balanced", early_stopping=False,
        random_state=p.seed)


def build(name: str, p: ModelParams, n: int):
    """An unfitted candidate; `n` is the number of training rows (sets the trees' smallest leaf)."""
    if name == "logistic":
        return _logistic(p)
    if name == "hgb_shallow":
        return _hgb(p, n, shallow=True)
    if name == "hgb_lr_vote":
        from sklearn.ensemble import VotingClassifier

        return VotingClassifier([("hgb", _hgb(p, n)), ("lr", _logistic(p))], voting="soft")
    raise ValueError(f"unknown risk model {name!r}; known: {', '.join(CANDIDATES)}")


def out_of_fold(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, p: ModelParams) -> np.ndarray:
    """Mean out-of-fold probability over `cv_repeats` stratified group k-fold splits."""
    from sklearn.model_selection import StratifiedGroupKFold

    per_class = int(np.bincount(y.astype(int)).min())
    k = int(max(2, min(p.folds, per_class)))
    oof = np.zeros(len(y))
    for r in range(max(1, p.cv_repeats)):
        cv = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=p.seed + r)
        for tr, te in cv.split(X, y, groups):
            oof[te] += build(name, p, len(tr)).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return oof / max(1, p.cv_repeats)


def select_model(X: np.ndarray, y: np.ndarray, groups: np.ndarray, p: ModelParams):
    """(chosen name, its out-of-fold scores, {candidate: cv ROC-AUC}). The first candidate is the default;
    another replaces it only with a cv ROC-AUC higher by more than `min_gain` (about one standard error of
    an AUC on a few hundred noisy labels: a smaller lead is as likely noise as skill)."""
    from sklearn.metrics import roc_auc_score

    oofs, aucs = {}, {}
    for name in p.candidates:
        oofs[name] = out_of_fold(name, X, y, groups, p)
        aucs[name] = float(roc_auc_score(y, oofs[name]))
    default = p.candidates[0]
    best = max(p.candidates, key=lambda c: (aucs[c] - (0 if c == default else p.min_gain), -p.candidates.index(c)))
    return best, oofs[best], aucs
