"""`fundguard synth`: a deterministic sample-district drop with an answer key.

`generate(out, scale, seed, year)` writes a landing drop (contract §1–3, canonical English headers, UTF-8
CSV plus one Parquet month of fee_list) into `out`, and the answer key next to it as
`<out>.answer_key.csv`. The key lists, for each of the 21 families of contract §4, one row per record a
correct implementation must flag; nothing else in the drop may be flagged.

Streaming: persons are generated in chunks (numpy, see `background.py`) and appended to the files; only
per institution x item x month billed counts are kept (for the inventory rows), so memory stays bounded
whatever the scale. Same seed, scale and year -> byte-identical files.

Readings of the contract (where the words leave room, this is what the key assumes)
--------------------------------------------------------------------------------
- Fund line: inscp_scp_amt > 0 (we always fill it; chrgitm_lv 03 lines have inscp_scp_amt 0). Every family
  except inventory_shortfall looks at fund lines only, after refund netting, including price_above_cap,
  markup_exceeded, min_interval, bundled_item and charge_outside_stay (so a self-paid line never makes a
  finding), and the restriction families (gender/age/inpatient_only/hosp_level/indication).
- A refund line carries negative amounts (so inscp_scp_amt < 0); whether what it nets is a fund line is
  decided by the original line it cancels, so filters on "fund line" apply after netting, not before.
- Netting: a refund (negative cnt) cancels its cnt and amount from the line named by init_feedetl_sn,
  otherwise from the latest line (by fee_ocur_time) of the same mdtrt_id, hilist_code and date. Refunds are
  always dated the same day as the line they net. A line netted to zero disappears from every family; a
  refund line is never itself a suspect. Suspects are the surviving original lines.
- daily_cap: Σ netted fund cnt per psn, item and date, across all visits and institutions, strictly above
  max_cnt_per_day; the suspects are all surviving fund lines of that psn-item-date.
- per_diem_over_stay: stay days = date(endtime) − date(begntime), at least 1; Σ netted fund cnt of the
  per-diem item in the stay strictly above it; suspects are all surviving fund lines of the item in the stay.
- min_interval: for each fund line, if the same psn had the same item on an earlier date (any institution)
  with (this date − that date) < min_interval_days, this line is a suspect. We never put two such lines on
  one date.
- pay_days_exceeded: distinct dates of the item's fund lines in one stay, ordered; lines on dates ranked
  above max_pay_days are the suspects.
- bundled_item: windows per person — day: same date; visit: same mdtrt_id; hour: |Δ fee_ocur_time| <= 60
  minutes (60 exactly is inside). Either order. The suspect is the line of hilist_code_b.
- duplicate_line: lines equal on mdtrt_id, hilist_code, fee_ocur_time, cnt and pric (after netting, after
  dropping identical re-sent rows, which share their feedetl_sn); all but the smallest feedetl_sn are
  suspects. feedetl_sn are 12-digit numbers without a leading zero, so string and numeric order agree.
- price_above_cap: pric > kb_hilist.pric_uplmt_amt, or pric > fee_list.pric_uplmt_amt when the KB has
  none (we never give both with different values). Equal is not above.
- markup_exceeded: latest `purchase` row of the institution and item with occur_time <= fee_ocur_time;
  pric > that pric x markup_max_ratio (equal is fine); no purchase yet, or no ratio -> not evaluated.
- charge_outside_stay: date(fee_ocur_time) < date(begntime) or > date(endtime), dscg_tkdrug_flag != 1.
- outpatient_during_stay: an outpatient visit whose begntime date is strictly between the admission and
  discharge dates of a stay of the same psn; the outpatient visit is the suspect (period = its begntime).
- after_death: date(begntime) > die_date. The death day itself is not flagged.
- overlapping_stays: stay B admitted after stay A (begntime order) with date(B.begntime) <
  date(A.endtime); B is the suspect. Same admission date never happens in the data.
- split_admission: per psn and institution, stays ordered by begntime; a stay whose immediately preceding
  stay at that institution ended 0..readmit_days days before its admission date (date difference) and has
  the same first 3 characters of the main diagnosis (mdtrt.dscg_maindiag_code = the diag row with
  maindiag_flag 1). 15 days exactly is flagged.
- bed_hanging: calendar days from admission date to discharge date; a day qualifies when it has at least
  one surviving fund line and all its fund lines are med_chrgitm_type 01/02/07; a run of >= 3 consecutive
  qualifying days flags the stay. A day without fund lines breaks the run; self-paid lines are ignored.
- self_pay_ratio: per inpatient settlement (refd_setl_flag 0), fulamt_ownpay_amt / medfee_sumamt > 0.08,
  using the settlement's own amounts (which equal the sums of its lines, refunds included). Exactly 0.08
  is not flagged. Period = setl_time month.
- inventory_shortfall: per institution and item having inv_movement rows; supply to a month's end = the
  earliest stocktake's cnt + purchases − purchase_returns + adjust_in − adjust_out with occur_time from
  that stocktake to the month's end; billed = Σ netted cnt of every fee line (self-paid too) from the
  stocktake to the month's end; every month (of the drop's year) with billed > supply is a key row. Later
  stocktakes, sale and sale_return rows are not supply.
- Ages are completed years at the date of the line; no one in the drop is born on 29 February.
"""
from __future__ import annotations

