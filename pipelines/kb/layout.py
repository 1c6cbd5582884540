"""Recognising a published knowledge-base sheet (rules/kb/batches.yml): its header row, shape, kind and batch.

Pure: takes the first rows of a sheet (already read) and the layout table, returns what the sheet is or
raises `LayoutError` naming the file, the sheet and what was expected. Nothing here reads a file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_BRACKET = re.compile(r"^(?P<stem>.*?)[（(](?P<inner>[^（()）]*)[)）]$")
_SPACE = re.compile(r"[\s\u3000]+")
_QUOTES = str.maketrans("", "", "\"'“”‘’「」『』")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_BATCH_RE = re.compile(r"第(?P<n>[一二三四五六七八九十]+)批(?:[-－—](?P<sub>\d+))?")


class LayoutError(ValueError):
    """A sheet or file whose layout is not the published one: refused whole."""

    def __init__(self, file: str, sheet: str | None, message: str):
        self.file, self.sheet, self.message = file, sheet, message
        where = f"{file}" + (f", sheet {sheet!r}" if sheet else "")
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True)
class Shape:
    name: str
    role: str                       # points | codes
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    name_column: str | None = None
    code_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kind:
    id: str
    batch: str
    phrase: str
    shape: str                      # drug | service | service_pair | herbal
    label: str
    extra: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    fixed: dict = field(default_factory=dict)
    structured: dict = field(default_factory=dict)
    text: tuple[str, ...] = ()
    curation: str | None = None
    spans: bool = False             # one kind over several batches (12-18): the batch is read from the text

    def sheet_shapes(self) -> tuple[str, ...]:
        return ("drug_points", "drug_codes") if self.shape == "drug" else (self.shape,)


@dataclass(frozen=True)
class Layout:
    header_rows_max: int
    shapes: dict[str, Shape]
    kinds: dict[str, Kind]


@dataclass(frozen=True)
class SheetLayout:
    """What a sheet is: the header's 1-based row, shape, kind, batch and the column index of every stem."""
    header_row: int
    shape: Shape
    kind: Kind
    batch: str
    columns: dict[str, int]
    basis_source: str
    headers: dict[str, str]         # stem -> the header text as published


def load_layout(doc: dict) -> Layout:
    shapes = {n: Shape(n, s["role"], tuple(s["required"]), tuple(s.get("optional", ())), s.get("name"),
                       tuple(s.get("codes", ()))) for n, s in doc["shapes"].items()}
    kinds = {}
    for kid, k in doc["kinds"].items():
        kinds[kid] = Kind(kid, str(k["batch"]), k["phrase"], k["shape"], k.get("label", k["phrase"]),
                          tuple(k.get("extra", ())), tuple(k.get("optional", ())), dict(k.get("fixed", {})),
                          dict(k.get("structured", {})), tuple(k.get("text", ())), k.get("curation"),
                          bool(k.get("spans", False)))
        for s in kinds[kid].sheet_shapes():
            if s not in shapes:
                raise ValueError(f"batches.yml: kind {kid} names unknown shape {s}")
    return Layout(int(doc.get("header_rows_max", 4)), shapes, kinds)


def cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def squash(text: str) -> str:
    """Text with every space and line break removed."""
    return _SPACE.sub("", text)


def header_stem(value) -> tuple[str, str]:
    """(stem, bracketed part) of a header cell: `逻辑依据（2024版国家药品目录备注）` -> (逻辑依据, 2024版国家药品目录备注)."""
    text = squash(cell_text(value))
    m = _BRACKET.match(text)
    return (m.group("stem"), m.group("inner")) if m else (text, "")


def _row_stems(row) -> list[str]:
    return [header_stem(c)[0] for c in row]


def _match_shape(stems: list[str], layout: Layout) -> Shape | None:
    present = set(stems)
    fits = [s for s in layout.shapes.values() if set(s.required) <= present]
    return max(fits, key=lambda s: len(s.required)) if fits else None


