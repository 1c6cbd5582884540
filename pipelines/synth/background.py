"""The background: ordinary, rule-abiding claims of a chunk of persons, generated with numpy.

Every background record is built so that none of the 21 families of contract §4 fires on it (see the
readings in `generator.py`). The construction, in short:

- the year is cut into 22 slots of 16–17 days; a person has at most one visit per slot, inpatient stays
  only in even slots and ending inside their slot, so a person never has two visits on one day, never an
  outpatient visit during a stay, no overlapping stays, and two stays are at least 17 days apart
  (readmit_days is 15);
- lines are drawn from per-diagnosis pools and then *sanitised*: a line that would break a restriction
  (sex, age, inpatient-only, hospital level, indication, pair, min-interval, pay-days) gets the
  unrestricted substitute item of its charge type; one line per visit, day and item; cnt clipped to the
  daily cap; every inpatient day carries a fund-paid drug, so no run of bed/exam/nursing-only days;
  per-diem bed fees exactly once per stay day;
- refunds net partially (with init_feedetl_sn) or fully (extra lines only), re-sent rows are identical,
  and an inpatient stay whose self-paid share would exceed 7 % loses its self-paid lines.
"""
from __future__ import annotations

import numpy as np

from . import kb as K
from .drop import Batch
from .formats import is_tie
from .profiles import CHRONIC, DEPT_OF, DX, INP_CDF, OUT_CDF, PI, PROFILES, Pools, pick

I64 = np.int64
N_SLOTS = 22