import csv
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from . import kb as K
from .background import Background
from .case_builder import CaseBuilder
from .cases import Injector
from .drop import DropWriter, Institutions
from .formats import fmt_cnt, fmt_pric
from .persons import persons_table
from .profiles import DX
from . import providers

FAMILIES = ("gender_restricted", "age_restricted", "inpatient_only", "hosp_level_restricted",
            "indication_restricted", "daily_cap", "per_diem_over_stay", "min_interval", "pay_days_exceeded",
            "bundled_item", "duplicate_line", "price_above_cap", "markup_exceeded", "charge_outside_stay",
            "outpatient_during_stay", "after_death", "overlapping_stays", "split_admission", "bed_hanging",
            "self_pay_ratio", "inventory_shortfall")
KEY_COLUMNS = ("family", "grain", "fixmedins_code", "period", "psn_no", "mdtrt_id", "setl_id", "feedetl_sn",
               "hilist_code", "note")
ADMDVS = "330102"
PERSONS_PER_SCALE = 1550
CHUNK = 4000


def answer_key_path(out: Path) -> Path:
    return Path(str(out).rstrip("/") + ".answer_key.csv")


def make_institutions(scale: float, rng: np.random.Generator) -> Institutions:
    n = max(14, int(round(20 * scale ** 0.75)))
    n_pharm = max(3, int(round(0.3 * (n - 11))))
    extra = n - 11 - n_pharm
    levels = [f"{i:02d}" for i in range(1, 11)] + ["11"]
    types = ["1"] * 11
    lv_pool = np.array(["02", "03", "05", "05", "06", "08", "08", "09", "10", "11", "11"])
    levels += list(rng.choice(lv_pool, extra)) + ["11"] * n_pharm
    types += ["1"] * extra + ["2"] * n_pharm
    codes, names, beds, natu = [], [], [], []
    hn = pn = cn = 0
    for lv, ty in zip(levels, types):
        r = K.HOSP_RANK[lv]
        if ty == "2":
            pn += 1
            codes.append(f"P{ADMDVS}{pn:05d}")
            names.append(f"康恒大药房(第{pn}分店)")
            beds.append(0)
        else:
            hn += 1
            codes.append(f"H{ADMDVS}{hn:05d}")
            if r == 1:
                names.append(f"样例市第{hn}人民医院")
                beds.append(int(rng.integers(800, 2000)))
            elif r == 2:
                names.append(f"样例区第{hn}医院")
                beds.append(int(rng.integers(200, 600)))
            elif r == 3:
                names.append(f"样例街道第{hn}社区卫生服务中心")
                beds.append(int(rng.integers(20, 99)))
            else:
                cn += 1
                names.append(f"样例第{hn}社区卫生服务站")
                beds.append(0)
        natu.append("2" if rng.random() < 0.2 else "1")
    return Institutions(code=np.array(codes, dtype=object), name=np.array(names, dtype=object),
                        type_=np.array(types), hosp_lv=np.array(levels), natu=np.array(natu),
                        beds=np.array(beds), admdvs=np.array([ADMDVS] * n))


