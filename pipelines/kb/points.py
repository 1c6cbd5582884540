"""One batch's sheets -> knowledge points, their codes, rejected rows and the count check. Pure.

A point is `mapped` when every parameter its kind carries was read (structured column, phrasing or curation)
and it has at least one code; otherwise it `needs_curation`, with the reason and its text (never dropped,
never guessed). A row that is not a point at all (no whole-number 序号, no name, a repeated 序号) or a code row
that cannot be used is rejected with file, sheet, row and reason.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from pipelines.kb.layout import Kind, SheetLayout, cell_text, squash
from pipelines.kb.phrasings import Curation, Phrasing, curate, normalise, read_group

_SPLIT = re.compile(r"[,，、;；/\n|]+")
_CODE = re.compile(r"^[0-9A-Z][0-9A-Z\-]*$")


@dataclass
class SheetData:
    file: str
    sheet: str
    layout: SheetLayout
    rows: list[tuple[int, tuple]]   # (1-based row number, cells) of every row below the header
    reported_columns: int = 0


@dataclass
class Knowledge:
    """What the sheets of one batch hold."""
    points: list[dict] = field(default_factory=list)
    codes: list[dict] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    mismatches: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class Readers:
    phrasings: dict[str, list[Phrasing]]
    curation: list[Curation]
    code_width: int = 15            # a service/herbal code stored as a number lost its leading zeros


def _get(row: tuple, lay: SheetLayout, stem: str):
    i = lay.columns.get(stem)
    return row[i] if i is not None and i < len(row) else None


def whole_number(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = squash(cell_text(value)).translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    if text.endswith(".0"):
        text = text[:-2]
    return int(text) if text.isdigit() else None


def split_codes(value, width: int) -> tuple[list[str], list[str]]:
    """(codes, unreadable tokens) of a "for reference" code cell: blank, one or several codes."""
    if value is None:
        return [], []
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(int(value)).zfill(width)], []
    tokens = [normalise(t).upper() for t in _SPLIT.split(str(value))]
    codes = [t for t in tokens if t and _CODE.match(t)]
    return list(dict.fromkeys(codes)), [t for t in tokens if t and not _CODE.match(t)]


def _reject(k: Knowledge, sd: SheetData, row: int, reason: str) -> None:
    k.rejected.append({"file": sd.file, "sheet": sd.sheet, "row": row, "role": sd.layout.shape.role,
                       "reason": reason})


def _params(kind: Kind, row: tuple, lay: SheetLayout, name: str, texts: list[str],
            readers: Readers) -> tuple[dict, list[str], list[str]]:
    """(parameters, reasons it needs curation, texts matched) of one point."""
    params, reasons, matched = dict(kind.fixed), [], []
    for param, spec in kind.structured.items():
        raw = cell_text(_get(row, lay, spec["column"]))
        if spec.get("number"):
            n = whole_number(raw) if raw else None
            if n is None or n <= 0:
                reasons.append(f"{spec['column']} {raw!r} is not a positive whole number")
            else:
                params[param] = n
        elif squash(raw) in spec.get("values", {}):
            params[param] = spec["values"][squash(raw)]
            matched.append(raw)
        else:
            reasons.append(f"{spec['column']} {raw!r} not understood")
    for group in kind.text:
        got = read_group(group, texts, readers.phrasings)
        if got is None:
            reasons.append(f"{group}: text not understood")
        else:
            params.update(got[0])
            matched.append(got[1])
    if kind.curation:
        c = curate(name, texts, readers.curation)
        if c is None:
            reasons.append("indication without ICD-10 codes in rules/kb/curation")
        else:
            params["lmt_diag"] = c.icd10
            matched.append(f"{c.text} -> {c.icd10} ({c.source})")
    return params, reasons, matched


def _point(k: Knowledge, sd: SheetData, rownum: int, row: tuple, seen: dict, readers: Readers) -> dict | None:
    lay = sd.layout
    no = whole_number(_get(row, lay, "序号"))
    if no is None:
        _reject(k, sd, rownum, f"序号 {cell_text(_get(row, lay, '序号'))!r} is not a whole number")
        return None
    if no in seen:
        _reject(k, sd, rownum, f"序号 {no} repeated (first on row {seen[no]})")
        return None
    name = cell_text(_get(row, lay, lay.shape.name_column))
    if not name:
        _reject(k, sd, rownum, f"{lay.shape.name_column} blank")
        return None
    seen[no] = rownum
    logic, basis = cell_text(_get(row, lay, "检出逻辑")), cell_text(_get(row, lay, "逻辑依据"))
    params, reasons, matched = _params(lay.kind, row, lay, name, [basis, logic], readers)
    known = {lay.shape.name_column, "序号", "检出逻辑", "逻辑依据", *lay.shape.code_columns}
    extra = {lay.headers[s]: cell_text(_get(row, lay, s)) for s in lay.columns if s not in known}
    declared = _get(row, lay, "知识点对应药品代码数量") if "知识点对应药品代码数量" in lay.columns else None
    return {"batch": lay.batch, "kind": lay.kind.id, "file": sd.file, "sheet": sd.sheet, "row": rownum,
            "point_no": no, "name": name, "logic": logic, "basis": basis, "basis_source": lay.basis_source,
            "declared_codes": whole_number(declared) if declared is not None else None,
            "declared_text": cell_text(declared), "code_rows": 0, "params": params, "reasons": reasons,
            "matched": matched, "extra": extra}


def _inline_codes(k: Knowledge, sd: SheetData, p: dict, row: tuple, readers: Readers) -> None:
    """Codes written on the point's own row (service, pair, herbal sheets)."""
    lay = sd.layout
    sides = ("a", "b") if len(lay.shape.code_columns) == 2 else ("",)
    for side, col in zip(sides, lay.shape.code_columns):
        codes, bad = split_codes(_get(row, lay, col), readers.code_width)
        if bad:
            p["reasons"].append(f"{lay.headers[col]}: not a code: {', '.join(bad)}")
        if not codes:
            p["reasons"].append(f"{lay.headers[col]} blank")
        name_col = {"a": "医疗服务项目A名称", "b": "医疗服务项目B名称"}.get(side, lay.shape.name_column)
        for c in codes:
            k.codes.append({"batch": lay.batch, "point_no": p["point_no"], "hilist_code": c, "side": side,
                            "name": cell_text(_get(row, lay, name_col)), "file": sd.file, "sheet": sd.sheet,
                            "row": p["row"]})
        p["code_rows"] += len(codes)


