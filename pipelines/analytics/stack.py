"""The size stack (`models.py`'s default candidate), the gradient boosting's bin step and the cross-validation
helpers they share with the model choice: a second stage blending the out-of-fold scores of a model on every
feature and of a model on the size features alone, with the non-negative weight that ranks the labelled
institutions best. Its own module because an estimator class needs scikit-learn at import (`models.py`
imports it lazily, so loading the analytics does not load scikit-learn)."""
from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone


def logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(np.asarray(s, dtype=float), 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


def splits(y: np.ndarray, groups: np.ndarray, folds: int, cv_repeats: int, seed: int):
    """`cv_repeats` × stratified group k-fold (k at most the smaller class's count) train/test indices."""
    from sklearn.model_selection import StratifiedGroupKFold

    k = int(max(2, min(folds, int(np.bincount(y.astype(int)).min()))))
    for r in range(max(1, cv_repeats)):
        yield from StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + r).split(y, y, groups)


def oof(make, X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, cv_repeats: int,
        seed: int) -> np.ndarray:
    """Mean out-of-fold probability of `make(n_train)` over the repeats."""
    out = np.zeros(len(y))
    for tr, te in splits(y, groups, folds, cv_repeats, seed):
        out[te] += make(len(tr)).fit(X[tr], y[tr]).predict_proba(X[te])[:, 1]
    return out / max(1, cv_repeats)


class QuantileBins(TransformerMixin, BaseEstimator):
    """Each column as the number of its bin, with the edges HistGradientBoosting draws without sample weights:
    the midpoints of the distinct values when there are at most `max_bins`, else the data's quantiles
    (`averaged_inverted_cdf`); NaN stays NaN (the booster's missing-value branch). The booster then sees at
    most `max_bins` distinct values per column and splits exactly where it would have split the raw column.

    Why: with class weights (`class_weight="balanced"`), scikit-learn ≥ 1.6 places the bin edges by weighted
    percentiles, one full sort per edge and column (254 sorts per column and fit): on 5,410 institutions it was
    most of the model choice (docs/decisions.md §37). The weights still drive the gradients."""

    def __init__(self, max_bins: int = 255):
        self.max_bins = max_bins

    def fit(self, X, y=None):
        X = np.asarray(X, dtype=float)
        q = np.linspace(0, 100, self.max_bins + 1)[1:-1]
        self.edges_ = []
        for col in X.T:
            x = col[~np.isnan(col)]
            v = np.unique(x)
            self.edges_.append((v[:-1] + v[1:]) / 2 if len(v) <= self.max_bins
                               else np.unique(np.percentile(x, q, method="averaged_inverted_cdf")))
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=float)
        out = np.full(X.shape, np.nan)
        for j, e in enumerate(self.edges_):
            have = ~np.isnan(X[:, j])
            out[have, j] = np.searchsorted(e, X[have, j], side="left")
        return out


#: the size weights tried by the second stage
WEIGHTS = tuple(np.round(np.linspace(0, 1, 11), 2))


def fit_stacker(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """(size weight w, mean, sd): the convex blend (1 − w)·z₀ + w·z₁ of the standardised first-stage logits
    `z` with the highest ROC-AUC on `y` (ties: the smaller w). Weights are never negative: both scores rise
    with risk by construction, and a free logistic second stage fitted on a few dozen noisy positives gave
    size a negative weight on some drops."""
    from sklearn.metrics import roc_auc_score

    mu, sd = z.mean(axis=0), z.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    zs = (z - mu) / sd
    aucs = [roc_auc_score(y, (1 - w) * zs[:, 0] + w * zs[:, 1]) for w in WEIGHTS]
    return float(WEIGHTS[int(np.argmax(aucs))]), mu, sd


def blend(z: np.ndarray, w: float, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """The blended probability (a logistic of the blend of standardised logits)."""
    zs = (z - mu) / sd
    return 1 / (1 + np.exp(-((1 - w) * zs[:, 0] + w * zs[:, 1])))


class SizeStack(ClassifierMixin, BaseEstimator):
    """`model` on every column and `size_model` on the columns `size_idx`, blended by `fit_stacker` on their
    out-of-fold scores. `fit` takes those scores (`base_oof`) when the caller has them, else
    computes them by stratified group k-fold (`groups`: the institution of each row)."""

    def __init__(self, model=None, size_model=None, size_idx: tuple = (), folds: int = 5, cv_repeats: int = 1,
                 seed: int = 0):
        self.model, self.size_model, self.size_idx = model, size_model, size_idx
        self.folds, self.cv_repeats, self.seed = folds, cv_repeats, seed

    def fit(self, X, y, groups=None, base_oof=None):
        X, y = np.asarray(X, dtype=float), np.asarray(y).astype(int)
        XB = X[:, list(self.size_idx)]
        if base_oof is None:
            g = np.arange(len(y)) if groups is None else np.asarray(groups)
            kw = dict(folds=self.folds, cv_repeats=self.cv_repeats, seed=self.seed)
            base_oof = (oof(lambda n: clone(self.model), X, y, g, **kw),
                        oof(lambda n: clone(self.size_model), XB, y, g, **kw))
        self.w_, self.mu_, self.sd_ = fit_stacker(np.c_[logit(base_oof[0]), logit(base_oof[1])], y)
        self.model_ = clone(self.model).fit(X, y)
        self.size_model_ = clone(self.size_model).fit(XB, y)
        self.classes_ = np.array([0, 1])
        return self

    def first_stage(self, X) -> np.ndarray:
        """The two first-stage logits per row (columns: every feature, size features)."""
        X = np.asarray(X, dtype=float)
        return np.c_[logit(self.model_.predict_proba(X)[:, 1]),
                     logit(self.size_model_.predict_proba(X[:, list(self.size_idx)])[:, 1])]

    def predict_proba(self, X):
        s = blend(self.first_stage(X), self.w_, self.mu_, self.sd_)
        return np.c_[1 - s, s]

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)

    @property
    def weights(self) -> dict[str, float]:
        """The second stage's weights of the two standardised logits."""
        return {"all_features": 1 - self.w_, "size": self.w_}