def find_header(file: str, sheet: str, head: list, layout: Layout) -> tuple[int, Shape]:
    """The 1-based header row among the first rows, and its shape; LayoutError when none fits."""
    for i, row in enumerate(head[:layout.header_rows_max], 1):
        shape = _match_shape(_row_stems(row), layout)
        if shape:
            return i, shape
    best, missing = 0, None
    for i, row in enumerate(head[:layout.header_rows_max], 1):
        present = set(_row_stems(row))
        for s in layout.shapes.values():
            lack = [c for c in s.required if c not in present]
            if len(lack) < len(s.required) and (missing is None or len(lack) < len(missing[1])):
                best, missing = i, (s, lack)
    expected = "; ".join(f"{s.name}: {', '.join(s.required)}" for s in layout.shapes.values())
    if missing:
        raise LayoutError(file, sheet, f"no header row on rows 1–{layout.header_rows_max}: row {best} looks like "
                          f"a {missing[0].name} header but lacks {', '.join(missing[1])} "
                          f"(expected columns {', '.join(missing[0].required)})")
    raise LayoutError(file, sheet, f"no header row on rows 1–{layout.header_rows_max} (expected one of: {expected})")


def recognise_kind(file: str, sheet: str, texts: list[str], layout: Layout) -> Kind:
    """The kind whose phrase the sheet name or title rows hold (the longest phrase found)."""
    blob = squash(" ".join(texts)).translate(_QUOTES)
    found = [k for k in layout.kinds.values() if k.phrase in blob]
    if not found:
        raise LayoutError(file, sheet, "not recognised as a batch: neither the sheet name nor the title rows name "
                          "one of " + ", ".join(k.phrase for k in layout.kinds.values()))
    longest = max(len(k.phrase) for k in found)
    best = [k for k in found if len(k.phrase) == longest]
    if len(best) > 1:
        raise LayoutError(file, sheet, f"ambiguous: names {', '.join(k.phrase for k in best)}")
    return best[0]


def chinese_number(text: str) -> int:
    """一..九十九 -> int."""
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS[tens] if tens else 1) * 10 + (_CN_DIGITS[ones] if ones else 0)
    return _CN_DIGITS[text]


def batch_of(kind: Kind, texts: list[str]) -> str | None:
    """The batch label: the kind's own, or for a kind spanning batches (12-18) the 第N批 the texts name."""
    if not kind.spans:
        return kind.batch
    lo, hi = (int(x) for x in kind.batch.split("-"))
    for t in texts:
        for m in _BATCH_RE.finditer(squash(t)):
            n = chinese_number(m.group("n"))
            if lo <= n <= hi:
                return str(n)
    return None


def recognise(file: str, sheet: str, head: list, layout: Layout, file_stem: str) -> SheetLayout:
    """Header row, shape, kind and batch of one sheet, checked against the published layout."""
    header_row, shape = find_header(file, sheet, head, layout)
    titles = [cell_text(c) for row in head[:header_row - 1] for c in row if cell_text(c)]
    kind = recognise_kind(file, sheet, [sheet, *titles], layout)
    if shape.name not in kind.sheet_shapes():
        raise LayoutError(file, sheet, f"a {shape.name} sheet, but {kind.label} (batch {kind.batch}) has "
                          f"sheets {', '.join(kind.sheet_shapes())}")
    batch = batch_of(kind, [sheet, *titles, file_stem])
    if batch is None:
        raise LayoutError(file, sheet, f"{kind.label}: the batch number (第N批, {kind.batch}) is named neither "
                          f"in the title rows, the sheet name nor the file name")
    extra = kind.extra if shape.role == "points" else ()
    allowed = set(shape.required) | set(shape.optional) | set(extra) | (
        set(kind.optional) if shape.role == "points" else set())
    columns, headers, basis_source = {}, {}, ""
    for idx, cell in enumerate(head[header_row - 1]):
        stem, inner = header_stem(cell)
        if not stem:
            continue                                    # trailing blank header cells (over-wide sheets)
        if stem not in allowed:
            raise LayoutError(file, sheet, f"row {header_row}: unexpected column {cell_text(cell)!r} "
                              f"(a {kind.label} {shape.role} sheet has {', '.join([*shape.required, *extra])})")
        columns.setdefault(stem, idx)
        headers.setdefault(stem, cell_text(cell))
        if stem == "逻辑依据":
            basis_source = inner
    lack = [c for c in extra if c not in columns]
    if lack:
        raise LayoutError(file, sheet, f"row {header_row}: {kind.label} needs column(s) {', '.join(lack)}")
    return SheetLayout(header_row, shape, kind, batch, columns, basis_source, headers)
