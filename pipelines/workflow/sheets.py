"""Reading the forms institutions and inspectors send back (.xlsx or .csv) into numbered rows, and
parsing their cells (money, dates, answers). Pure apart from `read_form`, which reads the one file.

A form may have a title block above the table (the worksheet's team details): the header row is the
first row naming the key column; the labelled cells above it come back as `meta`. Line numbers are the
row numbers a clerk sees in Excel (or the CSV line), so a rejection can be found in the file.
Headers are matched on the canonical name or a Chinese label, alone or combined ("疑点编号 suspect_id"),
on one header row or two (the export's feedback form: Chinese labels, the English names under them).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path


class FormError(ValueError):
    """A file that cannot be read as the expected form at all (refused whole)."""


@dataclass
class Form:
    path: Path
    rows: list[tuple[int, dict]]                 # (line, canonical field -> raw cell value)
    meta: dict = field(default_factory=dict)     # label cell (normalised) -> value, above the header
    unknown_columns: list[str] = field(default_factory=list)


_SPLIT = re.compile(r"[\s/()（）|:：,，]+")


def _norm(text) -> str:
    return re.sub(r"\s+", "", str(text or "")).strip().lstrip("\ufeff").lower()


def match_header(header, aliases: dict[str, tuple[str, ...]]) -> str | None:
    """Canonical field of one header cell: the whole text or one of its tokens is a known name."""
    whole = _norm(header)
    tokens = [t.lower() for t in _SPLIT.split(str(header or "").strip().lstrip("\ufeff")) if t]
    for name, forms in aliases.items():
        known = {_norm(f) for f in (name, *forms)}
        if whole in known or any(t in known for t in tokens):
            return name
    return None


def _decode(data: bytes) -> str:
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise FormError("not UTF-8 or GB18030 text / 文件编码无法识别")


def _grids(path: Path) -> list[list[tuple[int, list]]]:
    """Each sheet of a workbook (a CSV is one sheet) as numbered rows."""
    low = path.name.lower()
    if low.endswith(".xlsx"):
        import openpyxl

        try:
            wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - any unreadable workbook is refused whole
            raise FormError(f"{path.name}: not a readable .xlsx ({exc}) / 无法读取Excel文件") from exc
        out = [[(i, list(r)) for i, r in enumerate(ws.iter_rows(values_only=True), start=1)]
               for ws in wb.worksheets]
        wb.close()
        return out
    if low.endswith(".csv"):
        text = _decode(path.read_bytes())
        reader = csv.reader(io.StringIO(text, newline=""))
        out = []
        start = 1
        for r in reader:
            out.append((start, r))
            start = reader.line_num + 1
        return [out]
    raise FormError(f"{path.name}: expected .xlsx or .csv / 仅接受xlsx或csv文件")


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _find_header(path: Path, aliases: dict[str, tuple[str, ...]], key: str,
                 max_header_row: int) -> tuple[list[tuple[int, list]], int]:
    """The first sheet with a row naming `key` in its first `max_header_row` rows, and that row's index."""
    for sheet in _grids(path):
        for idx, (_, cells) in enumerate(sheet[:max_header_row]):
            if any(match_header(c, {key: aliases[key]}) for c in cells if not _blank(c)):
                return sheet, idx
    raise FormError(f"{path.name}: no header row with column {key} / 找不到表头（{aliases[key][0]}）")


def _is_second_header(cells: list, key_at: list[int], aliases: dict[str, tuple[str, ...]], key: str) -> bool:
    """A row right under the header whose key cell is itself a header (the export's feedback form puts the
    English names under the Chinese labels): a header row, not an answer."""
    return any(i < len(cells) and not _blank(cells[i]) and match_header(cells[i], {key: aliases[key]})
               for i in key_at)


def _column_names(header_rows: list[list], aliases: dict[str, tuple[str, ...]]) -> tuple[dict[int, str], list[str]]:
    """Column index → canonical field, from the first header row that names a column (a second header row
    names the columns the first one does not); the header texts no row names are `unknown`."""
    mapping: dict[int, str] = {}
    unknown: list[str] = []
    width = max(len(r) for r in header_rows)
    for i in range(width):
        cells = [r[i] for r in header_rows if i < len(r) and not _blank(r[i])]
        names = [n for n in (match_header(c, aliases) for c in cells) if n and n not in mapping.values()]
        if names:
            mapping[i] = names[0]
        elif cells:
            unknown.append(str(cells[0]))
    return mapping, unknown


def _meta_above(grid: list[tuple[int, list]], header_at: int) -> dict:
    meta = {}
    for _, cells in grid[:header_at]:
        vals = [c for c in cells if not _blank(c)]
        if len(cells) >= 2 and not _blank(cells[0]):
            meta[_norm(cells[0])] = cells[1] if len(cells) > 1 else None
        elif vals:
            meta.setdefault(_norm(vals[0]), None)
    return meta


