"""Injected cases of the stay and visit families: charges outside a stay, outpatient visits during one,
visits after death, overlapping and split stays, bed hanging, self-paid share.
"""
from __future__ import annotations

import numpy as np

from .case_builder import H
from .formats import round_amount


class StayCases:
    """Stay and visit families. Mixed into `Injector` (cases.py), which
    provides `cb`, `rng`, `inst`, `tracked`, `day()` and the institution pickers (`hosp`, `ward`, `other_hosp`,
    `other_ward`, `pharmacy`)."""

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
