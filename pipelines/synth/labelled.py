"""A real-world-shaped labelled drop for the risk model: visits, settlements, diagnoses and persons only (no
fee lines, no institution register), plus `insp_result` for half of the institutions (issue #16).

Shaped after public provider-fraud claims sets: institution sizes are log-normal and hidden levels (三级 /
二级 / 一级) set cost, admission rate and length of stay; patients mostly visit near home and some visit
many institutions; fraud is more common at large institutions (so sorting by money reimbursed already
ranks them fairly well). A fraudulent institution practises one to three schemes of random strength:
phantom repeat visits, upcoded diagnoses, inflated bills, unneeded admissions, prolonged stays, recruited
patients from far away. A quarter of the institutions, honest or not, have a legitimate specialty that looks
like one scheme (chronic care: many repeat visits; a referral centre: heavy diagnoses, truly costly, and
patients from far; an inpatient-heavy or rehabilitation hospital: many or long stays), so no single indicator
separates fraud. Inspections find 90 % of the fraud and wrongly report 3 % of the honest.

`generate_labelled(out, n_institutions, seed)` writes the drop and `<out>.labels.csv` (every institution's
true outcome and whether its inspection result is in the drop).
"""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

N_DX = 40
SCHEMES = ("phantom", "upcode", "inflate", "admit", "long_stay", "recruit")
#: legitimate specialties, each looking like a scheme: chronic care, referral centre, inpatient-heavy, rehabilitation
PROFILES = ("chronic", "referral", "inpatient", "rehab")


def labels_path(out: Path) -> Path:
    return Path(str(out).rstrip("/") + ".labels.csv")


def _institutions(n: int, rng: np.random.Generator, fraud_rate: float) -> dict:
    level = rng.choice(3, n, p=[0.15, 0.35, 0.5])                        # 0 三级, 1 二级, 2 一级
    size = np.rint(np.exp(rng.normal([6.3, 5.5, 4.6][0], 0.7, n) - np.array([0, 0.8, 1.7])[level])).astype(int) + 20
    logit = -2.2 + 0.9 * (np.log(size) - np.log(size).mean())
    p = 1 / (1 + np.exp(-logit))
    fraud = rng.random(n) < p * fraud_rate / p.mean()
    schemes = np.zeros((n, len(SCHEMES)))
    for i in np.flatnonzero(fraud):
        k = rng.integers(1, 4)
        for s in rng.choice(len(SCHEMES), k, replace=False):
            schemes[i, s] = rng.uniform(0.3, 1.0)                          # strength
    profiles = np.zeros((n, len(PROFILES)))
    special = np.flatnonzero(rng.random(n) < 0.25)
    profiles[special, rng.integers(0, len(PROFILES), len(special))] = rng.uniform(0.3, 1.0, len(special))
    return dict(level=level, size=size, fraud=fraud, schemes=schemes, profiles=profiles,
                cost=np.exp(rng.normal(0, 0.18, n)) * np.array([2.2, 1.4, 0.8])[level],
                pin=np.clip(rng.normal([0.12, 0.09, 0.04][0], 0.02, n) * np.array([1, 0.8, 0.45])[level], 0.005, 0.4),
                los=np.exp(rng.normal(0, 0.15, n)) * np.array([1.1, 1.0, 0.9])[level],
                repeat=np.clip(rng.normal(1.8, 0.35, n), 1.05, None))


def _visits(inst: dict, rng: np.random.Generator, n_persons: int) -> dict:
    n = len(inst["size"])
    sch = {s: inst["schemes"][:, k] for k, s in enumerate(SCHEMES)}
    pro = {s: inst["profiles"][:, k] for k, s in enumerate(PROFILES)}
    home = rng.integers(0, n, n_persons)                                   # each person's nearby institution
    by_home = [np.flatnonzero(home == i) for i in range(n)]
    cols = {k: [] for k in ("inst", "psn", "day", "inpatient", "dx", "cost", "los")}
    dx_w = np.exp(rng.normal(0, 0.6, N_DX))                                # cost weight of each diagnosis group
    dx_p = rng.dirichlet(np.ones(N_DX) * 0.8)
    heavy = np.argsort(dx_w)[-10:]
    for i in range(n):
        persons_n = max(3, int(inst["size"][i] / (inst["repeat"][i] * (1 + 1.0 * pro["chronic"][i]))))
        local = by_home[i] if len(by_home[i]) else rng.integers(0, n_persons, 5)
        far = rng.random(persons_n) < 0.15 + 0.5 * max(sch["recruit"][i], 0.8 * pro["referral"][i])
        pool = np.where(far, rng.integers(0, n_persons, persons_n), rng.choice(local, persons_n))
        nv = int(inst["size"][i] * (1 + 1.2 * sch["phantom"][i]))
        psn = np.r_[pool, rng.choice(pool, max(nv - persons_n, 0))]
        nv = len(psn)
        pin = min(0.6, inst["pin"][i] * (1 + 2.0 * sch["admit"][i] + 1.5 * pro["inpatient"][i]))
        inp = rng.random(nv) < pin
        dx = rng.choice(N_DX, nv, p=dx_p)
        dx = np.where(rng.random(nv) < 0.4 * pro["referral"][i], rng.choice(heavy, nv), dx)   # truly heavy
        up = rng.random(nv) < 0.5 * sch["upcode"][i]
        dx = np.where(up, rng.choice(heavy, nv), dx)
        true_w = np.where(up, dx_w[rng.choice(N_DX, nv, p=dx_p)] * 1.15, dx_w[dx])
        base = np.where(inp, 2500.0, 180.0) * inst["cost"][i] * true_w * np.exp(rng.normal(0, 0.5, nv))
        los = np.where(inp, np.maximum(1, np.rint(rng.gamma(2.5, 2.6, nv) * inst["los"][i]
                                                  * (1 + 0.9 * sch["long_stay"][i] + 0.7 * pro["rehab"][i])
                                                  * np.sqrt(true_w))), 0)
        cost = base * (1 + 0.8 * sch["inflate"][i]) * np.where(inp, 0.6 + 0.4 * los / np.maximum(los.mean(), 1), 1)
        for k, v in zip(cols, (np.full(nv, i), psn, rng.integers(0, 364, nv), inp, dx, cost, los)):
            cols[k].append(v)
    return {k: np.concatenate(v) for k, v in cols.items()}