def segments_of(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For groups with `counts` members: position of each member inside its group."""
    total = int(counts.sum())
    first = np.repeat(np.cumsum(counts) - counts, counts)
    return np.arange(total) - first


class Background:
    """Generates background batches; holds the context (institutions, kb arrays, pools)."""

    def __init__(self, writer, year: int, inst_home_out, inst_home_inp, inst_pharm, inst_out_w):
        self.w = writer
        self.kb = writer.kb
        self.year = year
        self.n_days = writer.n_days
        self.pools = Pools()
        self.slot_start = np.array([k * self.n_days // N_SLOTS for k in range(N_SLOTS + 1)])
        self.hosp = inst_home_out          # institutions with outpatient service
        self.hosp_inp = inst_home_inp      # institutions with beds
        self.pharm = inst_pharm
        self.out_w = inst_out_w / inst_out_w.sum()
        self.diag_ok = self.kb.diag_ok_matrix([c for c, _ in DX])
        self.md_of_day = np.array([(d.astype(object).month * 100 + d.astype(object).day)
                                   for d in (writer.base + np.arange(self.n_days + 40))])

    # ------------------------------------------------------------------ persons
    def persons(self, seq0: int, n: int, rng) -> dict:
        band = rng.choice(4, n, p=[0.13, 0.42, 0.22, 0.23])
        lo = np.array([0, 15, 50, 65])[band]
        hi = np.array([14, 49, 64, 92])[band]
        age = lo + (rng.random(n) * (hi - lo + 1)).astype(I64)
        gend = rng.integers(1, 3, n)
        by = self.year - 1 - age
        doy = rng.integers(0, 365, n)                       # non-leap calendar, never 29 Feb
        md = np.datetime64("2001-01-01") + doy
        bm = md.astype("datetime64[M]").astype(int) % 12 + 1
        bd = (md - md.astype("datetime64[M]")).astype(int) + 1
        chronic = np.full(n, -1)
        has = rng.random(n) < np.array([0.02, 0.15, 0.45, 0.65])[band]
        cprof = np.array([PI[c] for c in CHRONIC])[rng.choice(len(CHRONIC), n, p=[.3, .22, .15, .06, .09, .08, .1])]
        ok = ~((cprof == PI["prostate"]) & ((gend == 2) | (band < 2)))
        chronic[has & ok] = cprof[has & ok]
        die = np.where(rng.random(n) < 0.006 * (band == 3) + 0.0005, rng.integers(60, self.n_days - 5, n), -9999)
        insu = np.where((band == 1) | (band == 2), np.where(rng.random(n) < 0.6, 310, 390),
                        np.where(band == 3, np.where(rng.random(n) < 0.45, 310, 390), 390))
        return dict(seq=seq0 + np.arange(n), gend=gend, by=by, bm=bm, bd=bd, die=die, insu=insu, band=band,
                    chronic=chronic,
                    home=self.hosp[rng.choice(len(self.hosp), n, p=self.out_w)],
                    homep=self.pharm[rng.integers(0, len(self.pharm), n)])

    # ------------------------------------------------------------------ one chunk
    def chunk(self, seq0: int, n: int, rng) -> Batch:
        kb = self.kb
        ps = self.persons(seq0, n, rng)
        # visit slots
        rate = np.array([0.30, 0.22, 0.33, 0.45])[ps["band"]] + np.where(ps["chronic"] >= 0, 0.12, 0)
        u = rng.random((n, N_SLOTS))
        has = u < rate[:, None]
        slot_end = self.slot_start[1:] - 1
        has &= ~(slot_end[None, :] >= ps["die"][:, None]) | (ps["die"][:, None] < 0)
        pi, slot = np.nonzero(has)
        nv = len(pi)
        band = ps["band"][pi]
        kind_u = rng.random(nv)
        p_inp = np.array([0.03, 0.03, 0.06, 0.12])[band] * 2
        inp = (slot % 2 == 0) & (kind_u < p_inp)
        pharm = ~inp & (kind_u > 0.72)
        # profile and diagnosis
        chronic = ps["chronic"][pi]
        use_chronic = (chronic >= 0) & (rng.random(nv) < 0.6)
        prof = np.where(inp, pick(INP_CDF, band, rng), pick(OUT_CDF, band, rng))
        prof = np.where(use_chronic & ~inp, chronic, prof)
        prof = np.where(inp & use_chronic & np.isin(chronic, [PI["chd"], PI["stroke"], PI["ckd"], PI["dm"]]),
                        chronic, prof)
        gend = ps["gend"][pi]
        age0 = self.year - 1 - ps["by"][pi]
        bad_mat = (prof == PI["maternity"]) & ((gend == 1) | (age0 < 20) | (age0 > 40))
        prof = np.where(bad_mat, PI["resp"], prof)
        bad_pro = (prof == PI["prostate"]) & (gend == 2)
        prof = np.where(bad_pro, PI["resp"], prof)
        dx1 = np.empty(nv, dtype=I64)
        for p in range(len(PROFILES)):
            m = prof == p
            if m.any():
                src = np.where(inp[m], 1, 0)
                o = self.pools.out_dx[p][rng.integers(0, len(self.pools.out_dx[p]), m.sum())]
                i_ = self.pools.inp_dx[p][rng.integers(0, len(self.pools.inp_dx[p]), m.sum())]
                dx1[m] = np.where(src == 1, i_, o)
        cdx = np.array([self.pools.out_dx[c][0] if c >= 0 else -1 for c in range(len(PROFILES))] + [-1])
        dx2 = np.where(chronic >= 0, cdx[chronic], -1)
        dx2 = np.where(dx2 == dx1, -1, dx2)
        # med type, institution
        med = np.where(pharm, 41, np.where(use_chronic & (rng.random(nv) < 0.5), 14,
                                           np.where(rng.random(nv) < 0.12, 13, 11)))
        med = np.where(inp, np.where(rng.random(nv) < 0.12, 24, 21), med)
        med = np.where(inp & (prof == PI["cataract"]), 28, med)
        med = np.where(inp & (prof == PI["maternity"]), 52, med)
        home = ps["home"][pi]
        inst = np.where(rng.random(nv) < 0.8, home, self.hosp[rng.choice(len(self.hosp), nv, p=self.out_w)])
        inst_inp = np.where(np.isin(home, self.hosp_inp) & (rng.random(nv) < 0.7), home,
                            self.hosp_inp[rng.integers(0, len(self.hosp_inp), nv)])
        inst = np.where(inp, inst_inp, inst)
        inst = np.where(pharm, np.where(rng.random(nv) < 0.85, ps["homep"][pi],
                                        self.pharm[rng.integers(0, len(self.pharm), nv)]), inst)
        # dates
        s0, s1 = self.slot_start[slot], self.slot_start[slot + 1] - 1
        lo, hi = self.pools.los[prof, 0], self.pools.los[prof, 1]
        los = np.where(inp, lo + (rng.random(nv) * (hi - lo + 1)).astype(I64), 0)
        los = np.minimum(los, s1 - s0)
        bday = s0 + (rng.random(nv) * (s1 - s0 - los + 1)).astype(I64)
        eday = np.where(inp, bday + los, -1)
        bsec = np.where(inp, 8 * 3600 + rng.integers(0, 10 * 3600, nv), 8 * 3600 + rng.integers(0, 8 * 3600 + 1800, nv))
        esec = np.where(inp, np.where(los == 0, bsec + rng.integers(3 * 3600, 3 * 3600 + 1, nv), 9 * 3600 + rng.integers(0, 9000, nv)), -1)
        dept = np.array([DEPT_OF[p] for p in PROFILES])[prof]
        dept = np.where(band[...] == 0, 3, dept)
        # ---------------------------------------------------------------- lines
        L = {k: [] for k in ("v", "item", "day", "sec", "c4", "role", "tk")}

        def add(v, item, day, role, c4=None, tk=None, sec=None):
            L["v"].append(v)
            L["item"].append(item.astype(np.int32))
            L["day"].append(day)
            L["role"].append(np.full(len(v), role, dtype=np.int8))
            L["c4"].append(c4 if c4 is not None else np.full(len(v), -1, dtype=I64))
            L["tk"].append(tk if tk is not None else np.zeros(len(v), dtype=np.int8))
            L["sec"].append(sec if sec is not None else np.full(len(v), -1, dtype=I64))

        vo = np.flatnonzero(~inp & ~pharm)
        exam = np.where(med[vo] == 13, K.INDEX_OF["急诊诊察费"], K.INDEX_OF["普通门诊诊察费"])
        add(vo, exam, bday[vo], 0)
        k = rng.integers(0, 5, len(vo))
        vv = np.repeat(vo, k)
        add(vv, self.pools.draw("outp", prof[vv], rng), bday[vv], 1)
        vp = np.flatnonzero(pharm)
        k = rng.integers(1, 5, len(vp))
        vv = np.repeat(vp, k)
        add(vv, self.pools.draw("pharm", prof[vv], rng), bday[vv], 1)
        vi = np.flatnonzero(inp)
        nd = los[vi] + 1
        vv = np.repeat(vi, nd)
        day = bday[vv] + segments_of(None, nd)
        struct = (day < eday[vv]) | (los[vv] == 0)
        nurse = np.where(rng.random(len(vi)) < 0.3, K.INDEX_OF["Ⅰ级护理"], K.INDEX_OF["Ⅱ级护理"])
        nurse_v = np.zeros(nv, dtype=I64)
        nurse_v[vi] = nurse
        sv, sd = vv[struct], day[struct]
        add(sv, np.full(len(sv), K.INDEX_OF["普通病房床位费"]), sd, 0, c4=np.full(len(sv), 10_000, dtype=I64))
        add(sv, nurse_v[sv], sd, 0, c4=np.full(len(sv), 10_000, dtype=I64))
        add(sv, np.full(len(sv), K.INDEX_OF["住院诊察费"]), sd, 0, c4=np.full(len(sv), 10_000, dtype=I64))
        add(vv, np.full(len(vv), K.INDEX_OF["氯化钠注射液(0.9% 250ml)"]), day, 0)        # the daily anchor
        n_ex = 2 + rng.poisson(1.3 * nd)
        ve = np.repeat(vi, n_ex)
        add(ve, self.pools.draw("inpp", prof[ve], rng), bday[ve] + (rng.random(len(ve)) * (los[ve] + 1)).astype(I64), 1)
        # surgery
        items, off, ln = self.pools.flat["surg"]
        vs = vi[ln[prof[vi]] > 0]
        vs = vs[rng.random(len(vs)) < 0.75]
        for j in range(int(ln.max())):
            m = ln[prof[vs]] > j
            v2 = vs[m]
            add(v2, items[off[prof[v2]] + j], np.minimum(bday[v2] + 1, eday[v2]), 1,
                c4=np.full(len(v2), 10_000, dtype=I64))
        # 出院带药
        vt = vi[rng.random(len(vi)) < 0.3]
        k = rng.integers(1, 3, len(vt))
        vv = np.repeat(vt, k)
        add(vv, self.pools.draw("pharm", prof[vv], rng), eday[vv], 1, tk=np.ones(len(vv), dtype=np.int8))

        lv_ = np.concatenate(L["v"]).astype(I64)
        item = np.concatenate(L["item"]).astype(I64)
        lday = np.concatenate(L["day"]).astype(I64)
        role = np.concatenate(L["role"])
        c4 = np.concatenate(L["c4"])
        tk = np.concatenate(L["tk"])
        nl = len(lv_)
        # times: within the visit, never before admission, never after 21:59 (nothing billed at night)
        r = rng.random(nl)
        isin = inp[lv_]
        b_s, e_s = bsec[lv_], esec[lv_]
        same = lday == bday[lv_]
        last = lday == eday[lv_]
        sec = np.where(~isin, b_s + 60 + (r * 5400).astype(I64),
                       np.where(same & last, b_s + 60 + (r * np.maximum(e_s - b_s - 120, 1)).astype(I64),
                                np.where(same, b_s + 60 + (r * (21 * 3600 - b_s)).astype(I64),
                                         np.where(last, 7 * 3600 + (r * np.maximum(e_s - 7 * 3600 - 60, 1)).astype(I64),
                                                  7 * 3600 + (r * 14 * 3600).astype(I64)))))
        sec = np.where(role == 0, np.where(~isin, b_s + 30, sec), sec)
        sec = np.minimum(sec, 21 * 3600 + 3599)

        # ---------------------------------------------------------------- sanitise
        vg = ps["gend"][pi][lv_]
        vby, vbm, vbd = ps["by"][pi][lv_], ps["bm"][pi][lv_], ps["bd"][pi][lv_]
        age = self.year - vby - (self.md_of_day[lday] < vbm * 100 + vbd)
        linst = inst[lv_]
        bad = (kb.gend[item] > 0) & (kb.gend[item] != vg)
        bad |= (age < kb.age_min[item]) | (age > kb.age_max[item])
        bad |= kb.ipt_only[item] & ~isin
        bad |= self.w.inst.rank[linst] > kb.hlm[item]
        d1, d2 = dx1[lv_], dx2[lv_]
        bad |= ~(self.diag_ok[item, d1] | self.diag_ok[item, np.where(d2 >= 0, d2, -1)])
        item = np.where(bad, kb.subst[item], item)
        for a, bb in kb.pair_ab:
            with_a = np.zeros(nv, bool)
            with_a[lv_[item == a]] = True
            m = (item == bb) & with_a[lv_]
            item[m] = kb.subst[bb]
        keep = self._first(lv_, lday, item, role)
        lv_, item, lday, role, c4, tk, sec, isin = (x[keep] for x in (lv_, item, lday, role, c4, tk, sec, isin))
        # min interval: once per person and item in the background
        psn = pi[lv_]
        iv = kb.interval[item] > 0
        if iv.any():
            idx = np.flatnonzero(iv)
            o = idx[np.lexsort((sec[idx], lday[idx], item[idx], psn[idx]))]
            first = np.ones(len(o), bool)
            first[1:] = (psn[o][1:] != psn[o][:-1]) | (item[o][1:] != item[o][:-1])
            item[o[~first]] = kb.subst[item[o[~first]]]
        pdays = kb.pay_days[item] > 0
        if pdays.any():
            idx = np.flatnonzero(pdays)
            o = idx[np.lexsort((lday[idx], item[idx], lv_[idx]))]
            grp = np.ones(len(o), bool)
            grp[1:] = (lv_[o][1:] != lv_[o][:-1]) | (item[o][1:] != item[o][:-1])
            gid = np.cumsum(grp) - 1
            rank = np.arange(len(o)) - np.flatnonzero(grp)[gid]
            over = rank >= kb.pay_days[item[o]]
            item[o[over]] = kb.subst[item[o[over]]]
        keep = self._first(lv_, lday, item, role)
        lv_, item, lday, role, c4, tk, sec, isin = (x[keep] for x in (lv_, item, lday, role, c4, tk, sec, isin))
        nl = len(lv_)
        # cnt
        kind = kb.cnt_kind[item]
        r = rng.random(nl)
        drawn = np.select([kind == "box", kind == "vial", kind == "gram", kind == "hour"],
                          [1 + (r * 3).astype(I64), 1 + (r * 3).astype(I64),
                           (10 + (r * 21).astype(I64)) * rng.integers(3, 8, nl), 1 + (r * 12).astype(I64)],
                          1) * 10_000
        c4 = np.where(c4 > 0, c4, drawn)
        cap = kb.max4[item]
        c4 = np.where((cap > 0) & (c4 > cap), cap, c4)
        p6 = kb.pric6[item].copy()
        for _ in range(5):
            t = is_tie(c4, p6)
            if not t.any():
                break
            c4 = np.where(t, np.where(c4 > 10_000, c4 - 10_000, c4 + 10_000), c4)
        assert not is_tie(c4, p6).any()
        lvl = kb.lv[item].astype(np.int8)
        # refunds
        amt = (np.abs(c4) * p6 + 50_000_000) // 100_000_000
        ru = rng.random(nl)
        part = (c4 >= 20_000) & (c4 % 10_000 == 0) & (ru < 0.006)
        full = (role == 1) & (ru > 0.995)
        src = np.concatenate([np.flatnonzero(part), np.flatnonzero(full)])
        rc4 = np.concatenate([np.full(part.sum(), -10_000), -c4[full]])
        rinit = np.concatenate([np.flatnonzero(part),
                                np.where(rng.random(full.sum()) < 0.5, np.flatnonzero(full), -1)])
        rsec = np.minimum(sec[src] + rng.integers(600, 3600, len(src)), 23 * 3600 + 3599)
        lv_ = np.concatenate([lv_, lv_[src]])
        item = np.concatenate([item, item[src]])
        lday = np.concatenate([lday, lday[src]])
        sec = np.concatenate([sec, rsec])
        c4 = np.concatenate([c4, rc4])
        p6 = np.concatenate([p6, p6[src]])
        lvl = np.concatenate([lvl, lvl[src]])
        tk = np.concatenate([tk, tk[src]])
        init = np.concatenate([np.full(nl, -1), rinit])
        isin = np.concatenate([isin, isin[src]])
        amt = (np.abs(c4) * p6 + 50_000_000) // 100_000_000 * np.sign(c4)
        # self-pay share of inpatient stays <= 7 %
        own = np.bincount(lv_, weights=np.where(lvl == 3, amt, 0).astype(float), minlength=nv)
        tot = np.bincount(lv_, weights=amt.astype(float), minlength=nv)
        over = inp & (own * 100 > tot * 7)
        drop = over[lv_] & (lvl == 3)
        if drop.any():
            keep = ~drop
            newpos = np.cumsum(keep) - 1
            init = np.where(init >= 0, newpos[np.maximum(init, 0)], -1)
            lv_, item, lday, sec, c4, p6, lvl, tk, init, isin = (
                x[keep] for x in (lv_, item, lday, sec, c4, p6, lvl, tk, init, isin))
        nl = len(lv_)
        resend = (rng.random(nl) < 0.003) & (c4 > 0)
        cap6 = kb.cap6[item]
        b = Batch(p_seq=ps["seq"], p_gend=ps["gend"], p_by=ps["by"], p_bm=ps["bm"], p_bd=ps["bd"], p_die=ps["die"],
                  p_insu=ps["insu"],
                  v_psn=ps["seq"][pi], v_inst=inst, v_med=med, v_bday=bday, v_bsec=bsec, v_eday=eday,
                  v_esec=esec, v_dx1=dx1, v_dx2=dx2, v_dept=dept,
                  l_v=lv_, l_item=item, l_day=lday, l_sec=sec, l_c4=c4, l_p6=p6, l_lv=lvl, l_init=init,
                  l_tk=tk, l_cap6=cap6, l_resend=resend)
        return b

    @staticmethod
    def _first(v, day, item, role) -> np.ndarray:
        """Keep the first line (structural lines first) per visit, day and item."""
        o = np.argsort(((v.astype(I64) * 512 + day) * 256 + item) * 4 + role, kind="stable")
        first = np.ones(len(o), bool)
        first[1:] = (v[o][1:] != v[o][:-1]) | (day[o][1:] != day[o][:-1]) | (item[o][1:] != item[o][:-1])
        keep = np.zeros(len(v), bool)
        keep[o[first]] = True
        return keep
