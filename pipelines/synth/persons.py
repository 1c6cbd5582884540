"""psn rows of a batch: fake names and 18-character ID numbers consistent with birth date and sex."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .drop import Batch, DropWriter

I64 = np.int64

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国文辉鑫宇浩然子轩梓涵一诺欣怡思远雨桐博文嘉怡佳琪俊杰晨曦志强海燕红梅玉兰淑珍建华春梅永刚丽娟")
CHECK_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=I64)
CHECK_C = np.array(list("10X98765432"))


def persons_table(w: DropWriter, b: Batch, rng: np.random.Generator) -> pa.Table:
    """psn rows: fake names and 18-character ID numbers consistent with birth date and sex."""
    n = len(b.p_seq)
    sur = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)]
    g1 = np.array(GIVEN)[rng.integers(0, len(GIVEN), n)]
    g2 = np.array(GIVEN + [""] * 30)[rng.integers(0, len(GIVEN) + 30, n)]
    names = np.char.add(np.char.add(sur.astype(str), g1.astype(str)), g2.astype(str))
    area = np.array([int(a) for a in rng.choice(["330102", "330105", "330106", "330108", "330110", "330122"], n)])
    order = rng.integers(0, 500, n) * 2 + np.where(b.p_gend == 1, 1, 0)   # odd = male
    digits = np.zeros((n, 17), dtype=I64)
    for k, (v, width) in enumerate(((area, 6), (b.p_by.astype(I64), 4), (b.p_bm.astype(I64), 2),
                                    (b.p_bd.astype(I64), 2), (order.astype(I64), 3))):
        start = sum(wd for _, wd in ((area, 6), (b.p_by, 4), (b.p_bm, 2), (b.p_bd, 2), (order, 3))[:k])
        for j in range(width):
            digits[:, start + j] = v // 10 ** (width - 1 - j) % 10
    check = CHECK_C[(digits * CHECK_W).sum(1) % 11]
    body = pc.cast(pa.array(area * 10**11 + b.p_by.astype(I64) * 10**7 + b.p_bm.astype(I64) * 10**5
                            + b.p_bd.astype(I64) * 10**3 + order.astype(I64)), pa.string())
    certno = pc.binary_join_element_wise(body, pa.array(check.astype(str)), "")
    brdy = pc.binary_join_element_wise(
        pc.cast(pa.array(b.p_by.astype(I64)), pa.string()),
        pc.utf8_lpad(pc.cast(pa.array(b.p_bm.astype(I64)), pa.string()), 2, "0"),
        pc.utf8_lpad(pc.cast(pa.array(b.p_bd.astype(I64)), pa.string()), 2, "0"), "-")
    dies = b.p_die >= 0
    psn_type = np.where(b.p_insu == 310, np.where(rng.random(n) < 0.25, "1102", "1101"),
                        np.where(rng.random(n) < 0.2, "1403", "1401"))
    return pa.table({
        "psn_no": w.psn_no(b.p_seq), "psn_name": pa.array(names.tolist()), "certno": certno,
        "gend": pa.array(b.p_gend.astype(str)), "brdy": brdy,
        "insutype": pa.array(b.p_insu.astype(str)), "psn_type": pa.array(psn_type),
        "insu_admdvs": pa.array(np.full(n, w.admdvs)),
        "die_date": pc.if_else(pa.array(dies), w.date(np.maximum(b.p_die, 0)), pa.nulls(n, pa.string())),
    })
