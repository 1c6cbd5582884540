"""Injected cases of the billing families: quantities per day and stay, intervals, pay days, bundled and
duplicate lines, prices above the ceiling and above the purchase markup.
"""
from __future__ import annotations

import numpy as np

from . import kb as K
from .case_builder import H


class BillingCases:
    """Line families: how much, how often and at what price. Mixed into `Injector` (cases.py), which
    provides `cb`, `rng`, `inst`, `tracked`, `day()` and the institution pickers (`hosp`, `ward`, `other_hosp`,
    `other_ward`, `pharmacy`)."""

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