def _code_rows(k: Knowledge, sd: SheetData, by_no: dict[int, dict]) -> None:
    lay, seen = sd.layout, {}
    for rownum, row in sd.rows:
        no = whole_number(_get(row, lay, "对应知识点序号"))
        code = normalise(cell_text(_get(row, lay, "药品代码"))).upper()
        if no is None:
            _reject(k, sd, rownum, f"对应知识点序号 {cell_text(_get(row, lay, '对应知识点序号'))!r} is not a whole number")
        elif no not in by_no:
            _reject(k, sd, rownum, f"对应知识点序号 {no}: no such knowledge point")
        elif not code:
            _reject(k, sd, rownum, "药品代码 blank")
        elif not _CODE.match(code):
            _reject(k, sd, rownum, f"药品代码 {code!r} is not a code")
        elif (no, code) in seen:
            _reject(k, sd, rownum, f"药品代码 {code} repeated for point {no} (first on row {seen[(no, code)]})")
        else:
            seen[(no, code)] = rownum
            by_no[no]["code_rows"] += 1
            k.codes.append({"batch": lay.batch, "point_no": no, "hilist_code": code, "side": "",
                            "name": cell_text(_get(row, lay, "药品通用名")), "file": sd.file, "sheet": sd.sheet,
                            "row": rownum})


def read_batch(sheets: list[SheetData], readers: Readers) -> Knowledge:
    """The points and codes of one batch (its points sheet, and its code sheet for a drug batch)."""
    k = Knowledge()
    points_sheet = next(s for s in sheets if s.layout.shape.role == "points")
    by_no: dict[int, dict] = {}
    seen: dict[int, int] = {}
    for rownum, row in points_sheet.rows:
        p = _point(k, points_sheet, rownum, row, seen, readers)
        if p is None:
            continue
        by_no[p["point_no"]] = p
        if points_sheet.layout.shape.code_columns:
            _inline_codes(k, points_sheet, p, row, readers)
    for sd in sheets:
        if sd.layout.shape.role == "codes":
            _code_rows(k, sd, by_no)
    for p in by_no.values():
        _finish(k, points_sheet, p)
        k.points.append(p)
    return k


def _finish(k: Knowledge, sd: SheetData, p: dict) -> None:
    """Count check, status and the JSON columns of one point."""
    if "知识点对应药品代码数量" in sd.layout.columns:
        if p["declared_codes"] != p["code_rows"]:
            k.mismatches.append({"file": sd.file, "sheet": sd.sheet, "row": p["row"], "point_no": p["point_no"],
                                 "declared": p["declared_text"], "found": p["code_rows"]})
        if p["code_rows"] == 0:
            p["reasons"].append("no drug code rows")
    p["status"] = "needs_curation" if p["reasons"] else "mapped"
    p["reason"] = "; ".join(p.pop("reasons"))
    p["params"] = json.dumps(p["params"], ensure_ascii=False, sort_keys=True)
    p["matched"] = " | ".join(p["matched"])
    p["extra"] = json.dumps(p["extra"], ensure_ascii=False, sort_keys=True)
    p.pop("declared_text")