def read_form(path: str | Path, aliases: dict[str, tuple[str, ...]], key: str, max_header_row: int = 40) -> Form:
    """Rows of a form whose table has a header naming `key` (the first sheet that has one); a second header
    row right under it (English names under Chinese labels, or the other way round) is a header too; fully
    blank rows are not rows."""
    path = Path(path)
    grid, header_at = _find_header(path, aliases, key, max_header_row)
    headers = [grid[header_at][1]]
    key_at = [i for i, c in enumerate(headers[0]) if not _blank(c) and match_header(c, {key: aliases[key]})]
    if header_at + 1 < len(grid) and _is_second_header(grid[header_at + 1][1], key_at, aliases, key):
        headers.append(grid[header_at + 1][1])
    mapping, unknown = _column_names(headers, aliases)
    rows = []
    for line, cells in grid[header_at + len(headers):]:
        if all(_blank(c) for c in cells):
            continue
        rows.append((line, {name: (cells[i] if i < len(cells) else None) for i, name in mapping.items()}))
    return Form(path, rows, _meta_above(grid, header_at), unknown)


def meta_value(meta: dict, *labels: str):
    """The value of the first labelled cell whose label contains one of `labels` (normalised)."""
    for label in labels:
        key = _norm(label)
        for k, v in meta.items():
            if key in k:
                return v
    return None


# ------------------------------------------------------------------ cell parsing

class CellError(ValueError):
    pass


_MONEY_RE = re.compile(r"^-?\d+(\.\d+)?$")


def parse_money(value) -> Decimal | None:
    """A money cell → Decimal with at most 2 decimals; blank → None; anything else raises CellError."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        raise CellError(f"malformed amount {value!r} / 金额格式错误")
    if isinstance(value, (int, float)):
        text = repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
            raise CellError(f"malformed amount {value!r} / 金额格式错误")
    else:
        text = str(value).strip().replace(",", "").replace("，", "").replace("¥", "").replace("￥", "")
        text = re.sub(r"\s*元$", "", text).strip()
    if "e" in text.lower():
        try:
            text = format(Decimal(text), "f")
        except InvalidOperation as exc:
            raise CellError(f"malformed amount {value!r} / 金额格式错误") from exc
    if not _MONEY_RE.match(text):
        raise CellError(f"malformed amount {value!r} / 金额格式错误")
    amount = Decimal(text)
    if amount != amount.quantize(Decimal("0.01")):
        raise CellError(f"amount {value!r} has more than 2 decimals / 金额最多两位小数")
    return amount.quantize(Decimal("0.01"))


def parse_date(value) -> dt.date | None:
    if _blank(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y-%m-%d %H:%M:%S", "%Y年%m月%d日"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise CellError(f"malformed date {value!r} (use yyyy-MM-dd) / 日期格式错误")


def parse_choice(value, choices: dict[str, tuple[str, ...]]) -> str | None:
    """A drop-down cell → its canonical value; accepts the code, a label, or "label code" combined."""
    if _blank(value):
        return None
    found = {match_header(value, choices)}
    found.discard(None)
    if len(found) == 1:
        return found.pop()
    allowed = " / ".join(f"{k} ({v[0]})" for k, v in choices.items())
    raise CellError(f"unknown value {value!r} (expected {allowed}) / 取值无效")


def answer_rows(form, rejects: list):
    """The rows of an answer form (feedback, worksheet) with their suspect id, as
    `(line, row, suspect_id, raw, reject)` (raw: the cells as text); `reject(field, reason)` records the row in `rejects`. A row
    without a suspect id is rejected here and not yielded."""
    from pipelines.workflow.cases import Reject

    name = form.path.name
    for line, row in form.rows:
        raw = {k: (None if v is None else str(v)) for k, v in row.items()}
        sid = text(row.get("suspect_id"))

        def reject(fld: str, reason: str, line=line, sid=sid, raw=raw) -> None:
            rejects.append(Reject(name, line, fld, reason, sid, raw))

        if not sid:
            reject("suspect_id", "suspect_id missing / 缺少疑点编号")
            continue
        yield line, row, sid, raw, reject


class RowReject(ValueError):
    """A row of a form that cannot be taken: the field at fault and the reason."""

    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field, self.reason = field, reason


def parse_decision_cells(row: dict, *, choice_field: str, choices: dict[str, tuple[str, ...]], missing: str,
                         amount_field: str) -> tuple[str, Decimal | None]:
    """The verdict (a drop-down) and amount cells of an answer row; RowReject names the field at fault."""
    try:
        choice = parse_choice(row.get(choice_field), choices)
    except CellError as exc:
        raise RowReject(choice_field, str(exc)) from exc
    if choice is None:
        raise RowReject(choice_field, missing)
    try:
        amount = parse_money(row.get(amount_field))
    except CellError as exc:
        raise RowReject(amount_field, str(exc)) from exc
    return choice, amount


def text(value) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()
