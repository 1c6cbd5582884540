"""Generated national knowledge-base batch files in the published shapes (../shared/reference/nhsa-kb-batches.md):
titles above a header on row 2, 3 or 4, padded header text, two over-wide code sheets (16,384 reported
columns), curly quotes in a sheet name, and, when asked, a count mismatch, unreadable remarks and rows to
reject. Each file comes with what an exact import must report (`Expected`), known by construction.

`write_batches(out, scale=1.0)` writes all 18 batches at their published sizes (~21,000 code rows);
`scale=0` writes a handful of points per batch (tests). `as_csv=True` saves every sheet as its own CSV.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

CN = {1: "一", 3: "三", 4: "四", 5: "五", 6: "六", 7: "七", 8: "八", 9: "九", 10: "十", 11: "十一", 12: "十二",
      13: "十三", 14: "十四", 15: "十五", 16: "十六", 17: "十七", 18: "十八"}
ATC_GROUPS = {12: "消化道及代谢", 13: "血液和造血器官", 14: "心血管系统", 15: "皮肤泌尿生殖及激素",
              16: "全身用抗感染药", 17: "抗肿瘤及免疫调节和肌肉骨骼", 18: "神经系统"}
BASIS = "逻辑依据（2024版国家药品目录备注）"
COUNT = "知识点对应              药品代码数量"      # padded as published
SERVICE_CODE = "项目代码供参考 （国家医保局全国医疗服务项目）"

# batch, sub, rule phrase, shape, points, code rows, (points header row, codes header row), remarks (text, reads?)
# A remark that reads is understood by rules/kb/phrasings.yml or rules/kb/curation; one that does not needs curation.
BATCHES = [
    (1, 1, "药品区分性别使用", "drug", 487, 6476, (2, 2), [("限女性", True), ("限男性", True)]),
    (1, 2, "医疗服务项目区分性别使用", "service", 395, 0, (4, 4), [("限女性", True), ("限男性", True)]),
    (1, 3, "药品儿童专用", "drug", 277, 4374, (4, 4), [("儿童专用", True), ("限6岁以下儿童", True)]),
    (1, 4, "药品限儿童使用", "drug", 16, 32, (4, 2), [("限儿童", True), ("限12岁以下", True)]),
    (1, 5, "医疗服务项目儿童专用", "service", 34, 0, (4, 4), [("儿童专用项目", True), ("限14岁以下", True)]),
    (3, 1, "药品限工伤保险", "drug", 14, 89, (4, 2), [("限工伤保险", True)]),
    (3, 2, "药品限生育保险", "drug", 8, 31, (4, 2), [("限生育保险", True)]),
    (4, 0, "药品限就医方式", "drug", 40, 740, (4, 2), [("限住院", True), ("限门诊慢特病", True)]),
    (5, 0, "药品限医疗机构级别", "drug", 66, 966, (4, 2),
     [("限二级及以上医疗机构", True), ("限三级医院", True), ("限具有相应资质的医疗机构使用", False)]),
    (6, 0, "药品限支付疗程", "drug", 35, 1151, (4, 2), [("限支付14天", True), ("每年限支付30天", True)]),
    (7, 0, "医疗服务项目重复收费", "service_pair", 905, 0, (4, 4), [("同一天", True), ("同一次住院", True)]),
    (8, 1, "医疗服务项目限定频次", "service", 73, 0, (4, 4), [("国家医保支付政策", True)]),
    (8, 2, "医疗服务项目限年龄", "service", 6, 0, (4, 4), [("限18岁以上", True), ("限6岁以下", True)]),
    (8, 3, "医疗服务项目限支付疗程", "service", 17, 0, (4, 4), [("限支付7天", True), ("限按疗程支付", False)]),
    (8, 4, "医疗服务项目周期超频次", "service", 20, 0, (4, 4), [("国家医保支付政策", True)]),
    (9, 0, "药品限二线使用", "drug", 115, 605, (3, 4), [("限二线用药", True)]),
    (10, 0, "超互联网医院药品支付范围", "drug", 27, 236, (4, 2), [("互联网医院不予支付", True)]),
    (11, 1, "中药饮片单复方均不予支付", "herbal", 42, 0, (4, 4), [("单复方均不予支付", True)]),
    (11, 2, "中药饮片单方使用不予支付", "herbal", 121, 0, (4, 4), [("单方使用不予支付", True)]),
] + [(b, 0, "药品限适应症", "drug", pts, rows, (4, 4),
      [("限慢性乙型肝炎患者", True), ("限Ⅱ型糖尿病患者", True), ("限确诊的类风湿关节炎患者", True),
       ("限医生诊断的罕见病患者", False)])
     for b, pts, rows in ((12, 120, 900), (13, 39, 459), (14, 233, 1300), (15, 100, 800), (16, 180, 1200),
                          (17, 150, 1100), (18, 90, 700))]
OVER_WIDE = {(1, 1), (9, 0)}         # the two code sheets that report 16,384 columns


@dataclass
class Expected:
    """What an exact import of one file must report."""
    file: str
    batch: str
    points_read: int = 0
    code_rows_read: int = 0
    points_mapped: int = 0
    points_curation: int = 0
    rows_rejected: int = 0
    count_mismatches: int = 0
    planted: list[dict] = field(default_factory=list)   # mapped points with one of their codes
    points_rejected: int = 0                            # of rows_rejected: on the points sheet


def batch_label(b: int, sub: int) -> str:
    return f"{b}-{sub}" if sub else str(b)


def file_stem(b: int, sub: int, rule: str) -> str:
    base = f"第{CN[b]}批" + (f"-{sub}" if sub else "")
    return f"{base}_{rule}" + (f"_{ATC_GROUPS[b]}" if b in ATC_GROUPS else "")


def _counts(points: int, rows: int) -> list[int]:
    base, extra = divmod(rows, points)
    return [base + (1 if i < extra else 0) for i in range(points)]


def _size(points: int, rows: int, scale: float) -> tuple[int, int]:
    if scale > 0:
        return max(1, round(points * scale)), round(rows * scale)
    n = min(points, 6)
    return n, (min(rows, 2 * n + 1) if rows else 0)


def _drug_code(b: int, sub: int, i: int, j: int) -> str:
    return f"X{b:02d}{sub}K{i:05d}{j:03d}010101445"


def _service_code(b: int, sub: int, i: int, side: str = "") -> str:
    return f"{b:02d}{sub}{'-ab'.index(side or '-')}{i:05d}00000".rjust(15, "0")


def _points_header(shape: str, b: int, sub: int) -> list[str]:
    extra = {(1, 1): ["限定性别"], (1, 2): ["限定性别", "备注"], (1, 5): ["备注"], (8, 1): ["单日上限数量"],
             (8, 4): ["频次上限", "周期（天）"]}.get((b, sub), [])
    if shape == "drug":
        return [" 序号 ", "药品通用名", "检出\n逻辑", BASIS, *extra, COUNT]
    if shape == "service":
        return ["序号", "医疗服务项目名称", "检出逻辑", "逻辑依据（国家医保支付政策）", *extra, SERVICE_CODE]
    if shape == "service_pair":
        return ["序号", "时间区间", "医疗服务项目A名称", "医疗服务项目A代码供参考 （国家医保局全国医疗服务项目）",
                "医疗服务项目B名称", "医疗服务项目B代码供参考 （国家医保局全国医疗服务项目）", "检出逻辑", "逻辑依据（国家医保支付政策）"]
    return ["序号", "中药饮片名称", "中药饮片代码（供参考）", "检出逻辑", "逻辑依据（2025版国家药品目录备注）"]


def _titles(b: int, sub: int, rule: str, header_row: int, what: str) -> list[str]:
    rows = [f"第{CN[b]}批" + (f"-{sub}" if sub else "") + f"“{rule}”{what}"]
    rows += ["说明：知识点仅供参考，各地可结合实际补充完善", "（更新日期：2025年6月）"][:header_row - 2]
    return rows


def _batch_rows(spec, scale: float, traps: bool, exp: Expected) -> tuple[list[list], list[list]]:
    """(points rows, code rows) of one batch, and the expected counts in `exp`."""
    b, sub, rule, shape, points, rows, _, remarks = spec
    n, m = _size(points, rows, scale)
    counts = _counts(n, m) if shape == "drug" else [0] * n
    prow, crow = [], []
    for i in range(1, n + 1):
        text, reads = remarks[(i - 1) % len(remarks)]
        name = f"{rule[:2]}知识点{b}{sub}{i:04d}"
        logic = f"{name}：{text}，超出范围的费用纳入疑点"
        declared = counts[i - 1]
        if traps and (b, sub) == (5, 0) and i == 1:
            declared += 1                               # the count mismatch: declares one code more than it has
            exp.count_mismatches += 1
        if shape == "drug":
            extra = ["女" if "女" in text else "男"] if (b, sub) == (1, 1) else []
            prow.append([i, name, logic, text, *extra, declared])
            code = None
            for j in range(1, counts[i - 1] + 1):
                code = _drug_code(b, sub, i, j)
                crow.append([i, name, len(crow) + 1, code])
            reads = reads and counts[i - 1] > 0
        elif shape == "service":
            code = _service_code(b, sub, i)
            extra = {(1, 2): [("女" if "女" in text else "男"), "参考项目内涵"], (1, 5): ["新生儿除外"],
                     (8, 1): [1 + i % 3], (8, 4): [2 + i % 2, 7 * (1 + i % 4)]}.get((b, sub), [])
            prow.append([i, name, logic, text, *extra, code])
        elif shape == "service_pair":
            a, code = _service_code(b, sub, i, "a"), _service_code(b, sub, i, "b")
            if traps and i == 2:
                a = f"{a}、{_service_code(b, sub, 900 + i, 'a')}"    # two codes in one "for reference" cell
            prow.append([i, text, f"A{name}", a, f"B{name}", code, logic, "国家医保支付政策"])
        else:
            code = f"T{b:02d}{sub}{i:06d}"
            prow.append([i, name, code, logic, text])
        exp.points_read += 1
        exp.points_mapped += reads
        exp.points_curation += not reads
        if reads:
            exp.planted.append({"batch": exp.batch, "point_no": i, "name": name, "code": code, "text": text,
                                "a_code": a if shape == "service_pair" else None})
    exp.code_rows_read += len(crow)
    return prow, crow


def _add_traps(spec, prow: list[list], crow: list[list], exp: Expected) -> None:
    """Rows an exact import rejects, and an unreadable remark on a readable kind."""
    b, sub, _, shape, *_ = spec
    if (b, sub) == (4, 0):
        prow.append(["注", "本表以外药品不适用", "", "", ""])       # a note row: 序号 not a number
        exp.points_read += 1
        exp.rows_rejected += 1
        exp.points_rejected += 1
    if (b, sub) == (6, 0) and crow:
        crow.append([999, "不存在的知识点", len(crow) + 1, "XZZ999"])  # a code row of a point that does not exist
        crow.append([1, crow[0][1], len(crow) + 1, ""])              # a code row without a code
        exp.code_rows_read += 2
        exp.rows_rejected += 2


def _write_sheet(ws, titles: list[str], header: list[str], rows: list[list], over_wide: bool) -> None:
    from openpyxl.styles import Font

    for r, t in enumerate(titles, 1):
        ws.cell(row=r, column=1, value=t)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=len(header))
    h = len(titles) + 1
    for c, v in enumerate(header, 1):
        ws.cell(row=h, column=c, value=v)
    if over_wide:
        for c in range(len(header) + 1, len(header) + 4):
            ws.cell(row=h, column=c, value=" ")          # trailing blank header cells
        ws.cell(row=h, column=16384).font = Font(bold=True)   # a styled empty cell at XFD: 16,384 columns
    for r in rows:
        ws.append(r)


def _write_csv(path: Path, titles: list[str], header: list[str], rows: list[list], encoding: str) -> None:
    with open(path, "w", encoding=encoding, newline="") as f:
        w = csv.writer(f)
        for t in titles:
            w.writerow([t] + [""] * (len(header) - 1))
        w.writerow(header)
        w.writerows(rows)


def write_batch(out: Path, spec, *, scale: float = 1.0, traps: bool = True, as_csv: bool = False,
                encoding: str = "utf-8") -> list[Expected]:
    """One batch's file(s) in `out` (an .xlsx, or a CSV per sheet), with what their import must report."""
    from openpyxl import Workbook

    b, sub, rule, shape, _, _, (hp, hc), _ = spec
    stem = file_stem(b, sub, rule)
    exp = Expected(f"{stem}.xlsx", batch_label(b, sub))
    prow, crow = _batch_rows(spec, scale, traps, exp)
    if traps:
        _add_traps(spec, prow, crow, exp)
    sheets = [(f"“{rule}”规则对应知识点明细"[:31], _titles(b, sub, rule, hp, "规则对应知识点明细"),
               _points_header(shape, b, sub), prow, False)]
    if shape == "drug":
        name = f"\"{rule}“知识点对应药品代码" if (b, sub) == (9, 0) else f"“{rule}”知识点对应药品代码"
        sheets.append((name[:31], _titles(b, sub, rule, hc, "知识点对应药品代码"),
                       ["对应知识点序号", "药品通用名", "序号", "药品代码"], crow, (b, sub) in OVER_WIDE))
    if as_csv:
        return _split_expected(out, stem, sheets, exp, encoding)
    wb = Workbook()
    wb.remove(wb.active)
    for name, titles, header, rows, wide in sheets:
        _write_sheet(wb.create_sheet(name), titles, header, rows, wide)
    wb.save(out / exp.file)
    return [exp]


