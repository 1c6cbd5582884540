"""Injected cases: labelled violations of every contract §4 family, and tricky negatives next to them.

`Injector.run` calls every `fam_*` method, in name order, `n_pos` times as a positive case (its key rows
are the answer key) and `n_neg` times as a tricky negative (nothing may be flagged). The families live in
three mixins: who may be billed an item (`cases_restrictions.py`), how it is billed (`cases_billing.py`),
and stays and visits (`cases_stays.py`); the building blocks are `CaseBuilder` (`case_builder.py`).
"""
from __future__ import annotations

import numpy as np

from .case_builder import CaseBuilder
from .cases_billing import BillingCases
from .cases_restrictions import RestrictionCases
from .cases_stays import StayCases


class Injector(RestrictionCases, BillingCases, StayCases):
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
