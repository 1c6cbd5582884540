"""Injected cases: labelled violations of every contract §4 family, and tricky negatives next to them.

Each case gets persons of its own (never shared with the background or another case), so what a case
injects is exactly what its key rows say. Lines are built one by one in Python (cases are few); they go
through the same `DropWriter.write` as the background.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kb as K
from .background import DXI
from .drop import Batch, DropWriter, persons_table, round_amount

I64 = np.int64
H = 3600


@dataclass
class KeyRef:
    family: str
    grain: str
    note: str
    line: int = -1          # local line index (line grain)
    visit: int = -1         # local visit index (visit grain)


@dataclass
class CaseBuilder:
    w: DropWriter
    rng: np.random.Generator
    key_rows: list = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def __post_init__(self):
        self._reset()
        self.year = self.w.year
        self.n_days = self.w.n_days

    def _reset(self):
        self.P = {k: [] for k in ("seq", "gend", "by", "bm", "bd", "die", "insu")}
        self.V = {k: [] for k in ("psn", "inst", "med", "bday", "bsec", "eday", "esec", "dx1", "dx2", "dept")}
        self.L = {k: [] for k in ("v", "item", "day", "sec", "c4", "p6", "lv", "init", "tk", "cap6", "resend")}
        self.refs: list[KeyRef] = []

    # ------------------------------------------------------------------ building blocks
    def date_of(self, day: int):
        return (self.w.base + day).astype(object)

    def person(self, gend: int | None = None, age: int | None = None, birth: tuple[int, int, int] | None = None,
               die: int | None = None) -> int:
        seq = self.w.seq["psn"]
        self.w.seq["psn"] += 1
        gend = gend or int(self.rng.integers(1, 3))
        if birth is None:
            age = age if age is not None else int(self.rng.integers(25, 60))
            m, d = int(self.rng.integers(1, 13)), int(self.rng.integers(1, 29))
            birth = (self.year - 1 - age, m, d)
        for k, v in zip(("seq", "gend", "by", "bm", "bd", "die", "insu"),
                        (seq, gend, *birth, -9999 if die is None else die, 310 if self.rng.random() < .5 else 390)):
            self.P[k].append(v)
        return seq

    def visit(self, psn, inst, med, bday, bsec, eday=-1, esec=-1, dx="J06.900", dx2=None) -> int:
        for k, v in zip(self.V, (psn, inst, med, bday, bsec, eday, esec, DXI[dx], DXI[dx2] if dx2 else -1, 0)):
            self.V[k].append(v)
        return len(self.V["psn"]) - 1

    def line(self, v, name, day, sec, cnt=1.0, pric=None, lv=None, init=-1, tk=0, cap=None, resend=False) -> int:
        it = K.item(name)
        c4 = int(round(cnt * 10_000))
        p6 = int(self.w.kb.pric6[K.INDEX_OF[name]]) if pric is None else int(round(pric * 1_000_000))
        assert (abs(c4) * p6) % 100_000_000 != 50_000_000, (name, cnt, pric)   # no half-cent ties
        cap6 = int(self.w.kb.cap6[K.INDEX_OF[name]])
        if cap is not None:
            cap6 = int(round(cap * 1_000_000))
        for k, val in zip(self.L, (v, K.INDEX_OF[name], day, sec, c4, p6, lv or int(it.lv), init, tk, cap6, resend)):
            self.L[k].append(val)
        return len(self.L["v"]) - 1

    def refund(self, src: int, cnt: float, sec: int, with_init: bool = True) -> int:
        L = self.L
        name = K.ITEMS[L["item"][src]].name
        return self.line(L["v"][src], name, L["day"][src], sec, cnt=-cnt, pric=L["p6"][src] / 1e6, lv=L["lv"][src],
                         init=src if with_init else -1)

    def out_visit(self, psn, inst, day, dx="J06.900", med=11, sec=None, drug=True, dx2=None) -> int:
        sec = int(self.rng.integers(8 * H, 16 * H)) if sec is None else sec
        v = self.visit(psn, inst, med, day, sec, dx=dx, dx2=dx2)
        if med != 41:
            self.line(v, "急诊诊察费" if med == 13 else "普通门诊诊察费", day, sec + 30)
        if drug:
            self.line(v, "阿莫西林胶囊", day, sec + 300, cnt=1)
        return v

    def stay(self, psn, inst, bday, eday, dx="J18.900", med=21, anchor_days=None, bsec=None, esec=None) -> tuple[int, dict]:
        """A clean stay: bed, Ⅱ级护理 and 住院诊察费 on each day before discharge (one if same-day), and a
        fund-paid drug every day (except days not in anchor_days when given)."""
        bsec = int(self.rng.integers(8 * H, 15 * H)) if bsec is None else bsec
        esec = (int(self.rng.integers(9 * H, 11 * H)) if eday > bday else bsec + 3 * H) if esec is None else esec
        v = self.visit(psn, inst, med, bday, bsec, eday, esec, dx=dx)
        lines = {"bed": [], "nurse": [], "exam": [], "anchor": {}}
        for d in range(bday, eday + 1):
            first = d == bday
            t0 = bsec + 120 if first else 7 * H + 1800
            if d < eday or bday == eday:
                lines["bed"].append(self.line(v, "普通病房床位费", d, t0))
                lines["nurse"].append(self.line(v, "Ⅱ级护理", d, t0 + 60))
                lines["exam"].append(self.line(v, "住院诊察费", d, t0 + 120))
            if anchor_days is None or d in anchor_days:
                lines["anchor"][d] = self.line(v, "氯化钠注射液(0.9% 250ml)", d, t0 + 600, cnt=2)
        return v, lines

    def key_line(self, family, line, note):
        self.refs.append(KeyRef(family, "line", note, line=line))

    def key_visit(self, family, v, note):
        self.refs.append(KeyRef(family, "visit", note, visit=v))

    # ------------------------------------------------------------------ flushing
    def flush(self) -> None:
        if not self.L["v"]:
            return
        a = {k: np.array(v, dtype=I64) for k, v in {**self.P, **self.V, **self.L}.items()}
        b = Batch(p_seq=a["seq"], p_gend=a["gend"], p_by=a["by"], p_bm=a["bm"], p_bd=a["bd"], p_die=a["die"],
                  p_insu=a["insu"], v_psn=a["psn"], v_inst=a["inst"], v_med=a["med"], v_bday=a["bday"],
                  v_bsec=a["bsec"], v_eday=a["eday"], v_esec=a["esec"], v_dx1=a["dx1"], v_dx2=a["dx2"],
                  v_dept=a["dept"], l_v=a["v"], l_item=a["item"], l_day=a["day"], l_sec=a["sec"], l_c4=a["c4"],
                  l_p6=a["p6"], l_lv=a["lv"].astype(np.int8), l_init=a["init"], l_tk=a["tk"].astype(np.int8),
                  l_cap6=a["cap6"], l_resend=a["resend"].astype(bool))
        w = self.w
        w.assign_ids(b)
        w.write(b, persons_table(w, b, self.rng))
        setl_day = w.last_setl[0]
        codes = w.kb.codes
        psn_no = w.psn_no(b.v_psn).to_pylist()
        inst = [w.inst.code[i] for i in b.v_inst]
        for r in self.refs:
            v = r.visit if r.grain == "visit" else int(b.l_v[r.line])
            num = int(w.scramble(np.array([b.v_id[v]]))[0])
            vid, sid = f"MD{self.year}{num:010d}", f"ST{self.year}{num:010d}"
            if r.grain == "line":
                day = int(b.l_day[r.line])
                row = dict(family=r.family, grain="line", fixmedins_code=inst[v], period=self._ym(day),
                           psn_no=psn_no[v], mdtrt_id=vid, setl_id=sid, feedetl_sn=str(int(b.l_sn[r.line]) + 100_000_000_000),
                           hilist_code=codes[int(b.l_item[r.line])], note=r.note)
            else:
                day = int(setl_day[v]) if r.family == "self_pay_ratio" else int(b.v_bday[v])
                row = dict(family=r.family, grain="visit", fixmedins_code=inst[v], period=self._ym(day),
                           psn_no=psn_no[v], mdtrt_id=vid, setl_id=sid if r.family == "self_pay_ratio" else "",
                           feedetl_sn="", hilist_code="", note=r.note)
            self.key_rows.append(row)
        self._reset()

    def _ym(self, day: int) -> str:
        d = self.date_of(day)
        return f"{d.year:04d}-{d.month:02d}"


class Injector:
    """All the case families. `inst` arrays come from the generator."""

    def __init__(self, cb: CaseBuilder, inst, tracked: np.ndarray, scale: float):
        self.cb = cb
        self.rng = cb.rng
        self.inst = inst
        self.tracked = tracked
        self.n_pos = max(4, int(round(8 * scale ** 0.6)))
        self.n_neg = max(3, int(round(4 * scale ** 0.6)))
        self.hospitals = np.flatnonzero(inst.type_ == "1")
        self.wards = np.flatnonzero((inst.type_ == "1") & (inst.beds > 0))
        self.pharmacies = np.flatnonzero(inst.type_ == "2")
        self.markup_events: list[tuple] = []      # (inst, item, day, sec, p6, c4)
        self._markup_used: set = set()
        self.counts: dict[str, int] = {}        # injected positive cases per family
        self.negatives: dict[str, int] = {}     # tricky negative cases per family (not in the key)
        self._cache: dict = {}

    # helpers
    def day(self, lo=3, hi_margin=40) -> int:
        """A day of the year; never 28 or 29 February (birthdays derived from it must exist)."""
        while True:
            d = int(self.rng.integers(lo, self.cb.n_days - hi_margin))
            dt = self.cb.date_of(d)
            if not (dt.month == 2 and dt.day >= 28):
                return d

    def _among(self, pool, ranks) -> int:
        key = (id(pool), ranks)
        c = self._cache.get(key)
        if c is None:
            c = self._cache[key] = [int(i) for i in pool if self.inst.rank[i] in ranks]
        return c[int(self.rng.integers(0, len(c)))]

    def hosp(self, ranks=(1, 2, 3, 4)) -> int:
        return self._among(self.hospitals, ranks)

    def ward(self, ranks=(1, 2, 3)) -> int:
        return self._among(self.wards, ranks)

    def other_hosp(self, not_inst: int) -> int:
        while True:
            i = self.hosp()
            if i != not_inst:
                return i

    def other_ward(self, not_inst: int) -> int:
        c = [i for i in self.wards if i != not_inst]
        return int(self.rng.choice(c))

    def pharmacy(self) -> int:
        return int(self.rng.choice(self.pharmacies))

    def _count(self, family):
        self.counts[family] = self.counts.get(family, 0) + 1

    def run(self, flush_every: int = 300):
        fams = [m for m in dir(self) if m.startswith("fam_")]
        k = 0
        for f in sorted(fams):
            fn = getattr(self, f)
            fam = f[4:].replace("_dialysis", "")
            for i in range(self.n_pos):
                before = len(self.cb.refs) + len(self.cb.key_rows)
                fn(i, True)
                if len(self.cb.refs) + len(self.cb.key_rows) > before:
                    self.counts[fam] = self.counts.get(fam, 0) + 1
                k += 1
                if k % flush_every == 0:
                    self.cb.flush()
            for i in range(0 if f.endswith("_dialysis") else self.n_neg):
                fn(i, False)
                self.negatives[fam] = self.negatives.get(fam, 0) + 1
                k += 1
                if k % flush_every == 0:
                    self.cb.flush()
        self.cb.flush()

    # ================================================================== line families
    def fam_age_restricted(self, i, pos):
        cb = self.cb
        d = self.day()
        date = cb.date_of(d)
        v = i % 3
        if pos:
            if v == 0:     # adult billed a children's granule
                p = cb.person(age=int(self.rng.integers(20, 70)))
                note = "children's drug (age_max 14) for an adult"
                name = "小儿氨酚黄那敏颗粒"
            elif v == 1:   # 15th birthday on the fee date: age 15 > 14
                p = cb.person(birth=(date.year - 15, date.month, date.day))
                note = "age_max 14, patient turns 15 on the fee date"
                name = "小儿氨酚黄那敏颗粒"
            else:          # 65th birthday the day after: still 64 < age_min 65
                nxt = cb.date_of(d + 1)
                p = cb.person(birth=(nxt.year - 65, nxt.month, nxt.day))
                note = "age_min 65, patient is 64 (birthday tomorrow)"
                name = "老年综合评估"
            vis = cb.out_visit(p, self.hosp(), d)
            cb.key_line("age_restricted", cb.line(vis, name, d, 10 * H + 5), note)
        else:
            if v == 0:     # 15th birthday tomorrow: still 14
                nxt = cb.date_of(d + 1)
                p = cb.person(birth=(nxt.year - 15, nxt.month, nxt.day))
                name = "小儿氨酚黄那敏颗粒"
            elif v == 1:   # 65th birthday today: 65 is inside [65, ..]
                p = cb.person(birth=(date.year - 65, date.month, date.day))
                name = "老年综合评估"
            else:          # self-paid, not charged to the fund
                p = cb.person(age=40)
                name = "小儿氨酚黄那敏颗粒"
            vis = cb.out_visit(p, self.hosp(), d)
            cb.line(vis, name, d, 10 * H + 5, lv=3 if v == 2 else None)

    def fam_gender_restricted(self, i, pos):
        cb = self.cb
        d = self.day()
        v = i % 3
        if pos:
            gend, name = [(2, "前列腺特异性抗原测定(PSA)"), (1, "宫颈液基细胞学检查(TCT)"), (1, "缩宫素注射液")][v]
            p = cb.person(gend=gend)
            if v == 2:
                vis, _ = cb.stay(p, self.ward(), d, d + 3, dx="K35.800")
            else:
                vis = cb.out_visit(p, self.hosp(), d)
            cb.key_line("gender_restricted", cb.line(vis, name, d + (1 if v == 2 else 0), 11 * H),
                        f"{name} limited to gend {3 - gend}, patient gend {gend}")
        else:
            if v == 0:
                p = cb.person(gend=1)
                vis = cb.out_visit(p, self.hosp(), d)
                cb.line(vis, "前列腺特异性抗原测定(PSA)", d, 11 * H)
            elif v == 1:   # wrong sex but self-paid
                p = cb.person(gend=2)
                vis = cb.out_visit(p, self.hosp(), d)
                cb.line(vis, "前列腺特异性抗原测定(PSA)", d, 11 * H, lv=3)
            else:
                p = cb.person(gend=2)
                vis = cb.out_visit(p, self.hosp(), d)
                cb.line(vis, "宫颈液基细胞学检查(TCT)", d, 11 * H)

    def fam_inpatient_only(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 3
        if pos:
            if v == 0:
                vis = cb.out_visit(p, self.hosp(), d, med=11)
            elif v == 1:
                vis = cb.out_visit(p, self.pharmacy(), d, med=41)
            else:
                vis = cb.out_visit(p, self.hosp(), d, med=14, dx="I63.900")
            cb.key_line("inpatient_only", cb.line(vis, "低分子量肝素钙注射液", d, 12 * H),
                        f"inpatient-only drug on an outpatient visit (med_type {[11, 41, 14][v]})")
        else:
            med = [52, 28, 24][v]
            if med == 52:
                p = cb.person(gend=2, age=30)
            vis, _ = cb.stay(p, self.ward(), d, d + (1 if med == 28 else 4), med=med,
                             dx={52: "O80.000", 28: "H25.900", 24: "I63.900"}[med])
            cb.line(vis, "低分子量肝素钙注射液", d + 1, 12 * H)

    def fam_hosp_level_restricted(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 3
        if pos:
            inst, name = [(self.hosp((2,)), "冠状动脉CT血管成像(CTA)"),      # needs 三级
                          (self.hosp((3,)), "头颅磁共振平扫(MRI)"),           # needs 二级+
                          (self.hosp((4,)), "头颅磁共振平扫(MRI)")][v]
            inst = int(np.flatnonzero(self.inst.hosp_lv == "05")[0]) if v == 0 and i % 2 == 0 else inst
            vis = cb.out_visit(p, inst, d)
            cb.key_line("hosp_level_restricted", cb.line(vis, name, d, 10 * H),
                        f"{name} at hosp_lv {self.inst.hosp_lv[inst]}")
        else:
            inst, name = [(int(np.flatnonzero(self.inst.hosp_lv == "04")[0]), "冠状动脉CT血管成像(CTA)"),
                          (int(np.flatnonzero(self.inst.hosp_lv == "07")[0]), "头颅磁共振平扫(MRI)"),
                          (self.hosp((4,)), "头颅磁共振平扫(MRI)")][v]
            vis = cb.out_visit(p, inst, d)
            cb.line(vis, name, d, 10 * H, lv=3 if v == 2 else None)

    def fam_indication_restricted(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person(age=55)
        v = i % 4
        if pos:
            name, dx = [("重组人促红素注射液", "N17.900"), ("血塞通软胶囊", "J06.900"),
                        ("门冬胰岛素注射液", "I10.x00"), ("硫酸氢氯吡格雷片", "I25.200")][v]
            vis = cb.out_visit(p, self.hosp(), d, dx=dx)
            cb.key_line("indication_restricted", cb.line(vis, name, d, 10 * H), f"{name} without a listed diagnosis ({dx})")
        else:
            name, dx, dx2 = [("重组人促红素注射液", "J18.900", "N18.500"), ("硫酸氢氯吡格雷片", "I25.100", None),
                             ("门冬胰岛素注射液", "E11.900", None), ("血塞通软胶囊", "J06.900", None)][v]
            vis = cb.out_visit(p, self.hosp(), d, dx=dx, dx2=dx2)
            cb.line(vis, name, d, 10 * H, lv=3 if v == 3 else None)

    def fam_daily_cap(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 5
        if pos:
            if v == 0:     # two lines, same visit: 2 + 3 > 4
                vis = cb.out_visit(p, self.hosp(), d)
                ls = [cb.line(vis, "注射用头孢曲松钠(1g)", d, 9 * H, cnt=2), cb.line(vis, "注射用头孢曲松钠(1g)", d, 15 * H, cnt=3)]
            elif v == 1:   # two visits at two institutions on one day: 2 + 2 > 3
                a = self.hosp()
                b = self.other_hosp(a)
                v1, v2 = cb.out_visit(p, a, d, sec=8 * H), cb.out_visit(p, b, d, sec=14 * H)
                ls = [cb.line(v1, "肌肉注射", d, 9 * H, cnt=2), cb.line(v2, "肌肉注射", d, 15 * H, cnt=2)]
            elif v == 2:   # one line over the cap
                vis = cb.out_visit(p, self.hosp(), d)
                ls = [cb.line(vis, "注射用头孢曲松钠(1g)", d, 10 * H, cnt=5)]
            elif v == 3:   # still over after a partial refund: 6 - 1 = 5 > 4
                vis = cb.out_visit(p, self.hosp(), d)
                ls = [cb.line(vis, "注射用头孢曲松钠(1g)", d, 10 * H, cnt=6)]
                cb.refund(ls[0], 1, 11 * H)
            else:          # oxygen in a stay, 13 + 13 hours > 24
                vis, _ = cb.stay(p, self.ward(), d, d + 3)
                ls = [cb.line(vis, "吸氧", d + 1, 8 * H, cnt=13), cb.line(vis, "吸氧", d + 1, 20 * H, cnt=13)]
            for ln in ls:
                cb.key_line("daily_cap", ln, "daily quantity above max_cnt_per_day")
        else:
            vis = cb.out_visit(p, self.hosp(), d)
            if v == 0:     # exactly the cap
                cb.line(vis, "注射用头孢曲松钠(1g)", d, 9 * H, cnt=2)
                cb.line(vis, "注射用头孢曲松钠(1g)", d, 15 * H, cnt=2)
            elif v == 1:   # over only before netting: 3 + 3 - 2 = 4
                cb.line(vis, "注射用头孢曲松钠(1g)", d, 9 * H, cnt=3)
                second = cb.line(vis, "注射用头孢曲松钠(1g)", d, 15 * H, cnt=3)
                cb.refund(second, 2, 16 * H)
            elif v == 2:   # a refund without init_feedetl_sn nets the latest line of the day
                cb.line(vis, "肌肉注射", d, 9 * H, cnt=2)
                cb.line(vis, "肌肉注射", d, 10 * H, cnt=2)
                cb.refund(len(cb.L["v"]) - 1, 1, 12 * H, with_init=False)
            elif v == 3:   # the extra units are self-paid
                cb.line(vis, "注射用头孢曲松钠(1g)", d, 9 * H, cnt=3)
                cb.line(vis, "注射用头孢曲松钠(1g)", d, 15 * H, cnt=2, lv=3)
            else:          # 3 today, 3 tomorrow
                cb.line(vis, "肌肉注射", d, 9 * H, cnt=3)
                v2 = cb.out_visit(p, self.hosp(), d + 1)
                cb.line(v2, "肌肉注射", d + 1, 9 * H, cnt=3)

    def fam_per_diem_over_stay(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 3
        if pos:
            if v == 2:     # same-day stay billed two bed-days
                vis = cb.visit(p, self.ward(), 21, d, 9 * H, d, 17 * H, dx="K29.700")
                bed = cb.line(vis, "普通病房床位费", d, 9 * H + 120, cnt=2)
                cb.line(vis, "氯化钠注射液(0.9% 250ml)", d, 10 * H, cnt=1)
                cb.key_line("per_diem_over_stay", bed, "2 bed-days billed for a same-day stay (1 day)")
                return
            los = int(self.rng.integers(3, 8))
            vis, ls = cb.stay(p, self.ward(), d, d + los)
            if v == 0:     # bed fee also on the discharge day
                ls["bed"].append(cb.line(vis, "普通病房床位费", d + los, 8 * H))
            else:          # one day billed twice
                ls["bed"].append(cb.line(vis, "普通病房床位费", d + 1, 18 * H))
            for ln in ls["bed"]:
                cb.key_line("per_diem_over_stay", ln, f"{los + 1} bed-days billed for a {los}-day stay")
        else:
            if v == 0:     # same-day stay, one bed-day (at least 1)
                vis = cb.visit(p, self.ward(), 28, d, 8 * H, d, 18 * H, dx="H25.900")
                cb.line(vis, "普通病房床位费", d, 8 * H + 120, cnt=1)
                cb.line(vis, "氯化钠注射液(0.9% 250ml)", d, 9 * H, cnt=1)
            elif v == 1:   # general + ICU beds, each within the stay days
                vis, ls = cb.stay(p, self.ward((1, 2)), d, d + 4)
                cb.line(vis, "重症监护病房床位费", d, 20 * H)
            else:          # an extra bed-day fully refunded
                vis, ls = cb.stay(p, self.ward(), d, d + 4)
                x = cb.line(vis, "普通病房床位费", d + 4, 8 * H)
                cb.refund(x, 1, 9 * H)

    def fam_min_interval(self, i, pos):
        cb = self.cb
        v = i % 4
        d = self.day(3, 200)
        p = cb.person(age=60)
        name, n = ("双能X线骨密度测定", 180) if v == 3 else ("糖化血红蛋白测定", 90)
        gaps = {0: [30], 1: [89], 2: [30, 30], 3: [100]}[v] if pos else {0: [90], 1: [120], 2: [91], 3: [180]}[v]
        day = d
        a = cb.out_visit(p, self.hosp(), day, dx="E11.900")
        cb.line(a, name, day, 10 * H)
        for g in gaps:
            day += g
            b = cb.out_visit(p, self.hosp(), day, dx="E11.900")
            ln = cb.line(b, name, day, 10 * H)
            if pos:
                cb.key_line("min_interval", ln, f"{name} again after {g} days (min {n})")

    def fam_pay_days_exceeded(self, i, pos):
        cb = self.cb
        d = self.day(3, 60)
        p = cb.person()
        v = i % 2
        name, lim = ("左氧氟沙星氯化钠注射液", 7) if v == 0 else ("运动疗法", 14)
        ndays = (lim + (2 if v == 0 else 1)) if pos else lim
        los = ndays + 1
        vis, _ = cb.stay(p, self.ward(), d, d + los, dx="J18.900" if v == 0 else "I63.900")
        for k in range(ndays):
            ln = cb.line(vis, name, d + k, 14 * H + 60 * k)
            if pos and k >= lim:
                cb.key_line("pay_days_exceeded", ln, f"{name} on day {k + 1} of billing (max {lim} days)")
        if not pos:   # a second line on a day already counted does not add a day
            cb.line(vis, name, d + 1, 19 * H)

    def fam_bundled_item(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person(age=62)
        v = i % 6
        fam = "bundled_item"
        if pos:
            if v == 0:     # PCI includes angiography, same visit
                vis, _ = cb.stay(p, self.ward((1,)), d, d + 4, dx="I21.900")
                cb.line(vis, "经皮冠状动脉支架置入术(PCI)", d + 1, 10 * H)
                cb.key_line(fam, cb.line(vis, "冠状动脉造影术", d, 16 * H), "angiography billed with PCI (includes, visit)")
            elif v == 1:   # infusion includes injection, exactly 60 minutes apart
                vis = cb.out_visit(p, self.hosp(), d, sec=9 * H)
                cb.line(vis, "静脉输液(第一组)", d, 10 * H)
                cb.key_line(fam, cb.line(vis, "静脉注射", d, 11 * H), "injection 60 min after infusion (includes, hour)")
            elif v == 2:   # hour window across midnight, b before a
                vis, _ = cb.stay(p, self.ward(), d, d + 3)
                cb.key_line(fam, cb.line(vis, "静脉注射", d + 1, 23 * H + 40 * 60),
                            "injection 40 min before an infusion, across midnight (hour)")
                cb.line(vis, "静脉输液(第一组)", d + 2, 20 * 60)
            elif v == 3:   # level I and level II nursing on one day (exclusive, day)
                vis, ls = cb.stay(p, self.ward(), d, d + 4)
                cb.line(vis, "Ⅰ级护理", d + 2, 15 * H)
                cb.key_line(fam, ls["nurse"][2], "level II nursing on a day with level I (exclusive, day)")
            elif v == 4:   # blood count includes haemoglobin: same day, two institutions
                h = self.hosp()
                v1 = cb.out_visit(p, h, d, sec=8 * H)
                cb.line(v1, "血常规(五分类)", d, 9 * H)
                v2 = cb.out_visit(p, self.other_hosp(h), d, sec=15 * H)
                cb.key_line(fam, cb.line(v2, "血红蛋白测定", d, 16 * H), "haemoglobin test the day of a blood count (day)")
            else:          # CT and DR in one visit; b billed first
                vis = cb.out_visit(p, self.hosp(), d, sec=8 * H)
                cb.key_line(fam, cb.line(vis, "胸部X线摄影(DR)", d, 9 * H), "chest DR with chest CT, same visit (exclusive)")
                cb.line(vis, "胸部CT平扫", d, 10 * H)
        else:
            if v in (0, 5):     # 61 minutes apart (hour window)
                vis = cb.out_visit(p, self.hosp(), d, sec=9 * H)
                cb.line(vis, "静脉输液(第一组)", d, 10 * H)
                cb.line(vis, "静脉注射", d, 11 * H + 60)
            elif v == 1:   # day window, across midnight: different days
                vis, _ = cb.stay(p, self.ward(), d, d + 3)
                cb.line(vis, "血常规(五分类)", d + 1, 23 * H + 50 * 60)
                cb.line(vis, "血红蛋白测定", d + 2, 10 * 60)
            elif v == 2:   # visit window, two visits on one day
                h = self.hosp()
                v1 = cb.out_visit(p, h, d, sec=8 * H)
                cb.line(v1, "胸部CT平扫", d, 9 * H)
                v2 = cb.out_visit(p, self.other_hosp(h), d, sec=14 * H)
                cb.line(v2, "胸部X线摄影(DR)", d, 15 * H)
            elif v == 3:   # dialysis and haemofiltration on different days
                vis, _ = cb.stay(p, self.ward(), d, d + 4, dx="N18.500")
                cb.line(vis, "血液透析", d + 1, 10 * H)
                cb.line(vis, "血液滤过", d + 2, 10 * H)
            else:          # level I nursing on a day when level II was refunded
                vis, ls = cb.stay(p, self.ward(), d, d + 4)
                cb.refund(ls["nurse"][2], 1, 12 * H)
                cb.line(vis, "Ⅰ级护理", d + 2, 15 * H)

    def fam_bundled_item_dialysis(self, i, pos):
        if not pos or i % 2:
            return
        cb = self.cb
        d = self.day()
        p = cb.person(age=66)
        vis, _ = cb.stay(p, self.ward(), d, d + 4, dx="N18.500")
        cb.line(vis, "血液透析", d + 1, 9 * H)
        cb.key_line("bundled_item", cb.line(vis, "血液滤过", d + 1, 15 * H), "haemofiltration with haemodialysis (exclusive, day)")

    def fam_duplicate_line(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 4
        name = ["大换药", "肝功能全套", "阿莫西林胶囊", "甘草"][v]
        cnt = 15.0 if name == "甘草" else 2.0 if name == "阿莫西林胶囊" else 1.0
        vis = cb.out_visit(p, self.hosp(), d, drug=name != "阿莫西林胶囊")
        t = 10 * H + 17
        if pos:
            k = 3 if v == 1 else 2
            ls = [cb.line(vis, name, d, t, cnt=cnt) for _ in range(k)]
            for ln in ls[1:]:
                cb.key_line("duplicate_line", ln, f"{name} billed {k} times with the same time, cnt and pric")
        else:
            if v == 0:
                cb.line(vis, name, d, t, cnt=cnt)
                cb.line(vis, name, d, t, cnt=cnt + 1)
            elif v == 1:
                cb.line(vis, name, d, t, cnt=cnt)
                cb.line(vis, name, d, t + 1, cnt=cnt)
            elif v == 2:   # identical re-send (same feedetl_sn)
                cb.line(vis, name, d, t, cnt=cnt, resend=True)
            else:          # the copy was refunded
                cb.line(vis, name, d, t, cnt=cnt)
                x = cb.line(vis, name, d, t, cnt=cnt)
                cb.refund(x, cnt, t + 600)

    def fam_price_above_cap(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        vis = cb.out_visit(p, self.hosp(), d)
        v = i % 3
        if pos:
            name, pric, cap = [("注射用奥美拉唑钠", 13.50, None), ("甲钴胺片", 22.31, None), ("阿托伐他汀钙片", 7.80, 7.20)][v]
            cb.key_line("price_above_cap", cb.line(vis, name, d, 10 * H, pric=pric, cap=cap),
                        f"pric {pric:.2f} above the ceiling" + (" (fee_list.pric_uplmt_amt)" if cap else ""))
        else:
            if v == 0:
                cb.line(vis, "注射用奥美拉唑钠", d, 10 * H, pric=13.00)
            elif v == 1:
                cb.line(vis, "注射用奥美拉唑钠", d, 10 * H, pric=15.00, lv=3)
            else:
                cb.line(vis, "阿托伐他汀钙片", d, 10 * H, pric=7.20, cap=7.20)

    MARKUP_ITEMS = ("阿莫西林胶囊", "头孢呋辛酯片", "硝苯地平控释片", "盐酸二甲双胍缓释片", "阿司匹林肠溶片", "奥美拉唑肠溶胶囊",
                    "连花清瘟胶囊", "注射用头孢曲松钠(1g)", "苯磺酸氨氯地平片", "医用敷料(无菌纱布)")

    def fam_markup_exceeded(self, i, pos):
        cb = self.cb
        if not hasattr(self, "_markup_pairs"):
            self._markup_pairs = [(int(a), int(b)) for a, b in zip(*np.nonzero(self.tracked))
                                  if K.ITEMS[b].name in self.MARKUP_ITEMS]
        pairs = self._markup_pairs
        for _ in range(50):
            inst, it = pairs[int(self.rng.integers(0, len(pairs)))]
            d = self.day()
            if (inst, it, d) not in self._markup_used:
                break
        self._markup_used.add((inst, it, d))
        item = K.ITEMS[it]
        ratio = float(item.markup)
        sec = 2 * H + int(self.rng.integers(0, 3 * H))
        p = cb.person()
        pharmacy = self.inst.type_[inst] == "2"
        vis = cb.visit(p, inst, 41 if pharmacy else 13, d, sec - 30)
        if pos:
            low = round(K._m6(item.pric) / ratio / 1e6 * 0.8, 2)
            ln = cb.line(vis, item.name, d, sec)
            cb.key_line("markup_exceeded", ln, f"sold at {item.pric} after buying at {low:.2f} (max ratio {item.markup})")
        else:   # sale price exactly purchase x ratio
            low = 20.00
            cb.line(vis, item.name, d, sec, pric=round(low * ratio, 2))
        self.markup_events.append((inst, it, d, sec - 60, int(round(low * 1e6)), 20_000))
        self.markup_events.append((inst, it, d, sec + 60, int(self.cb.w.kb.purch6[it]), 20_000))

    # ================================================================== stays and visits
    def fam_charge_outside_stay(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 2
        vis, _ = cb.stay(p, self.ward(), d, d + 4, dx="K29.700")
        if pos:
            day = d + 5 if v == 0 else d - 1
            cb.key_line("charge_outside_stay", cb.line(vis, "注射用奥美拉唑钠", day, 10 * H),
                        "inpatient line dated " + ("after discharge" if v == 0 else "before admission"))
        else:
            if v == 0:     # discharge medication
                cb.line(vis, "奥美拉唑肠溶胶囊", d + 5, 10 * H, tk=1)
            else:          # late on the discharge date
                cb.line(vis, "注射用奥美拉唑钠", d + 4, 23 * H + 30 * 60)

    def fam_outpatient_during_stay(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        inst = self.ward()
        los = int(self.rng.integers(3, 9))
        cb.stay(p, inst, d, d + los)
        v = i % 2
        if pos:
            day = d + int(self.rng.integers(1, los))
            if v == 0:
                vis = cb.out_visit(p, self.hosp(), day)
            else:
                vis = cb.out_visit(p, self.pharmacy(), day, med=41)
            cb.key_visit("outpatient_during_stay", vis, f"outpatient visit (med_type {[11, 41][v]}) during a stay")
        else:
            cb.out_visit(p, self.hosp(), d if v == 0 else d + los, sec=20 * H if v == 0 else 14 * H)

    def fam_after_death(self, i, pos):
        cb = self.cb
        d = self.day(60, 50)
        p = cb.person(age=80, die=d)
        v = i % 3
        cb.out_visit(p, self.hosp(), d - 20)
        if pos:
            if v == 2:
                vis, _ = cb.stay(p, self.ward(), d + 3, d + 6, dx="I63.900")
            else:
                vis = cb.out_visit(p, self.hosp() if v == 0 else self.pharmacy(), d + 1 + 9 * v, med=11 if v == 0 else 41)
            cb.key_visit("after_death", vis, "visit beginning after the death date")
        else:
            if v == 0:     # on the death day
                cb.out_visit(p, self.hosp(), d)
            else:          # died in hospital, discharged (dead) on the death day
                cb.stay(p, self.ward(), d - 5, d, dx="I21.900")

    def fam_overlapping_stays(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        a = self.ward()
        b = self.other_ward(a)
        cb.stay(p, a, d, d + 8, dx="J18.900")
        if pos:
            start = d + (4 if i % 2 == 0 else 7)
            vis, _ = cb.stay(p, b, start, start + 5, dx="I63.900")
            cb.key_visit("overlapping_stays", vis, "admitted elsewhere before the previous discharge")
        else:
            cb.stay(p, b, d + 8, d + 12, dx="I63.900")

    def fam_split_admission(self, i, pos):
        cb = self.cb
        d = self.day(3, 70)
        p = cb.person(age=70)
        inst = self.ward()
        v = i % 3
        cb.stay(p, inst, d, d + 5, dx="I63.900")
        e = d + 5
        if pos:
            gap = [15, 0, 7][v]
            vis, _ = cb.stay(p, inst, e + gap, e + gap + 4, dx="I63.800", bsec=15 * H if gap == 0 else None)
            cb.key_visit("split_admission", vis, f"readmitted {gap} days after discharge, same I63")
        else:
            if v == 0:
                cb.stay(p, inst, e + 16, e + 20, dx="I63.900")
            elif v == 1:
                cb.stay(p, inst, e + 5, e + 9, dx="I61.900")
                cb.stay(p, self.other_ward(inst), e + 20, e + 23, dx="I63.900")
            else:          # the immediately preceding stay has another diagnosis
                cb.stay(p, inst, e + 2, e + 4, dx="J18.900")
                cb.stay(p, inst, e + 8, e + 12, dx="I63.900")

    def fam_bed_hanging(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 3
        los = 6
        if pos:
            if v == 0:     # three days of bed/nursing/exam only
                vis, _ = cb.stay(p, self.ward(), d, d + los, anchor_days={d, d + 4, d + 5, d + 6})
                note = "3 days with only bed, nursing and exam fees"
            elif v == 1:   # ... plus self-paid drugs (ignored)
                vis, _ = cb.stay(p, self.ward(), d, d + los, anchor_days={d, d + 5, d + 6})
                for k in (1, 2, 3, 4):
                    cb.line(vis, "复合维生素B片", d + k, 15 * H, lv=3)
                note = "4 days with only bed/nursing/exam fund lines (self-paid drugs ignored)"
            else:          # the middle day's drug was refunded
                vis, ls = cb.stay(p, self.ward(), d, d + los, anchor_days={d, d + 2, d + 4, d + 5, d + 6})
                cb.refund(ls["anchor"][d + 2], 2, 16 * H)
                note = "3 days with only bed/nursing/exam once a drug line is refunded"
            cb.key_visit("bed_hanging", vis, note)
        else:
            if v == 0:     # only two such days
                cb.stay(p, self.ward(), d, d + los, anchor_days={d, d + 3, d + 4, d + 5, d + 6})
            elif v == 1:   # the middle day has only a self-paid line: no fund line breaks the run
                vis, ls = cb.stay(p, self.ward(), d, d + los, anchor_days={d, d + 4, d + 5, d + 6})
                for li in (ls["bed"][2], ls["nurse"][2], ls["exam"][2]):
                    cb.refund(li, 1, 18 * H)
                cb.line(vis, "复合维生素B片", d + 2, 15 * H, lv=3)
            else:          # a day with a lab test breaks the run
                vis, _ = cb.stay(p, self.ward(), d, d + los, anchor_days={d, d + 4, d + 5, d + 6})
                cb.line(vis, "血常规(五分类)", d + 2, 10 * H)

    def fam_self_pay_ratio(self, i, pos):
        cb = self.cb
        d = self.day()
        p = cb.person()
        v = i % 3
        fund_before = len(cb.L["v"])
        if v == 2 and pos:     # admitted two days before a month's end, settled the next month
            d = min(d, cb.n_days - 45)
            dt = cb.date_of(d)
            nxt = (np.datetime64(f"{dt.year}-{dt.month:02d}") + np.timedelta64(1, "M")).astype("datetime64[D]")
            d = int((nxt - cb.w.base).astype(int)) - 2
        vis, ls = cb.stay(p, self.ward(), d, d + 4)

        def fund_total():
            return sum(int(round_amount(np.array([cb.L["c4"][j]]), np.array([cb.L["p6"][j]]))[0])
                       for j in range(fund_before, len(cb.L["v"])) if cb.L["lv"][j] != 3)
        if pos:
            if v == 1:     # over the limit because fund lines were refunded
                x = cb.line(vis, "氯化钠注射液(0.9% 250ml)", d + 1, 16 * H, cnt=40)
                own = fund_total() * 75 // 1000               # 7.5 % of the fund lines before the refund
                cb.refund(x, 40, 17 * H)
            else:
                F = fund_total()
                own = F * 12 // 100
            cb.line(vis, "肠内营养粉剂(TP)", d + 2, 11 * H, pric=own / 100, lv=3)
            cb.key_visit("self_pay_ratio", vis, "self-paid share above 8 % of the settlement")
        else:
            if v == 0:     # exactly 8 %: fund total made a multiple of 23 yuan, self-paid 2/23 of it
                F = fund_total()
                fill = (-F) % 2300 or 2300
                cb.line(vis, "大换药", d + 1, 16 * H, pric=fill / 100)
                F += fill
                cb.line(vis, "肠内营养粉剂(TP)", d + 2, 11 * H, pric=(2 * F // 23) / 100, lv=3)
            elif v == 1:   # an outpatient settlement (not inpatient) at 50 %
                o = cb.out_visit(p, self.hosp(), d + 30, drug=False)
                cb.line(o, "复合维生素B片", d + 30, 15 * H, cnt=2, pric=5.00, lv=3)
            else:          # 7 %
                F = fund_total()
                cb.line(vis, "肠内营养粉剂(TP)", d + 2, 11 * H, pric=(F * 7 // 100) / 100, lv=3)
