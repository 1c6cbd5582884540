"""What the background draws from: the diagnoses of the drop, the clinical profiles (diagnoses, item pools
per setting, length of stay) and their weights by age band, and the samplers over them."""
from __future__ import annotations

import numpy as np

from . import kb as K

I64 = np.int64

DX: list[tuple[str, str]] = [
    ("J06.900", "急性上呼吸道感染"), ("J20.900", "急性支气管炎"), ("J18.900", "肺炎"),
    ("I10.x00", "原发性高血压"), ("E11.900", "2型糖尿病"), ("I25.100", "动脉粥样硬化性心脏病"),
    ("I20.000", "不稳定型心绞痛"), ("I21.900", "急性心肌梗死"), ("I63.900", "脑梗死"),
    ("N18.500", "慢性肾脏病5期"), ("K29.700", "胃炎"), ("S72.000", "股骨颈骨折"), ("M17.900", "膝关节病"),
    ("K35.800", "急性阑尾炎"), ("H25.900", "老年性白内障"), ("O80.000", "单胎顺产"),
    ("O82.000", "经剖宫产术的单胎分娩"), ("N40.x00", "前列腺增生"), ("K74.600", "肝硬化"),
    ("Z01.400", "妇科检查"), ("N17.900", "急性肾衰竭"), ("I63.800", "其他的脑梗死"), ("I61.900", "脑内出血"),
    ("D63.800", "慢性病贫血"), ("I25.200", "陈旧性心肌梗死"), ("M81.900", "骨质疏松"), ("J44.100", "慢性阻塞性肺病伴急性加重"),
]
DXI = {c: i for i, (c, _) in enumerate(DX)}

