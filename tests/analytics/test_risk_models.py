"""The model choice and the size stack on tiny generated tables: where being big is the signal, many pattern
features must not dilute it; without size columns the stack is not a candidate; derived size counts."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipelines.analytics import models, risk
from pipelines.analytics.models import ModelParams

P = ModelParams(cv_repeats=1)


def _size_only(n: int, seed: int, noise: int = 60):
    """Rows whose label depends on size only (log volume), next to `noise` uninformative pattern features."""
    rng = np.random.default_rng(seed)
    size = rng.normal(0, 1, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(2.0 * size - 2.0)))).astype(int)
    X = np.c_[size + rng.normal(0, 0.3, n), size + rng.normal(0, 0.3, n), rng.normal(0, 1, (n, noise))]
    return X, y


def test_size_stack_is_not_diluted_by_many_pattern_features():
    X, y = _size_only(200, 1, noise=30)
    Xt, yt = _size_only(1000, 2, noise=30)
    groups = np.arange(len(y))
    name, oof, aucs, model = models.select_model(X, y, groups, P, size_idx=(0, 1))
    assert name == "size_stack" and set(aucs) == set(models.CANDIDATES)
    stack = roc_auc_score(yt, model.predict_proba(Xt)[:, 1])
    vote = roc_auc_score(yt, models.build("hgb_lr_vote", P, len(y)).fit(X, y).predict_proba(Xt)[:, 1])
    size_alone = roc_auc_score(yt, Xt[:, 0])
    assert stack > vote
    assert stack >= size_alone - 0.02
    assert model.weights["size"] > model.weights["all_features"]
    assert len(oof) == len(y) and np.isfinite(oof).all()


def test_without_size_columns_the_stack_is_no_candidate():
    X, y = _size_only(120, 3, noise=5)
    name, _, aucs, model = models.select_model(X, y, np.arange(len(y)), P)
    assert "size_stack" not in aucs and name == "hgb_lr_vote" and hasattr(model, "predict_proba")


def test_stack_fits_its_own_first_stage_when_not_given():
    X, y = _size_only(150, 4, noise=5)
    m = models.build("size_stack", P, len(y), size_idx=(0, 1)).fit(X, y)
    p = m.predict_proba(X)
    assert p.shape == (len(y), 2) and np.allclose(p.sum(axis=1), 1) and set(m.predict(X)) <= {0, 1}


def test_feature_frame_derives_size_counts():
    ind = pd.DataFrame({"fixmedins_code": ["H1", "H2"], "period": "2023", "grain": "year"})
    for c in risk.RATES + risk.VOLUMES:
        ind[c] = np.nan
    # H1: 100 visits of 40 persons, 10 stays of 5 inpatients, a quarter of its patients seen elsewhere, 50 days
    # and 2 of its 8 physicians also attend elsewhere;
    # H2: no stay at all (no inpatients, not a missing count), no physician recorded (atddr_no absent)
    ind[["visits", "persons", "inpatient_stays", "stays_per_inpatient", "shared_patient_share",
         "visits_per_active_day", "physicians", "shared_physician_share"]] = [
        [100, 40, 10, 2.0, 0.25, 2.0, 8, 0.25], [30, 30, 0, np.nan, 0.0, 1.0, np.nan, np.nan]]
    zw = ind[["fixmedins_code", "period", "grain"]]
    groups = pd.DataFrame({"fixmedins_code": ["H1", "H2"], "peer_group": "全部机构", "peer_group_en": "all"})
    f = risk.feature_frame(ind, zw, groups).set_index("fixmedins_code")
    assert np.allclose(np.expm1(f.loc["H1", ["log_outpatient_visits", "log_shared_persons", "log_inpatient_persons",
                                             "log_active_days", "log_shared_physicians"]].astype(float)),
                       [90, 10, 5, 50, 2])
    assert f.loc["H2", "log_inpatient_persons"] == 0 and np.isnan(f.loc["H2", "log_shared_physicians"])
    feats = risk.feature_names(f.reset_index())
    assert all(feats[i].startswith(("log_", "rel_")) for i in risk.size_columns(feats))
    assert {"log_shared_persons", "log_shared_physicians"} <= {feats[i] for i in risk.size_columns(feats)}
    assert {"shared_physician_share", "shared_physician_visit_share"} <= set(risk.RATES) & set(risk.RISKY)


def test_quantile_bins_split_where_the_booster_splits_unweighted():
    """The bin step gives the booster the partition it draws itself without weights: the same predictions on
    columns with many distinct values, few distinct values and missing values."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    from pipelines.analytics.stack import QuantileBins

    rng = np.random.default_rng(5)
    n = 3000
    X = np.c_[rng.lognormal(0, 1, n), rng.integers(0, 7, n).astype(float), rng.normal(0, 1, n)]
    X[rng.random(n) < 0.1, 2] = np.nan
    y = (rng.random(n) < 1 / (1 + np.exp(-(np.log(X[:, 0]) + 0.3 * X[:, 1] - 1)))).astype(int)
    kw = dict(max_iter=30, max_leaf_nodes=8, early_stopping=False, random_state=0)
    raw = HistGradientBoostingClassifier(**kw).fit(X, y).predict_proba(X)[:, 1]
    binned = make_pipeline(QuantileBins(), HistGradientBoostingClassifier(**kw)).fit(X, y).predict_proba(X)[:, 1]
    np.testing.assert_allclose(binned, raw, rtol=1e-9, atol=1e-12)
    bins = QuantileBins(max_bins=16).fit(X)
    out = bins.transform(X)
    assert np.isnan(out[:, 2]).sum() == np.isnan(X[:, 2]).sum()
    assert len(np.unique(out[:, 0])) == 16 and set(np.unique(out[:, 1])) == set(range(7))