def _write(path: Path, table: pa.Table) -> None:
    pacsv.write_csv(table, path)


def generate_labelled(out: Path, n_institutions: int = 400, seed: int = 1, year: int = 2023,
                      fraud_rate: float = 0.15, labelled_share: float = 0.5) -> dict:
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    inst = _institutions(n_institutions, rng, fraud_rate)
    n_persons = int(inst["size"].sum() / 2.2)
    v = _visits(inst, rng, n_persons)
    nv = len(v["inst"])
    codes = np.array([f"H{seed % 100:02d}{i:06d}" for i in range(n_institutions)], dtype=object)
    psn_no = np.array([f"P{seed % 100:02d}{p:08d}" for p in range(n_persons)], dtype=object)
    order = np.argsort(v["day"] * 86400 + rng.integers(0, 86400, nv), kind="stable")
    v = {k: a[order] for k, a in v.items()}
    base = np.datetime64(f"{year}-01-01T00:00:00")
    begin = base + (v["day"] * 86400 + rng.integers(8 * 3600, 20 * 3600, nv)).astype("timedelta64[s]")
    end = begin + (v["los"] * 86400 + rng.integers(0, 4 * 3600, nv)).astype("timedelta64[s]")
    ts = lambda a: pa.array(np.datetime_as_string(a, unit="s")).cast(pa.string())
    mid = np.array([f"M{seed % 100:02d}{k:09d}" for k in range(nv)], dtype=object)
    inp = v["inpatient"]
    dx = np.array([f"{chr(65 + d % 20)}{10 + d:02d}.900" for d in v["dx"]], dtype=object)
    phys = np.array([f"D{i:06d}{k:02d}" for i, k in zip(v["inst"], rng.integers(0, 1 + inst["size"][v["inst"]] // 250))],
                    dtype=object)
    cost = np.round(v["cost"], 2)
    fund = np.round(cost * np.where(inp, 0.7, 0.5), 2)
    ownpay = np.round(cost * rng.uniform(0, 0.04, nv), 2)
    _write(out / "mdtrt.csv", pa.table({
        "mdtrt_id": mid, "psn_no": psn_no[v["psn"]], "fixmedins_code": codes[v["inst"]],
        "med_type": np.where(inp, "21", "11"), "begntime": ts(begin),
        "endtime": pa.array(np.where(inp, np.datetime_as_string(end, unit="s"), None)),
        "ipt_days": pa.array(np.where(inp, v["los"], None), pa.int64()).cast(pa.string()),
        "dscg_maindiag_code": np.where(inp, dx, None), "atddr_no": phys}))
    _write(out / "setl.csv", pa.table({
        "setl_id": np.char.add("S", mid.astype(str)), "mdtrt_id": mid, "psn_no": psn_no[v["psn"]],
        "fixmedins_code": codes[v["inst"]], "setl_time": ts(np.where(inp, end, begin)),
        "medfee_sumamt": cost, "fulamt_ownpay_amt": ownpay, "fund_pay_sumamt": fund,
        "psn_pay": np.round(cost - fund, 2)}))
    _write(out / "diag.csv", pa.table({"mdtrt_id": mid, "diag_code": dx, "maindiag_flag": np.full(nv, "1")}))
    birth = base + (-rng.integers(365 * 5, 365 * 85, n_persons) * 86400).astype("timedelta64[s]")
    _write(out / "psn.csv", pa.table({"psn_no": psn_no, "gend": rng.choice(["1", "2"], n_persons),
                                      "brdy": pa.array(np.datetime_as_string(birth, unit="D"))}))
    labelled = rng.random(n_institutions) < labelled_share
    found = np.where(inst["fraud"], rng.random(n_institutions) < 0.9, rng.random(n_institutions) < 0.03)
    li = np.flatnonzero(labelled)
    _write(out / "insp_result.csv", pa.table({
        "fixmedins_code": codes[li], "insp_date": [f"{year + 1}-0{1 + k % 6}-1{k % 9}" for k in range(len(li))],
        "result": found[li].astype(int).astype(str)}))
    with open(labels_path(out), "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["fixmedins_code", "fraud", "labelled", "schemes", "specialty"])
        for i in range(n_institutions):
            w.writerow([codes[i], int(inst["fraud"][i]), int(labelled[i]),
                        "|".join(s for s, x in zip(SCHEMES, inst["schemes"][i]) if x > 0),
                        "|".join(s for s, x in zip(PROFILES, inst["profiles"][i]) if x > 0)])
    return {"visits": nv, "institutions": n_institutions, "persons": n_persons, "fraud": int(inst["fraud"].sum()),
            "labelled": int(labelled.sum())}