# profile: out dx, inp dx, pools (names), inpatient med types / length of stay
P = {
    "resp": dict(out=["J06.900", "J20.900"], inp=["J18.900", "J44.100"],
                 outp=["阿莫西林胶囊", "头孢呋辛酯片", "连花清瘟胶囊", "小儿氨酚黄那敏颗粒", "布洛芬混悬液(儿童)",
                       "血常规(五分类)", "C反应蛋白测定(CRP)", "胸部X线摄影(DR)", "雾化吸入", "肌肉注射",
                       "静脉输液(第一组)", "静脉注射", "注射用头孢曲松钠(1g)", "黄芪", "甘草", "复合维生素B片"],
                 pharm=["阿莫西林胶囊", "头孢呋辛酯片", "连花清瘟胶囊", "小儿氨酚黄那敏颗粒", "布洛芬混悬液(儿童)",
                        "复合维生素B片"],
                 inpp=["注射用头孢曲松钠(1g)", "左氧氟沙星氯化钠注射液", "注射用头孢哌酮钠舒巴坦钠", "血常规(五分类)",
                       "C反应蛋白测定(CRP)", "胸部CT平扫", "胸部X线摄影(DR)", "雾化吸入", "吸氧", "静脉输液(第一组)",
                       "静脉注射", "一次性使用输液器", "肝功能全套", "肾功能", "肠内营养粉剂(TP)", "人血白蛋白(10g)"],
                 surg=[], los=(3, 10)),
    "htn": dict(out=["I10.x00"], inp=["I10.x00"],
                outp=["苯磺酸氨氯地平片", "硝苯地平控释片", "阿司匹林肠溶片", "阿托伐他汀钙片", "常规心电图检查(十二通道)",
                      "肾功能", "尿常规", "老年综合评估", "复方丹参滴丸", "血塞通软胶囊", "复合维生素B片"],
                pharm=["苯磺酸氨氯地平片", "硝苯地平控释片", "阿司匹林肠溶片", "复方丹参滴丸", "复合维生素B片"],
                inpp=["苯磺酸氨氯地平片", "常规心电图检查(十二通道)", "肾功能", "腹部彩色多普勒超声检查", "头颅磁共振平扫(MRI)"],
                surg=[], los=(3, 8)),
    "dm": dict(out=["E11.900"], inp=["E11.900"],
               outp=["盐酸二甲双胍缓释片", "门冬胰岛素注射液", "甘精胰岛素注射液", "糖化血红蛋白测定", "肝功能全套", "肾功能",
                     "甲钴胺片", "尿常规"],
               pharm=["盐酸二甲双胍缓释片", "甲钴胺片", "甘精胰岛素注射液", "复合维生素B片"],
               inpp=["门冬胰岛素注射液", "糖化血红蛋白测定", "血常规(五分类)", "肾功能", "静脉输液(第一组)",
                     "一次性使用输液器", "甲钴胺片"],
               surg=[], los=(4, 10)),
    "chd": dict(out=["I25.100"], inp=["I20.000", "I21.900"],
                outp=["阿司匹林肠溶片", "硫酸氢氯吡格雷片", "阿托伐他汀钙片", "复方丹参滴丸", "常规心电图检查(十二通道)",
                      "冠状动脉CT血管成像(CTA)", "血塞通软胶囊"],
                pharm=["阿司匹林肠溶片", "复方丹参滴丸", "阿托伐他汀钙片"],
                inpp=["低分子量肝素钙注射液", "硫酸氢氯吡格雷片", "阿司匹林肠溶片", "常规心电图检查(十二通道)",
                      "血常规(五分类)", "肝功能全套", "吸氧", "冠状动脉造影术", "冠状动脉CT血管成像(CTA)"],
                surg=["经皮冠状动脉支架置入术(PCI)", "冠状动脉药物洗脱支架"], los=(3, 9)),
    "stroke": dict(out=["I63.900"], inp=["I63.900"],
                   outp=["运动疗法", "普通针刺", "阿司匹林肠溶片", "硫酸氢氯吡格雷片", "血塞通软胶囊", "头颅磁共振平扫(MRI)"],
                   pharm=["阿司匹林肠溶片", "血塞通软胶囊"],
                   inpp=["头颅磁共振平扫(MRI)", "阿司匹林肠溶片", "硫酸氢氯吡格雷片", "运动疗法", "普通针刺",
                         "低分子量肝素钙注射液", "血塞通软胶囊", "静脉输液(第一组)", "吸氧", "肠内营养粉剂(TP)"],
                   surg=[], los=(7, 14)),
    "ckd": dict(out=["N18.500"], inp=["N18.500"],
                outp=["血液透析", "血液透析器", "重组人促红素注射液", "肾功能", "血常规(五分类)"],
                pharm=["复合维生素B片"],
                inpp=["血液透析", "血液滤过", "血液透析器", "重组人促红素注射液", "肾功能", "人血白蛋白(10g)"],
                surg=[], los=(4, 12)),
    "gastro": dict(out=["K29.700"], inp=["K29.700"],
                   outp=["奥美拉唑肠溶胶囊", "腹部彩色多普勒超声检查", "血常规(五分类)", "党参", "白术", "甘草"],
                   pharm=["奥美拉唑肠溶胶囊", "复合维生素B片"],
                   inpp=["注射用奥美拉唑钠", "腹部彩色多普勒超声检查", "血常规(五分类)", "静脉输液(第一组)"],
                   surg=[], los=(3, 7)),
    "ortho": dict(out=["M17.900", "M81.900"], inp=["S72.000"],
                  outp=["双能X线骨密度测定", "普通针刺", "当归", "黄芪", "布洛芬混悬液(儿童)", "大换药"],
                  pharm=["复合维生素B片", "阿司匹林肠溶片"],
                  inpp=["运动疗法", "胸部X线摄影(DR)", "血常规(五分类)", "低分子量肝素钙注射液", "医用敷料(无菌纱布)", "大换药"],
                  surg=["人工全髋关节置换术", "人工髋关节假体(陶瓷-聚乙烯)"], los=(7, 14)),
    "appendix": dict(out=["K35.800"], inp=["K35.800"],
                     outp=["血常规(五分类)", "腹部彩色多普勒超声检查"], pharm=["阿莫西林胶囊"],
                     inpp=["注射用头孢曲松钠(1g)", "大换药", "医用敷料(无菌纱布)", "血常规(五分类)", "腹部彩色多普勒超声检查"],
                     surg=["阑尾切除术"], los=(3, 7)),
    "cataract": dict(out=["H25.900"], inp=["H25.900"], outp=["复合维生素B片"], pharm=["复合维生素B片"],
                     inpp=["血常规(五分类)"], surg=["白内障超声乳化摘除术", "人工晶状体(国产折叠)"], los=(0, 1)),
    "maternity": dict(out=["Z01.400"], inp=["O80.000", "O82.000"],
                      outp=["宫颈液基细胞学检查(TCT)", "腹部彩色多普勒超声检查", "血常规(五分类)"],
                      pharm=["复合维生素B片"],
                      inpp=["缩宫素注射液", "血常规(五分类)", "腹部彩色多普勒超声检查", "静脉输液(第一组)"],
                      surg=["子宫下段剖宫产术"], los=(2, 5)),
    "prostate": dict(out=["N40.x00"], inp=["N40.x00"], outp=["盐酸坦索罗辛缓释胶囊", "前列腺特异性抗原测定(PSA)",
                                                             "腹部彩色多普勒超声检查", "尿常规"],
                     pharm=["盐酸坦索罗辛缓释胶囊"], inpp=["尿常规", "腹部彩色多普勒超声检查"], surg=[], los=(3, 6)),
    "liver": dict(out=["K74.600"], inp=["K74.600"], outp=["肝功能全套", "腹部彩色多普勒超声检查"], pharm=["复合维生素B片"],
                  inpp=["人血白蛋白(10g)", "肝功能全套", "腹部彩色多普勒超声检查", "注射用奥美拉唑钠"], surg=[], los=(5, 12)),
}
PROFILES = list(P)
PI = {p: i for i, p in enumerate(PROFILES)}
CHRONIC = ["htn", "dm", "chd", "ckd", "prostate", "stroke", "gastro"]
# acute outpatient / inpatient profile weights by age band (0: <15, 1: 15-49, 2: 50-64, 3: 65+)
OUT_W = {"resp": [8, 5, 4, 4], "gastro": [1, 3, 3, 2], "ortho": [0.3, 1, 2, 3], "maternity": [0, 1.5, 0.3, 0],
         "appendix": [0.1, 0.2, 0.1, 0.1]}
