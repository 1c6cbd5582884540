"""The candidate risk models and their choice by cross-validation on the labelled institutions only.

Candidates (scikit-learn, `class_weight="balanced"`, every step fitted inside the fold):
- `size_stack` (the default): a convex blend of two out-of-fold scores (standardised logits), the
  `hgb_lr_vote` below on every feature and a logistic regression on the size features alone (log volumes and
  volumes against peers: visits, persons, stays, money, physicians, shared patients and physicians, ...).
  Where the indicators' patterns carry the signal it follows the vote; where being big is what matters (fraud in
  public claims sets is, above all, big), the many pattern features cannot dilute size: the blend's
  weight (0 to 1 in steps of 0.1) is the one that ranked the labelled institutions best out-of-fold;
- `hgb_lr_vote`: HistGradientBoosting soft-voting with the logistic regression below;
- `logistic`: median imputation, standard scaling, then clipping to ±`clip` standard deviations (one extreme
  value cannot dominate), L2 logistic regression;
- `hgb_shallow`: a small, strongly regularised HistGradientBoosting (4 leaves, 100 trees).

Every HistGradientBoosting is preceded by `stack.QuantileBins`: its bin edges are the ones it draws without
weights, so class weights do not make it sort every column 254 times.

`select_model` runs `cv_repeats` × stratified group k-fold (by institution) for each candidate (the stack's
second stage is cross-validated on the first stage's out-of-fold scores) and keeps the default (the first)
unless another's ROC-AUC is higher by more than `min_gain`. The out-of-fold scores it returns (the mean over
repeats; each prediction by a model that did not see the institution) are the only scores a labelled
institution gets.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CANDIDATES = ("size_stack", "hgb_lr_vote", "logistic", "hgb_shallow")
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
    from sklearn.pipeline import make_pipeline

    from pipelines.analytics.stack import QuantileBins

    return make_pipeline(QuantileBins(), HistGradientBoostingClassifier(
        max_iter=100 if shallow else p.max_iter, learning_rate=p.learning_rate,
        max_leaf_nodes=4 if shallow else p.max_leaf_nodes, min_samples_leaf=max(3, min(20, n // 15)),
        l2_regularization=5.0 if shallow else 1.0, class_weight="balanced", early_stopping=False,
        random_state=p.seed))


def _vote(p: ModelParams, n: int):
    from sklearn.ensemble import VotingClassifier

    return VotingClassifier([("hgb", _hgb(p, n)), ("lr", _logistic(p))], voting="soft")


def build(name: str, p: ModelParams, n: int, size_idx: tuple = ()):
    """An unfitted candidate; `n` is the number of training rows (sets the trees' smallest leaf);
    `size_idx` the columns of the size features (`size_stack` only)."""
    if name == "logistic":
        return _logistic(p)
    if name == "hgb_shallow":
        return _hgb(p, n, shallow=True)
    if name == "hgb_lr_vote":
        return _vote(p, n)
    if name == "size_stack":
        from pipelines.analytics.stack import SizeStack

        return SizeStack(_vote(p, n), _logistic(p), tuple(int(i) for i in size_idx), p.folds, p.cv_repeats, p.seed)
    raise ValueError(f"unknown risk model {name!r}; known: {', '.join(CANDIDATES)}")


def out_of_fold(name: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, p: ModelParams) -> np.ndarray:
    """Mean out-of-fold probability over `cv_repeats` stratified group k-fold splits."""
    from pipelines.analytics.stack import oof

    return oof(lambda n: build(name, p, n), X, y, groups, p.folds, p.cv_repeats, p.seed)


def _stack_oof(oof_model, oof_size, y, groups, p: ModelParams) -> np.ndarray:
    """The second stage cross-validated on the first stage's out-of-fold scores."""
    from pipelines.analytics.stack import blend, fit_stacker, logit, splits

    z = np.c_[logit(oof_model), logit(oof_size)]
    out = np.zeros(len(y))
    for tr, te in splits(y, groups, p.folds, p.cv_repeats, p.seed + 100):
        out[te] += blend(z[te], *fit_stacker(z[tr], y[tr]))
    return out / max(1, p.cv_repeats)


def select_model(X: np.ndarray, y: np.ndarray, groups: np.ndarray, p: ModelParams, size_idx: tuple = ()):
    """(chosen name, its out-of-fold scores, {candidate: cv ROC-AUC}, the chosen candidate fitted on every
    label). The first candidate is the default; another replaces it only with a cv ROC-AUC higher by more
    than `min_gain` (about one standard error of an AUC on a few hundred noisy labels: a smaller lead is as
    likely noise as skill). Without size columns `size_stack` is not a candidate."""
    from sklearn.metrics import roc_auc_score

    from pipelines.analytics.stack import oof

    cands = [c for c in p.candidates if c != "size_stack" or len(size_idx)]
    oofs = {c: out_of_fold(c, X, y, groups, p) for c in cands if c != "size_stack"}
    base = None
    if "size_stack" in cands:
        vote = oofs["hgb_lr_vote"] if "hgb_lr_vote" in oofs else out_of_fold("hgb_lr_vote", X, y, groups, p)
        size = oof(lambda n: _logistic(p), X[:, list(size_idx)], y, groups, p.folds, p.cv_repeats, p.seed)
        base = (vote, size)
        oofs["size_stack"] = _stack_oof(vote, size, y, groups, p)
    aucs = {c: float(roc_auc_score(y, oofs[c])) for c in cands}
    default = cands[0]
    best = max(cands, key=lambda c: (aucs[c] - (0 if c == default else p.min_gain), -cands.index(c)))
    model = build(best, p, len(y), size_idx)
    model = model.fit(X, y, base_oof=base) if best == "size_stack" else model.fit(X, y)
    return best, oofs[best], aucs, model