def tracked_pairs(inst: Institutions, rng: np.random.Generator) -> np.ndarray:
    """(institution, item) pairs with inventory rows: every marked-up drug at pharmacies, marked-up
    consumables and a few drugs at hospitals with beds."""
    t = np.zeros((len(inst), len(K.ITEMS)), dtype=bool)
    for j, it in enumerate(K.ITEMS):
        if not it.markup:
            continue
        t[inst.type_ == "2", j] = it.list_type == "101"
        if it.list_type == "301":
            t[(inst.type_ == "1") & (inst.beds > 0), j] = True
        if it.name in ("注射用头孢曲松钠(1g)", "苯磺酸氨氯地平片", "医用敷料(无菌纱布)"):
            t[(inst.type_ == "1") & (inst.beds > 0), j] = rng.random(int(((inst.type_ == "1") & (inst.beds > 0)).sum())) < 0.6
    return t


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def generate(out: Path, scale: float = 1, seed: int = 7, year: int = 2023) -> dict:
    t0 = time.time()
    out = Path(out)
    K.check_kb()
    rng0 = np.random.default_rng([seed, 0])
    inst = make_institutions(scale, rng0)
    tracked = tracked_pairs(inst, rng0)
    w = DropWriter(out, year, inst, ADMDVS, DX)
    w.write_kb()
    w.write_institutions()
    # ---- injected cases first (their own persons)
    cb = CaseBuilder(w, np.random.default_rng([seed, 2]))
    inj = Injector(cb, inst, tracked, scale)
    inj.run()
    provider_key = providers.plant(w, inst, scale, np.random.default_rng([seed, 4]))   # issue #16
    # ---- background, chunk by chunk
    hosp_out = np.flatnonzero(inst.type_ == "1")
    out_w = np.array([{1: 5.0, 2: 3.0, 3: 2.0, 4: 1.0}[int(r)] for r in inst.rank[hosp_out]])
    bg = Background(w, year, hosp_out, np.flatnonzero(inst.beds > 0), np.flatnonzero(inst.type_ == "2"), out_w)
    n_persons = max(200, int(round(PERSONS_PER_SCALE * scale)))
    n_chunks = (n_persons + CHUNK - 1) // CHUNK
    verbose = scale >= 5
    for c in range(n_chunks):
        n = min(CHUNK, n_persons - c * CHUNK)
        rng = np.random.default_rng([seed, 1, c])
        seq0 = w.seq["psn"]
        b = bg.chunk(seq0, n, rng)
        w.seq["psn"] += n
        w.assign_ids(b)
        w.write(b, persons_table(w, b, rng))
        if verbose and (c % 5 == 4 or c == n_chunks - 1):
            el = time.time() - t0
            lines = w.rows.get("fee_list", 0)
            _log(f"synth: {c + 1}/{n_chunks} chunks, {lines:,} fee lines, {el:.0f} s ({lines / max(el, 1e-9):,.0f} lines/s)")
    # ---- inventory rows and their key rows
    inv_key = write_inventory(w, tracked, inj, np.random.default_rng([seed, 3]))
    w.close()
    key = cb.key_rows + inv_key
    key.sort(key=lambda r: (r["family"], r["fixmedins_code"], r["period"], r["mdtrt_id"], r["feedetl_sn"],
                            r["hilist_code"]))
    providers.write_key(out, provider_key)
    kp = answer_key_path(out)
    with open(kp, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=KEY_COLUMNS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(key)
    per_family = {f: 0 for f in FAMILIES}
    for r in key:
        per_family[r["family"]] += 1
    summary = {"out": str(out), "answer_key": str(kp), "rows": dict(sorted(w.rows.items())),
               "key_rows_per_family": per_family,
               "cases_per_family": {f: inj.counts.get(f, 0) + (len({(r["fixmedins_code"], r["hilist_code"]) for r in inv_key})
                                                                if f == "inventory_shortfall" else 0) for f in FAMILIES},
               "tricky_negatives_per_family": {f: inj.negatives.get(f, 0) for f in FAMILIES}, "institutions": len(inst), "persons": w.seq["psn"],
               "seconds": round(time.time() - t0, 2)}
    return summary


def write_inventory(w: DropWriter, tracked: np.ndarray, inj: Injector, rng: np.random.Generator) -> list[dict]:
    """inv_movement rows for the tracked pairs, built from the billed counts; injected shortfalls; the
    key rows computed from the rows written (contract reading in the module docstring)."""
    kb = w.kb
    billed = np.rint(w.billed).astype(np.int64)                  # inst x item x month, 1e-4 units
    year = w.year
    month_first = [int((np.datetime64(f"{year}-{m:02d}-01") - w.base).astype(int)) for m in range(1, 13)]
    month_last = month_first[1:] + [w.n_days]
    month_last = [x - 1 for x in month_last]
    events: dict[tuple[int, int], list] = {}
    for (i, it, d, sec, p6, c4) in inj.markup_events:
        events.setdefault((i, it), []).append((d, sec, p6, c4))
    pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(tracked))]
    # shortfall injections: pairs with billing
    cand = [(i, j) for i, j in pairs if billed[i, j].sum() > 0]
    n_short = min(len(cand), inj.n_pos + inj.n_neg)
    chosen = rng.choice(len(cand), n_short, replace=False) if n_short else []
    short = {}
    for k, ci in enumerate(chosen):
        i, j = cand[int(ci)]
        months = [m for m in range(12) if billed[i, j, m] > 0]
        m = int(rng.choice(months))
        span = 2 if k % 3 == 2 else 1
        deficit = 0 if k >= inj.n_pos else int(rng.integers(1, 6)) * 10_000   # the n_neg last: exactly level
        if not deficit:
            inj.negatives["inventory_shortfall"] = inj.negatives.get("inventory_shortfall", 0) + 1
        short[(i, j)] = (m, span, deficit)
    all_rows = []   # (i, j, type, c4, p6 or None, day, sec, batch)
    key = []
    for (i, j) in pairs:
        b = billed[i, j]
        if b.sum() == 0 and (i, j) not in events:
            continue
        rows = []
        zero = rng.random() < 0.25
        B = 0 if zero else int(rng.integers(2, 30)) * 10_000
        p6 = int(kb.purch6[j])
        tag = f"{i:04d}{j:03d}"
        rows.append((i, j, "stocktake", B, p6, 0, 0, f"S{tag}00"))
        for m in range(12):
            extra = 0 if zero else int(rng.integers(0, 4)) * 10_000
            q = int(b[m]) + extra
            if q <= 0:
                continue
            ret = int(rng.integers(1, 4)) * 10_000 if (not zero and rng.random() < 0.1) else 0
            rows.append((i, j, "purchase", q + ret, p6, month_first[m], 0, f"B{tag}{m + 1:02d}"))
            if ret:
                rows.append((i, j, "purchase_return", ret, p6, month_first[m] + 19, 10 * 3600, f"R{tag}{m + 1:02d}"))
            if w.inst.type_[i] == "2" and b[m] > 0:
                rows.append((i, j, "sale", int(b[m]), None, month_last[m], 22 * 3600, f"X{tag}{m + 1:02d}"))
        for n_, (d, sec, ep6, c4) in enumerate(events.get((i, j), [])):
            rows.append((i, j, "purchase", c4, ep6, d, sec, f"E{tag}{d:03d}{n_:02d}"))
        # supply and billed per month from the rows so far
        sup = _monthly_supply(rows, w)
        if (i, j) in short:
            m, span, deficit = short[(i, j)]
            cum_b, cum_s = np.cumsum(b), np.cumsum(sup)
            amount = int(cum_s[m] - cum_b[m]) + deficit
            if amount > 0:
                rows.append((i, j, "adjust_out", amount, None, month_first[m] + 27, 12 * 3600, f"A{tag}{m + 1:02d}"))
                if m + span < 12:
                    rows.append((i, j, "adjust_in", amount, None, month_first[m + span], 0, f"A{tag}{m + span + 1:02d}"))
            sup = _monthly_supply(rows, w)
        mid = int(B + np.cumsum(sup)[5] - np.cumsum(b)[5])
        rows.append((i, j, "stocktake", max(mid, 0), p6, month_first[6], 1, f"S{tag}07"))
        all_rows += rows
        over = np.flatnonzero(np.cumsum(b) > np.cumsum(sup))
        assert (i, j) in short or len(over) == 0, (i, j)
        for m in over:
            key.append(dict(family="inventory_shortfall", grain="item-month", fixmedins_code=w.inst.code[i],
                            period=f"{year}-{m + 1:02d}", psn_no="", mdtrt_id="", setl_id="", feedetl_sn="",
                            hilist_code=kb.codes[j], note="billed quantity above stock supplied to the month's end"))
    rows = all_rows
    if rows:
        a = list(zip(*rows))
        ii, jj = np.array(a[0]), np.array(a[1])
        p6 = np.array([x if x is not None else -1 for x in a[4]])
        w.append("inv_movement", {
            "fixmedins_code": w.inst_code.take(pa.array(ii)), "hilist_code": w.item_code.take(pa.array(jj)),
            "mvmt_type": pa.array(list(a[2])), "cnt": fmt_cnt(np.array(a[3])),
            "pric": pa.array([None if x < 0 else s for x, s in zip(p6.tolist(), fmt_pric(np.maximum(p6, 0)).to_pylist())],
                             pa.string()),
            "occur_time": w.ts(np.array(a[5]), np.array(a[6])), "batch_no": pa.array(list(a[7])),
        }, len(rows))
    return key


def _monthly_supply(rows, w) -> np.ndarray:
    """Supply per month by the contract: earliest stocktake + purchases − returns + adjust_in − adjust_out."""
    sup = np.zeros(12, dtype=np.int64)
    st = [r for r in rows if r[2] == "stocktake"]
    t0 = min((r[5], r[6]) for r in st)
    first = [r for r in st if (r[5], r[6]) == t0][0]
    sign = {"purchase": 1, "purchase_return": -1, "adjust_in": 1, "adjust_out": -1}
    for r in rows:
        m = int(w.month_of_day[r[5]])
        if r is first:
            sup[m] += r[3]
        elif r[2] in sign and (r[5], r[6]) >= t0 and m < 12:
            sup[m] += sign[r[2]] * r[3]
    return sup