INP_W = {"resp": [6, 2, 2, 4], "gastro": [1, 2, 2, 2], "ortho": [0.5, 1, 2, 3], "appendix": [2, 2, 1, 0.5],
         "cataract": [0, 0.2, 2, 3], "maternity": [0, 4, 0, 0], "liver": [0, 0.5, 1, 1], "chd": [0, 0.3, 2, 3],
         "stroke": [0, 0.2, 1.5, 3], "ckd": [0, 0.3, 0.8, 1], "dm": [0, 0.3, 1, 1]}
DEPT_OF = {"resp": 0, "htn": 0, "dm": 0, "chd": 0, "stroke": 0, "ckd": 0, "gastro": 0, "liver": 0,
           "ortho": 1, "appendix": 1, "cataract": 4, "maternity": 2, "prostate": 1}


class Pools:
    def __init__(self):
        self.flat: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for kind in ("outp", "pharm", "inpp", "surg"):
            items, off, ln = [], [], []
            for p in PROFILES:
                lst = [K.INDEX_OF[n] for n in P[p][kind]]
                off.append(len(items))
                ln.append(len(lst))
                items += lst
            self.flat[kind] = (np.array(items or [0], dtype=np.int32), np.array(off), np.array(ln))
        self.out_dx = [np.array([DXI[c] for c in P[p]["out"]]) for p in PROFILES]
        self.inp_dx = [np.array([DXI[c] for c in P[p]["inp"]]) for p in PROFILES]
        self.los = np.array([P[p]["los"] for p in PROFILES])

    def draw(self, kind: str, prof: np.ndarray, rng) -> np.ndarray:
        items, off, ln = self.flat[kind]
        return items[off[prof] + (rng.random(len(prof)) * ln[prof]).astype(I64)]


def _cdf(weights: dict[str, list[float]]) -> tuple[np.ndarray, np.ndarray]:
    names = list(weights)
    w = np.array([weights[n] for n in names], dtype=float).T          # band x profile
    return np.cumsum(w / w.sum(1, keepdims=True), axis=1), np.array([PI[n] for n in names])


OUT_CDF = _cdf(OUT_W)
INP_CDF = _cdf(INP_W)


def pick(cdf_prof, band, rng):
    cdf, prof = cdf_prof
    u = rng.random(len(band))
    j = (u[:, None] > cdf[band]).sum(1)
    return prof[np.minimum(j, cdf.shape[1] - 1)]