def test_importances_on_a_capped_draw_leave_the_scores_alone():
    """`importance_rows` caps the rows the permutation importances predict (they weigh the drivers only): the
    scores stay the same, the informative feature still ranks first, and the figures come from fewer rows."""
    X, y = _size_only(300, 6, noise=4)
    codes = [f"H{i:04d}" for i in range(len(y))]
    f = pd.DataFrame(X, columns=["log_visits", "rel_visits", *(f"noise_{i}" for i in range(4))]).assign(
        fixmedins_code=codes)
    labels = pd.Series(y, index=codes).iloc[:250]          # the last 50 unlabelled
    feats = [c for c in f.columns if c != "fixmedins_code"]
    runs = {cap: risk.supervised_scores(f, labels, feats, risk.RiskParams(candidates=("logistic",), cv_repeats=1,
                                                                         importance_rows=cap))
            for cap in (2000, 60)}
    (s_all, lab, *_, imp_all), (s_cap, _, *_, imp_cap) = runs[2000], runs[60]
    assert np.array_equal(s_all, s_cap) and lab.sum() == 250
    assert list(imp_cap)[0] in {"log_visits", "rel_visits"} and set(imp_cap) == set(imp_all)
    assert imp_cap != imp_all


def _grain(n: int, seed: int):
    """A year grain of `n` institutions: a peer z-score that carries the outcome, and one that does not."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(0, 1, n)
    y = (signal + rng.normal(0, 0.5, n) > 1.0).astype(int)
    codes = [f"H{i:04d}" for i in range(n)]
    f = pd.DataFrame({"fixmedins_code": codes, "period": "2023", "peer_group": "g",
                      "z_cost_per_visit": signal, "z_visits_per_person": rng.normal(0, 1, n),
                      "log_visits": rng.normal(5, 1, n)})
    positions = pd.DataFrame({"fixmedins_code": codes, "period": "2023"})
    return f, positions, pd.Series(y, index=codes)


def test_labels_that_teach_nothing_leave_the_ranking_unsupervised_and_say_why():
    """Outcomes the model ranks no better than chance out-of-fold (shuffled labels) are not used: the risk is
    the unsupervised composite and the reason names the cv ROC-AUC; informative labels are used."""
    p = risk.RiskParams(candidates=("logistic",), cv_repeats=1)
    f, positions, y = _grain(200, 3)
    good = risk.score_grain(f, positions, y.iloc[:150], p)
    assert good.supervised and good.metrics["cv_roc_auc"] >= p.min_cv_auc and good.reason == ""
    noise = pd.Series(np.random.default_rng(9).permutation(y.to_numpy()), index=y.index)
    bad = risk.score_grain(f, positions, noise.iloc[:150], p)
    assert not bad.supervised and bad.model is None and bad.metrics["cv_roc_auc"] < p.min_cv_auc
    assert "no better than chance" in bad.reason
    assert np.allclose(bad.scores.sort_values("fixmedins_code")["risk_score"].to_numpy(),
                       risk.unsupervised_scores(f, p.top_k))
    few = risk.score_grain(f, positions, y.iloc[:12], p)
    assert not few.supervised and "a model needs 20 labelled and 5 of each outcome" in few.reason
