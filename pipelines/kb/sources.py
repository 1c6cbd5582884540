"""Sheets read from a folder -> recognised batches, or files refused whole. Pure.

A file is refused whole (with file, sheet and what was expected) when one of its sheets with content is not
a published sheet, when its sheets belong to different batches, or when its batch lacks a sheet or has one
twice; the other files of a refused file's batch are refused with it, so no batch is ever half-imported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pipelines.kb.layout import Layout, LayoutError, recognise
from pipelines.kb.points import SheetData


@dataclass
class RawSheet:
    file: str                       # file name
    sheet: str                      # sheet name (a CSV: its file name without suffix)
    head: list[tuple]               # the first rows (title rows and the header)
    rows: list[tuple[int, tuple]]   # (1-based row number, cells) of every non-blank row after the head
    reported_columns: int = 0       # the width the file reports (16,384 for an over-wide sheet)
    file_stem: str = ""


@dataclass
class Batch:
    kind: str
    batch: str
    sheets: list[SheetData] = field(default_factory=list)

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(s.file for s in self.sheets))


@dataclass
class Refusal:
    file: str
    sheet: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}" + (f", sheet {self.sheet!r}" if self.sheet else "") + f": {self.message}"


def _sheet_data(raw: RawSheet, layout: Layout) -> SheetData:
    lay = recognise(raw.file, raw.sheet, raw.head, layout, raw.file_stem)
    below = [(i, r) for i, r in enumerate(raw.head, 1) if i > lay.header_row and any(c not in (None, "") for c in r)]
    return SheetData(raw.file, raw.sheet, lay, below + raw.rows, raw.reported_columns)


def _file_sheets(file: str, raws: list[RawSheet], layout: Layout) -> list[SheetData]:
    """The recognised sheets of one file; LayoutError when one does not fit or they disagree."""
    out = [_sheet_data(r, layout) for r in raws if r.head or r.rows]
    if not out:
        raise LayoutError(file, None, "no sheet with content")
    keys = {(s.layout.kind.id, s.layout.batch) for s in out}
    if len(keys) > 1:
        raise LayoutError(file, out[-1].sheet, "sheets of different batches in one file: " + ", ".join(
            f"{s.sheet!r} = batch {s.layout.batch} {s.layout.kind.label}" for s in out))
    return out


def _check_batch(b: Batch) -> str | None:
    """Why a batch's sheets do not make one batch, or None."""
    want = b.sheets[0].layout.kind.sheet_shapes()
    seen: dict[str, SheetData] = {}
    for s in b.sheets:
        name = s.layout.shape.name
        if name in seen:
            return (f"extra sheet {s.sheet!r} in {s.file}: batch {b.batch} {s.layout.kind.label} already has its "
                    f"{name} sheet ({seen[name].file}, sheet {seen[name].sheet!r}); expected sheets {', '.join(want)}")
        seen[name] = s
    lack = [w for w in want if w not in seen]
    if lack:
        return f"batch {b.batch} {b.sheets[0].layout.kind.label} lacks its {', '.join(lack)} sheet"
    return None


def group_batches(raws: list[RawSheet], layout: Layout) -> tuple[list[Batch], list[Refusal]]:
    """Recognise every sheet, group them into batches and refuse what does not fit (whole files)."""
    by_file: dict[str, list[RawSheet]] = {}
    for r in raws:
        by_file.setdefault(r.file, []).append(r)
    refused: list[Refusal] = []
    batches: dict[tuple[str, str], Batch] = {}
    for file, file_raws in by_file.items():
        try:
            sheets = _file_sheets(file, file_raws, layout)
        except LayoutError as exc:
            refused.append(Refusal(exc.file, exc.sheet, exc.message))
            continue
        key = (sheets[0].layout.kind.id, sheets[0].layout.batch)
        batches.setdefault(key, Batch(*key)).sheets.extend(sheets)
    ok = []
    for b in batches.values():
        why = _check_batch(b)
        if why:
            refused.extend(Refusal(f, None, why) for f in b.files)
        else:
            ok.append(b)
    ok.sort(key=lambda b: (batch_order(b.batch), b.kind))
    return ok, refused


def batch_order(batch: str) -> tuple[int, int]:
    head, _, sub = batch.partition("-")
    return int(head) if head.isdigit() else 999, int(sub) if sub.isdigit() else 0
