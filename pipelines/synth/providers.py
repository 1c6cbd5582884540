"""Planted provider-level anomalies, person-level groups, growth items and inspection outcomes (issue #16).

`plant(w, inst, scale, rng)` adds, with persons of its own (never shared with the background or a case):

- inflated_cost: an 二级 hospital whose extra outpatient visits bill about five times the usual services;
- upcoded_mix: a ward whose extra short stays are coded with severe diagnoses (急性心梗, 不稳定型心绞痛, 肝硬化) and billed
  like simple stays;
- phantom_covisit: groups of five persons who visit one 一级 clinic together on six days far apart;
- drug_resale: persons buying 注射用头孢曲松钠 at the daily cap every third day at several pharmacies;
- item_growth: two items whose use at three hospitals triples from July on (the item watch must flag them).

Every planted record stays clear of the 21 families of contract §4 (clean items, kb prices, one visit per
person and day, visits of one person at least 17 days apart except the resale purchases, which use a drug
without an interval rule and never exceed its daily cap). `insp_result` rows label the three anomalous
institutions 1 and a random 40 % of the others 0. The key (`<out>.provider_key.csv`) lists each planted
institution, group member and growth item.
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa

from .cases import CaseBuilder

KEY_COLUMNS = ("kind", "level", "fixmedins_code", "psn_no", "hilist_code", "group_id", "note")
CLEAN_SERVICES = ("头颅磁共振平扫(MRI)", "腹部彩色多普勒超声检查", "肝功能全套", "肾功能", "常规心电图检查(十二通道)", "大换药")
SEVERE_DX = ("I21.900", "I20.000", "K74.600")
RESALE_DRUG = "注射用头孢曲松钠(1g)"
GROWTH_ITEMS = ("腹部彩色多普勒超声检查", "甲钴胺片")
H = 3600


def provider_key_path(out: Path) -> Path:
    return Path(str(out).rstrip("/") + ".provider_key.csv")


class Planter:
    def __init__(self, w, inst, scale: float, rng: np.random.Generator):
        self.w, self.inst, self.scale, self.rng = w, inst, scale, rng
        self.cb = CaseBuilder(w, rng)
        self.key: list[dict] = []
        self.n_days = self.cb.n_days

    def _pick(self, ok) -> int:
        c = [i for i in range(len(self.inst)) if ok(i)]
        return int(self.rng.choice(c))

    def _day(self, lo: int, hi: int) -> int:
        while True:
            d = int(self.rng.integers(lo, hi))
            dt = self.cb.date_of(d)
            if not (dt.month == 2 and dt.day >= 28):
                return d

    def _psn_of(self, v: int, kind: str) -> None:
        self.cb.key_visit(kind, v, kind)

    def inflated_cost(self, a: int) -> None:
        for _ in range(int(round(150 * self.scale))):
            d = self._day(3, self.n_days - 3)
            v = self.cb.out_visit(self.cb.person(), a, d, dx="I10.x00", drug=False)
            sec = self.cb.V["bsec"][v]
            for k, name in enumerate(CLEAN_SERVICES):
                self.cb.line(v, name, d, sec + 600 + 60 * k, cnt=1)
            self.cb.line(v, "阿托伐他汀钙片", d, sec + 1200, cnt=3)
        self.cb.flush()
        self.key.append(self._inst_row("inflated_cost", a, "次均费用虚高 cost per visit inflated"))

    def upcoded_mix(self, b: int) -> None:
        for k in range(int(round(60 * self.scale))):
            d = self._day(3, self.n_days - 10)
            self.cb.stay(self.cb.person(age=int(self.rng.integers(45, 75))), b, d, d + 3, dx=SEVERE_DX[k % 3])
        self.cb.flush()
        self.key.append(self._inst_row("upcoded_mix", b, "诊断升级 severe diagnoses on simple stays"))

    def phantom_covisit(self, c: int) -> None:
        for g in range(max(2, int(round(self.scale)))):
            members = [self.cb.person() for _ in range(5)]
            days = [self._day(20 * k + 3, 20 * k + 20) for k in range(0, 18, 3)]     # 6 days, >= 40 days apart
            first = {}
            for d in days:
                sec = int(self.rng.integers(8 * H, 10 * H))
                for j, p in enumerate(members):
                    v = self.cb.out_visit(p, c, d, dx="M17.900", sec=sec + 97 * j, drug=False)
                    self.cb.line(v, "普通针刺", d, sec + 97 * j + 600, cnt=1)
                    first.setdefault(p, v)
            for p, v in first.items():
                self._psn_of(v, f"phantom_covisit:{g}")
        self.cb.flush()
        self.key.append(self._inst_row("phantom_covisit", c, "结伴就医 groups visiting together"))

    def drug_resale(self, pharmacies: list[int]) -> None:
        for g in range(max(3, int(round(2 * self.scale)))):
            p = self.cb.person()
            start = self._day(20, self.n_days - 60)
            for k in range(9):                              # 9 × 4 vials within 25 days, three pharmacies
                d = start + 3 * k
                v = self.cb.visit(p, pharmacies[k % len(pharmacies)], 41, d, int(self.rng.integers(9 * H, 18 * H)))
                self.cb.line(v, RESALE_DRUG, d, self.cb.V["bsec"][v] + 60, cnt=4)
                if k == 0:
                    self._psn_of(v, f"drug_resale:{g}")
        self.cb.flush()

    def item_growth(self, hospitals: list[int]) -> None:
        month = self.w.month_of_day
        for name in GROWTH_ITEMS:
            for d in range(self.n_days):
                if month[d] < 6 or self.rng.random() > 0.5 * self.scale:
                    continue
                for i in hospitals:
                    v = self.cb.out_visit(self.cb.person(), i, d, dx="I10.x00", drug=False)
                    self.cb.line(v, name, d, self.cb.V["bsec"][v] + 300, cnt=2 if name == "甲钴胺片" else 1)
            self.key.append(dict(kind="item_growth", level="item", fixmedins_code="", psn_no="",
                                 hilist_code=self.w.kb.codes[list(self.w.kb.names).index(name)], group_id="",
                                 note=f"{name}: use triples from July"))
        self.cb.flush()

    def _inst_row(self, kind: str, i: int, note: str) -> dict:
        return dict(kind=kind, level="institution", fixmedins_code=self.inst.code[i], psn_no="", hilist_code="",
                    group_id="", note=note)

    def person_rows(self) -> list[dict]:
        out = []
        for r in self.cb.key_rows:
            kind, _, g = r["family"].partition(":")
            out.append(dict(kind=kind, level="person", fixmedins_code=r["fixmedins_code"], psn_no=r["psn_no"],
                            hilist_code=self.w.kb.codes[list(self.w.kb.names).index(RESALE_DRUG)]
                            if kind == "drug_resale" else "", group_id=f"{kind}:{g}", note=r["note"]))
        return out


def plant(w, inst, scale: float, rng: np.random.Generator) -> list[dict]:
    """Plant everything (see module doc), write insp_result; the key rows."""
    pl = Planter(w, inst, scale, rng)
    rank, beds, type_ = inst.rank, inst.beds, inst.type_
    a = pl._pick(lambda i: type_[i] == "1" and rank[i] == 2 and beds[i] > 0)
    b = pl._pick(lambda i: type_[i] == "1" and rank[i] in (2, 3) and beds[i] > 0 and i != a)
    c = pl._pick(lambda i: type_[i] == "1" and rank[i] in (3, 4) and beds[i] == 0)
    pl.inflated_cost(a)
    pl.upcoded_mix(b)
    pl.phantom_covisit(c)
    pharm = [int(i) for i in np.flatnonzero(type_ == "2")]
    pl.drug_resale([pharm[k % len(pharm)] for k in range(3)])
    growth_at = [int(i) for i in pl.rng.choice([i for i in np.flatnonzero((type_ == "1") & (rank <= 2))
                                                 if i not in (a, b)], 3, replace=False)]
    pl.item_growth(growth_at)
    write_inspections(w, inst, {a, b, c}, rng)
    return pl.key + pl.person_rows()


def write_inspections(w, inst, positive: set[int], rng: np.random.Generator) -> None:
    rows = []
    for i in range(len(inst)):
        if i in positive or rng.random() < 0.4:
            day = w.n_days + int(rng.integers(0, 39))
            res = "1" if i in positive else "0"
            amt = f"{int(rng.integers(5, 80)) * 1000}.00" if res == "1" else "0.00"
            rows.append((inst.code[i], day, res, amt, "飞行检查" if res == "1" else "日常检查"))
    if rows:
        cols = list(zip(*rows))
        w.append("insp_result", {"fixmedins_code": pa.array(list(cols[0])), "insp_date": w.date(np.array(cols[1])),
                                 "result": pa.array(list(cols[2])), "recovered_amt": pa.array(list(cols[3])),
                                 "insp_type": pa.array(list(cols[4]))}, len(rows))


def write_key(out: Path, rows: list[dict]) -> Path:
    path = provider_key_path(out)
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=KEY_COLUMNS, lineterminator="\n")
        wr.writeheader()
        wr.writerows(rows)
    return path
