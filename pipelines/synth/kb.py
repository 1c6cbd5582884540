"""The sample knowledge base (contract §3) as data, plus the generator's own view of it (arrays).

`kb_tables()` returns the three KB tables (kb_hilist, kb_item_pair, kb_param) as lists of string rows in
the contract's field order; the same rows are shipped in `rules/kb/*.csv` and written into every drop.
`KbArrays` turns the item list into numpy arrays the vectorised background generator indexes by item
number.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, Decimal

import numpy as np

from pipelines.contract import ENTITIES

# list_type: 101 西药中成药, 102 饮片, 201 医疗服务项目, 301 医用耗材


@dataclass(frozen=True)
class Item:
    code: str
    name: str
    list_type: str
    chrg: str                 # med_chrgitm_type
    lv: str                   # chrgitm_lv
    pric: str                 # the district's usual sale price (decimal string)
    cnt: str = "one"          # how the background draws cnt: one|box|vial|gram|hour
    cap: str = ""             # pric_uplmt_amt
    gend: str = ""
    age_min: str = ""
    age_max: str = ""
    ipt_only: str = ""
    hosp_lv_min: str = ""
    lmt_diag: str = ""
    max_cnt: str = ""
    per_diem: str = ""
    interval: str = ""
    pay_days: str = ""
    markup: str = ""
    tags: str = ""


def _drug(atc5: str, k: int) -> str:
    return f"X{atc5}A{k:03d}A0010101{(k * 7919) % 100000:05d}"


def _cpm(k: int) -> str:
    return f"ZA{k:02d}AAB{k * 13 % 1000:04d}010101{(k * 4099) % 100000:05d}"


def _svc(cls: int, k: int) -> str:
    return f"00{cls:04d}{k:09d}"


def _cons(cls: int, k: int) -> str:
    return f"C{cls:04d}{k:015d}"


I = Item
ITEMS: tuple[Item, ...] = (
    # ---------------- 101 西药 (09) / 中成药 (11) ----------------
    I(_drug("J01CA", 4), "阿莫西林胶囊", "101", "09", "01", "12.80", "box", markup="1.15"),
    I(_drug("J01DC", 2), "头孢呋辛酯片", "101", "09", "01", "25.60", "box", markup="1.15"),
    I(_drug("C08CA", 5), "硝苯地平控释片", "101", "09", "01", "31.50", "box", markup="1.15"),
    I(_drug("C08CA", 1), "苯磺酸氨氯地平片", "101", "09", "01", "6.30", "box", markup="1.0"),
    I(_drug("A10BA", 2), "盐酸二甲双胍缓释片", "101", "09", "01", "9.50", "box", markup="1.15"),
    I(_drug("B01AC", 6), "阿司匹林肠溶片", "101", "09", "01", "13.80", "box", markup="1.15"),
    I(_drug("C10AA", 5), "阿托伐他汀钙片", "101", "09", "01", "7.20", "box"),
    I(_drug("A02BC", 1), "奥美拉唑肠溶胶囊", "101", "09", "01", "8.90", "box", markup="1.15"),
    I(_drug("B05XA", 3), "氯化钠注射液(0.9% 250ml)", "101", "09", "01", "3.50", "vial"),
    I(_drug("J01DD", 4), "注射用头孢曲松钠(1g)", "101", "09", "01", "8.60", "vial", max_cnt="4", markup="1.0"),
    I(_drug("J01MA", 12), "左氧氟沙星氯化钠注射液", "101", "09", "02", "15.20", "vial", pay_days="7"),
    I(_drug("J01DD", 62), "注射用头孢哌酮钠舒巴坦钠", "101", "09", "02", "32.00", "vial", pay_days="10"),
    I(_drug("B01AB", 1), "低分子量肝素钙注射液", "101", "09", "02", "38.50", "vial", ipt_only="1"),
    I(_drug("H01BB", 2), "缩宫素注射液", "101", "09", "01", "2.80", "vial", gend="2"),
    I(_drug("N02BE", 51), "小儿氨酚黄那敏颗粒", "101", "11", "01", "11.50", "box", age_max="14"),
    I(_drug("M01AE", 1), "布洛芬混悬液(儿童)", "101", "09", "01", "16.80", "box", age_max="12", markup="1.15"),
    I(_drug("A10AB", 5), "门冬胰岛素注射液", "101", "09", "02", "45.60", "box", lmt_diag="E10|E11"),
    I(_drug("A10AE", 4), "甘精胰岛素注射液", "101", "09", "02", "98.00", "box", lmt_diag="E10|E11", markup="1.0"),
    I(_drug("B03XA", 1), "重组人促红素注射液", "101", "09", "02", "198.00", "vial", lmt_diag="N18|D63",
      tags="血液净化"),
    I(_drug("B01AC", 4), "硫酸氢氯吡格雷片", "101", "09", "02", "17.80", "box", lmt_diag="I20|I21|I25.1|I63",
      tags="心血管"),
    I(_drug("B05AA", 1), "人血白蛋白(10g)", "101", "09", "02", "388.00", "vial", ipt_only="1",
      lmt_diag="R57|K72|K74", tags="重症医学"),
    I(_drug("G04CA", 2), "盐酸坦索罗辛缓释胶囊", "101", "09", "02", "39.90", "box", gend="1", lmt_diag="N40"),
    I(_drug("B03BA", 5), "甲钴胺片", "101", "09", "02", "22.30", "box", cap="22.30"),
    I(_drug("A02BC", 11), "注射用奥美拉唑钠", "101", "09", "02", "12.50", "vial", cap="13.00"),
    I(_drug("A11EA", 1), "复合维生素B片", "101", "09", "03", "5.60", "box"),
    I(_drug("V06DB", 1), "肠内营养粉剂(TP)", "101", "09", "03", "168.00", "box"),
    I(_cpm(1), "复方丹参滴丸", "101", "11", "01", "26.50", "box"),
    I(_cpm(2), "连花清瘟胶囊", "101", "11", "01", "14.80", "box", markup="1.15"),
    I(_cpm(3), "血塞通软胶囊", "101", "11", "02", "36.40", "box", lmt_diag="I63|I25", tags="心血管"),
    # ---------------- 102 中药饮片 (10), priced per gram ----------------
    I("T001700643", "黄芪", "102", "10", "01", "0.085600", "gram"),
    I("T000800427", "当归", "102", "10", "01", "0.213000", "gram"),
    I("T001500211", "党参", "102", "10", "01", "0.157000", "gram"),
    I("T000100104", "甘草", "102", "10", "01", "0.069300", "gram"),
    I("T002100318", "白术", "102", "10", "02", "0.098700", "gram"),
    # ---------------- 201 医疗服务项目 ----------------
    I(_svc(1102, 10000), "普通病房床位费", "201", "01", "01", "50.00", per_diem="1"),
    I(_svc(1102, 20000), "重症监护病房床位费", "201", "01", "01", "240.00", per_diem="1", ipt_only="1",
      hosp_lv_min="2", tags="重症医学"),
    I(_svc(1101, 10000), "普通门诊诊察费", "201", "02", "01", "10.00", tags="门诊统筹"),
    I(_svc(1101, 20000), "急诊诊察费", "201", "02", "01", "15.00"),
    I(_svc(1101, 40000), "住院诊察费", "201", "02", "01", "20.00", ipt_only="1"),
    I(_svc(1103, 10000), "特级护理", "201", "07", "01", "90.00", ipt_only="1", tags="重症医学"),
    I(_svc(1103, 20000), "Ⅰ级护理", "201", "07", "01", "45.00", ipt_only="1"),
    I(_svc(1103, 30000), "Ⅱ级护理", "201", "07", "01", "28.00", ipt_only="1"),
    I(_svc(2203, 10000), "常规心电图检查(十二通道)", "201", "03", "01", "25.00", tags="检查检验"),
    I(_svc(2204, 10000), "腹部彩色多普勒超声检查", "201", "03", "01", "120.00", tags="检查检验"),
    I(_svc(2101, 20000), "胸部X线摄影(DR)", "201", "03", "01", "70.00"),
    I(_svc(2102, 10000), "胸部CT平扫", "201", "03", "01", "180.00", tags="检查检验"),
    I(_svc(2103, 10000), "头颅磁共振平扫(MRI)", "201", "03", "01", "480.00", hosp_lv_min="2", tags="检查检验"),
    I(_svc(2102, 30000), "冠状动脉CT血管成像(CTA)", "201", "03", "02", "850.00", hosp_lv_min="1",
      tags="心血管|检查检验"),
    I(_svc(2101, 50000), "双能X线骨密度测定", "201", "03", "02", "120.00", interval="180", tags="骨科"),
    I(_svc(2501, 10000), "血常规(五分类)", "201", "04", "01", "20.00"),
    I(_svc(2501, 20000), "血红蛋白测定", "201", "04", "01", "5.00"),
    I(_svc(2502, 10000), "尿常规", "201", "04", "01", "10.00"),
    I(_svc(2503, 10000), "肝功能全套", "201", "04", "01", "60.00"),
    I(_svc(2503, 20000), "肾功能", "201", "04", "01", "40.00"),
    I(_svc(2503, 30000), "糖化血红蛋白测定", "201", "04", "01", "45.00", interval="90", tags="检查检验"),
    I(_svc(2504, 10000), "C反应蛋白测定(CRP)", "201", "04", "01", "30.00"),
    I(_svc(2506, 10000), "前列腺特异性抗原测定(PSA)", "201", "04", "02", "80.00", gend="1"),
    I(_svc(2507, 10000), "宫颈液基细胞学检查(TCT)", "201", "04", "02", "110.00", gend="2"),
    I(_svc(1201, 10000), "静脉输液(第一组)", "201", "05", "01", "10.00"),
    I(_svc(1201, 20000), "静脉注射", "201", "05", "01", "5.00"),
    I(_svc(1201, 30000), "肌肉注射", "201", "05", "01", "4.00", max_cnt="3"),
    I(_svc(1202, 10000), "雾化吸入", "201", "05", "01", "12.00", max_cnt="3"),
    I(_svc(1203, 10000), "吸氧", "201", "05", "01", "3.00", "hour", max_cnt="24"),
    I(_svc(1204, 10000), "大换药", "201", "05", "01", "25.00"),
    I(_svc(3105, 10000), "血液透析", "201", "05", "01", "420.00", lmt_diag="N18|N17", tags="血液净化"),
    I(_svc(3105, 30000), "血液滤过", "201", "05", "02", "500.00", tags="血液净化"),
    I(_svc(4101, 10000), "运动疗法", "201", "05", "01", "45.00", pay_days="14", tags="康复"),
    I(_svc(4301, 10000), "普通针刺", "201", "05", "01", "30.00", tags="康复"),
    I(_svc(1105, 10000), "老年综合评估", "201", "05", "02", "80.00", age_min="65"),
    I(_svc(3311, 10000), "经皮冠状动脉支架置入术(PCI)", "201", "06", "01", "3800.00", ipt_only="1",
      hosp_lv_min="1", tags="心血管"),
    I(_svc(3311, 20000), "冠状动脉造影术", "201", "06", "01", "1200.00", ipt_only="1", tags="心血管"),
    I(_svc(3315, 10000), "人工全髋关节置换术", "201", "06", "01", "4500.00", ipt_only="1", hosp_lv_min="2",
      tags="骨科"),
    I(_svc(3313, 10000), "阑尾切除术", "201", "06", "01", "1100.00", ipt_only="1"),
    I(_svc(3304, 10000), "白内障超声乳化摘除术", "201", "06", "01", "1500.00", tags="日间病床"),
    I(_svc(3314, 10000), "子宫下段剖宫产术", "201", "06", "01", "1600.00", gend="2", ipt_only="1"),
    I(_svc(3201, 10000), "清创缝合术(小)", "201", "06", "01", "120.00"),
    # ---------------- 301 医用耗材 (08) ----------------
    I(_cons(1402, 1), "一次性使用输液器", "301", "08", "01", "2.50", "box"),
    I(_cons(1402, 2), "医用敷料(无菌纱布)", "301", "08", "01", "8.50", "box", markup="1.0"),
    I(_cons(2101, 3), "冠状动脉药物洗脱支架", "301", "08", "02", "680.00", cap="800.00", ipt_only="1",
      hosp_lv_min="1", markup="1.0", tags="高值耗材|心血管"),
    I(_cons(2301, 4), "人工髋关节假体(陶瓷-聚乙烯)", "301", "08", "02", "6800.00", cap="7200.00", markup="1.0",
      tags="高值耗材|骨科"),
    I(_cons(2501, 5), "人工晶状体(国产折叠)", "301", "08", "02", "980.00", markup="1.0", tags="高值耗材"),
    I(_cons(2501, 6), "人工晶状体(进口非球面)", "301", "08", "03", "2900.00"),
    I(_cons(1801, 7), "血液透析器", "301", "08", "02", "95.00", markup="1.0", tags="血液净化"),
)

#: kb_item_pair rows (a, b, relation, window)
PAIRS: tuple[tuple[str, str, str, str], ...] = (
    ("Ⅰ级护理", "Ⅱ级护理", "exclusive", "day"),
    ("经皮冠状动脉支架置入术(PCI)", "冠状动脉造影术", "includes", "visit"),
    ("静脉输液(第一组)", "静脉注射", "includes", "hour"),
    ("血常规(五分类)", "血红蛋白测定", "includes", "day"),
    ("胸部CT平扫", "胸部X线摄影(DR)", "exclusive", "visit"),
    ("血液透析", "血液滤过", "exclusive", "day"),
)

PARAMS: tuple[tuple[str, str], ...] = (
    ("readmit_days", "15"),
    ("self_pay_ratio_max", "0.08"),
    ("bed_hanging_min_days", "3"),
    # the project's own keys (rules/kb/README.md), beyond the 21 contract families
    ("same_day_outpatient_visits_max", "1"),
    ("day_surgery_max_days", "1"),
    ("bed_occupancy_max_ratio", "1.0"),
    ("nursing_levels_per_day_max", "1"),
    ("diag_female_only_prefixes", "O|N70|N71|N72|N73|N75|N76|N80|N81|N83|N85|N86|N87|N95|C53|C54|C56"),
    ("diag_male_only_prefixes", "N40|N41|N42|N43|N44|N45|N46|N47|N48|N49|C60|C61|C62|C63"),
    # person-level patterns (issue #16): drug_resale, covisit_group (and `fundguard analyze`'s co-visits)
    ("resale_window_days", "30"),
    ("resale_course_days", "7"),
    ("resale_qty_factor", "1.2"),
    ("resale_min_institutions", "2"),
    ("covisit_min_days", "5"),
    ("covisit_min_ratio", "10"),
)

#: unrestricted item per med_chrgitm_type that replaces a background line that would break a rule
SUBSTITUTE = {"09": "阿莫西林胶囊", "11": "复方丹参滴丸", "10": "甘草", "03": "常规心电图检查(十二通道)",
              "04": "肝功能全套", "05": "大换药", "06": "清创缝合术(小)", "08": "一次性使用输液器"}

BY_NAME = {it.name: it for it in ITEMS}
CODE_OF = {it.name: it.code for it in ITEMS}
INDEX_OF = {it.name: i for i, it in enumerate(ITEMS)}


def item(name: str) -> Item:
    return BY_NAME[name]


def purchase_price(it: Item) -> Decimal:
    """Background purchase price: the cheapest cent price with sale price <= purchase x markup_max_ratio."""
    p, r = Decimal(it.pric), Decimal(it.markup or "1")
    q = (p / r).quantize(Decimal("0.01"), rounding=ROUND_CEILING)
    assert q * r >= p
    return q


def kb_tables() -> dict[str, list[list[str]]]:
    """The KB as rows of strings in contract field order (header excluded)."""
    hil = []
    for it in ITEMS:
        row = {"hilist_code": it.code, "hilist_name": it.name, "list_type": it.list_type,
               "med_chrgitm_type": it.chrg, "chrgitm_lv": it.lv, "pric_uplmt_amt": it.cap,
               "gend_lmt": it.gend, "age_min": it.age_min, "age_max": it.age_max, "ipt_only": it.ipt_only,
               "hosp_lv_min": it.hosp_lv_min, "lmt_diag": it.lmt_diag, "max_cnt_per_day": it.max_cnt,
               "per_diem": it.per_diem, "min_interval_days": it.interval, "max_pay_days": it.pay_days,
               "markup_max_ratio": it.markup, "focus_tags": it.tags}
        hil.append([row[n] for n in ENTITIES["kb_hilist"].names if n in row])   # contract §3 columns: they come first
    pairs = [[CODE_OF[a], CODE_OF[b], rel, win] for a, b, rel, win in PAIRS]
    params = [list(p) for p in PARAMS]
    return {"kb_hilist": hil, "kb_item_pair": pairs, "kb_param": params}


def _m6(s: str) -> int:
    return int((Decimal(s) * 1_000_000).to_integral_value())


def _m4(s: str) -> int:
    return int((Decimal(s) * 10_000).to_integral_value())


HOSP_RANK = {f"{i:02d}": (1 if i <= 4 else 2 if i <= 7 else 3 if i <= 10 else 4) for i in range(1, 12)}


def norm_code(code: str) -> str:
    return code.replace(".", "").upper()


@dataclass
class KbArrays:
    """Per-item arrays for the vectorised generator (index = position in ITEMS)."""
    n: int = len(ITEMS)
    codes: np.ndarray = field(default_factory=lambda: np.array([it.code for it in ITEMS], dtype=object))
    names: np.ndarray = field(default_factory=lambda: np.array([it.name for it in ITEMS], dtype=object))

    def __post_init__(self):
        its = ITEMS
        self.chrg = np.array([it.chrg for it in its], dtype=object)
        self.lv = np.array([int(it.lv) for it in its], dtype=np.int8)
        self.pric6 = np.array([_m6(it.pric) for it in its], dtype=np.int64)
        self.cap6 = np.array([_m6(it.cap) if it.cap else -1 for it in its], dtype=np.int64)
        self.gend = np.array([int(it.gend or 0) for it in its], dtype=np.int8)
        self.age_min = np.array([int(it.age_min or -1) for it in its], dtype=np.int16)
        self.age_max = np.array([int(it.age_max or 999) for it in its], dtype=np.int16)
        self.ipt_only = np.array([it.ipt_only == "1" for it in its])
        self.hlm = np.array([int(it.hosp_lv_min or 9) for it in its], dtype=np.int8)
        self.max4 = np.array([_m4(it.max_cnt) if it.max_cnt else -1 for it in its], dtype=np.int64)
        self.per_diem = np.array([it.per_diem == "1" for it in its])
        self.interval = np.array([int(it.interval or 0) for it in its], dtype=np.int16)
        self.pay_days = np.array([int(it.pay_days or 0) for it in its], dtype=np.int16)
        self.markup = np.array([it.markup != "" for it in its])
        self.purch6 = np.array([_m6(str(purchase_price(it))) if it.markup else -1 for it in its], dtype=np.int64)
        self.cnt_kind = np.array([it.cnt for it in its], dtype=object)
        self.subst = np.array([INDEX_OF[SUBSTITUTE[it.chrg]] if it.chrg in SUBSTITUTE else i
                               for i, it in enumerate(its)], dtype=np.int32)
        self.pair_ab = [(INDEX_OF[a], INDEX_OF[b]) for a, b, _, _ in PAIRS]
        self.lmt = [tuple(norm_code(p) for p in it.lmt_diag.split("|")) if it.lmt_diag else () for it in its]

    def diag_ok_matrix(self, diag_codes: list[str]) -> np.ndarray:
        """ok[item, dx] = the item has no lmt_diag or the diagnosis matches one of its prefixes."""
        ok = np.ones((self.n, len(diag_codes) + 1), dtype=bool)   # last column: "no diagnosis"
        for i, prefixes in enumerate(self.lmt):
            if prefixes:
                for j, dx in enumerate(diag_codes):
                    ok[i, j] = norm_code(dx).startswith(prefixes)
                ok[i, -1] = False
        return ok


def check_kb() -> None:
    """Sanity of the sample KB: unique codes/names, substitutes unrestricted, pair items disjoint roles."""
    assert len({it.code for it in ITEMS}) == len(ITEMS)
    assert len(BY_NAME) == len(ITEMS)
    pair_items = {n for a, b, _, _ in PAIRS for n in (a, b)}
    for name in SUBSTITUTE.values():
        it = BY_NAME[name]
        assert not (it.gend or it.age_min or it.age_max or it.ipt_only or it.hosp_lv_min or it.lmt_diag
                    or it.max_cnt or it.per_diem or it.interval or it.pay_days or it.cap), name
        assert it.lv != "03" and name not in pair_items, name
    for a, b, _, _ in PAIRS:
        for n in (a, b):
            it = BY_NAME[n]
            assert not (it.interval or it.pay_days or it.max_cnt), n