def _split_expected(out: Path, stem: str, sheets, exp: Expected, encoding: str) -> list[Expected]:
    """CSV per sheet: the points file reports the points (and their rejected rows), the code file the code rows."""
    result = []
    for i, (name, titles, header, rows, _) in enumerate(sheets):
        fname = f"{stem}_{'知识点明细' if i == 0 else '知识点对应药品代码'}.csv"
        _write_csv(out / fname, titles, header, rows, encoding)
        if i == 0:
            e = Expected(fname, exp.batch, exp.points_read, 0, exp.points_mapped, exp.points_curation,
                         exp.points_rejected, exp.count_mismatches, exp.planted, exp.points_rejected)
        else:
            e = Expected(fname, exp.batch, code_rows_read=exp.code_rows_read,
                         rows_rejected=exp.rows_rejected - exp.points_rejected)
        result.append(e)
    return result


def write_batches(out: Path, *, scale: float = 1.0, traps: bool = True, as_csv: bool = False,
                  only: set[str] | None = None, encoding: str = "utf-8") -> list[Expected]:
    """Every batch (or those of `only`, batch labels such as {"5", "1-1"}) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = []
    for spec in BATCHES:
        if only is None or batch_label(spec[0], spec[1]) in only:
            result.extend(write_batch(out, spec, scale=scale, traps=traps, as_csv=as_csv, encoding=encoding))
    return result
