"""Injected cases of the restriction families: an item billed to a patient or at an institution it is not
paid for (sex, age, inpatient only, hospital level, indication).
"""
from __future__ import annotations

import numpy as np

from .case_builder import H


class RestrictionCases:
    """Line families: who and where an item may be billed. Mixed into `Injector` (cases.py), which
    provides `cb`, `rng`, `inst`, `tracked`, `day()` and the institution pickers (`hosp`, `ward`, `other_hosp`,
    `other_ward`, `pharmacy`)."""

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
