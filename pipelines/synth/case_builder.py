"""Building blocks of the injected cases: persons, visits, stays and lines added one by one, and the flush
that writes them through `DropWriter.write` and turns their key references into answer-key rows.

Each case gets persons of its own (never shared with the background or another case), so what a case
injects is exactly what its key rows say. Lines are built one by one in Python (cases are few); they go
through the same `DropWriter.write` as the background.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import kb as K
from .drop import Batch, DropWriter
from .persons import persons_table
from .profiles import DXI

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
