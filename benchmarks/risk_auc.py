"""Institution risk on labelled drops: ROC-AUC of the ranking of the unlabelled half against their true
outcomes, next to sorting by fund paid (issue #16).

    python -m benchmarks.risk_auc [--sizes 400 1000] [--seeds 1 2 3] [--fraud-rate R] [--data data/bench-risk]

For each size and seed: generates (or reuses) a labelled drop (`pipelines.synth.labelled`: visits,
settlements, diagnoses, persons, inspection outcomes for half of the institutions), loads it, computes every
analysis for 2023 as `fundguard analyze` does (nothing written, no MLflow) and prints, for the year model:
the ROC-AUC on the unlabelled half, the same for the month model (an institution's monthly scores averaged),
the money baseline, the cross-validated ROC-AUC of each candidate on the labelled half, the candidate chosen,
the seconds the computation took and the process's peak RSS so far. Without `--fraud-rate` the generator's own
rate is used. The size of the public provider-fraud claims set: `--sizes 5410 --seeds 1 --fraud-rate 0.094`.
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path


def measure(data: Path, n: int, seed: int, fraud_rate: float | None = None) -> dict:
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from pipelines import config
    from pipelines.analytics import io
    from pipelines.app import analyze as an
    from pipelines.app.load import load_drop
    from pipelines.storage import Lake
    from pipelines.synth.labelled import generate_labelled, labels_path

    root = data / (f"n{n}_seed{seed}" + ("" if fraud_rate is None else f"_rate{fraud_rate}"))
    lake = Lake(root / "lake")
    if not lake.exists("silver/setl"):
        rate = {} if fraud_rate is None else {"fraud_rate": fraud_rate}
        generate_labelled(root / "landing", n_institutions=n, seed=seed, **rate)
        load_drop(root / "landing", lake, config.load(), progress=False)
    truth = pd.read_csv(labels_path(root / "landing"), dtype=str).set_index("fixmedins_code")
    con = io.connect()
    have = io.available(io.register_inputs(con, lake))
    t0 = time.perf_counter()
    comp = an.compute(con, have, "2023", an.settings(None, {}))
    rr = comp.risk["year"]
    score = rr.scores.set_index("fixmedins_code")["risk_score"]
    ind = comp.indicators[comp.indicators["period"] == "2023"].set_index("fixmedins_code")
    hidden = [c for c in score.index if truth.loc[c, "labelled"] == "0"]
    y = truth.loc[hidden, "fraud"].astype(int)
    month = comp.risk.get("month")
    month_auc = (roc_auc_score(y, month.scores.groupby("fixmedins_code")["risk_score"].mean().reindex(hidden))
                 if month is not None and month.supervised else float("nan"))
    return {"auc": roc_auc_score(y, score.loc[hidden]), "money": roc_auc_score(y, ind.loc[hidden, "fund_total"]),
            "month_auc": month_auc,
            "chosen": rr.model_kind, "seconds": time.perf_counter() - t0,
            "cv": {k.split(".", 1)[1]: v for k, v in rr.metrics.items() if k.startswith("cv_roc_auc.")}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 1000])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--fraud-rate", type=float, help="the share of fraudulent institutions (default: the generator's)")
    ap.add_argument("--data", type=Path, default=Path("data/bench-risk"))
    args = ap.parse_args(argv)
    print("institutions seed  ROC-AUC  month  money  chosen        cv ROC-AUC per candidate (labelled half)")
    for n in args.sizes:
        for seed in args.seeds:
            m = measure(args.data, n, seed, args.fraud_rate)
            cv = ", ".join(f"{k} {v:.3f}" for k, v in m["cv"].items())
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
            print(f"{n:>12} {seed:>4}  {m['auc']:.3f}   {m['month_auc']:.3f}  {m['money']:.3f}  {m['chosen']:<12}  "
                  f"{cv}  ({m['seconds']:.0f} s, peak RSS {rss:.2f} GB)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
