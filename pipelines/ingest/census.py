"""The independent count (点数): every file's records counted by a second reading that shares nothing with the
loaders (`readers.py`, `fastpath.py`), so that `read = loaded + quarantined` is checked against the file
itself, not against what the loader believed it read.

- CSV/TSV (any encoding, gzipped or not): Python's `csv` module over the decoded stream, strict, counting
  records (a quoted field may span lines), not lines. A quoted field still open at the end of the file, or
  text after a closing quote, is an error naming the line where the record starts: the file is refused.
  The same reading notes where the records spanning lines are (`LineMap`), so that the loader, which
  numbers records, can name the physical line a record starts on without reading the file again.
- JSON lines: the non-blank lines.
- Parquet: the row count of the file's metadata.
- xlsx: every sheet's rows (openpyxl, read-only), and the cells holding a formula (to tell a formula
  without a cached value from an empty cell).

A blank record (no field, or a single field of spaces, or every field empty) is not a row to either reading.
"""
from __future__ import annotations

import bisect
import codecs
import csv
import io
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

csv.field_size_limit(1 << 30)


class CensusError(ValueError):
    """The file cannot be counted unambiguously; the message names the line."""


@dataclass
class Sheet:
    title: str
    index: int
    headers: list[str]
    records: int = 0
    formulas: set[tuple[int, int]] = field(default_factory=set)   # (row, column 0-based) holding a formula


@dataclass
class LineMap:
    """Record number (1-based, the header record 1, blank records counted, as pyarrow numbers them) to the
    physical line (1-based) where the record starts, in a CSV/TSV some of whose quoted fields hold line
    breaks. Stored sparsely: the records from which on the distance between the two grows (a record over k
    lines pushes every later one k - 1 lines down), so a file of one-line records holds nothing and the
    map's size is that of its multi-line records, never of the file's text."""
    records: array = field(default_factory=lambda: array("q"))
    starts: array = field(default_factory=lambda: array("q"))

    @property
    def spanning(self) -> bool:
        """Whether some record spans more than one line."""
        return bool(self.records)

    @property
    def drift(self) -> int:
        """How many lines further down than its number the last record noted starts."""
        return self.starts[-1] - self.records[-1] if self.records else 0

    def note(self, record: int, line: int) -> None:
        """Record `record` starts on `line`, and so do the records after it, one line each, until the next
        note (noted in file order, only where the distance grows)."""
        self.records.append(record)
        self.starts.append(line)

    def line(self, record: int) -> int:
        """The physical line where record `record` starts."""
        k = bisect.bisect_right(self.records, record) - 1
        return record if k < 0 else record + self.starts[k] - self.records[k]

    def lines(self, records: np.ndarray) -> np.ndarray:
        """`line` of each of `records` (int64)."""
        if not self.records:
            return records
        recs, starts = np.frombuffer(self.records, np.int64), np.frombuffer(self.starts, np.int64)
        k = np.searchsorted(recs, records, side="right") - 1
        return records + np.where(k >= 0, (starts - recs)[np.maximum(k, 0)], 0)


@dataclass
class Census:
    records: int
    method: str
    sheets: list[Sheet] = field(default_factory=list)
    lines: LineMap = field(default_factory=LineMap)   # CSV/TSV: where the records spanning lines are


def _blank(rec: list[str]) -> bool:
    return not rec or (len(rec) == 1 and not rec[0].strip()) or all(f == "" for f in rec)


def csv_records(raw: io.BufferedIOBase, encoding: str, delimiter: str, name: str,
                lines: LineMap | None = None) -> int:
    """Data records (header excluded, blank records not counted) of a CSV byte stream in `encoding` (utf-8,
    utf-8-sig or gb18030: none of them uses the bytes of `"`, `,`, tab, CR or LF inside a character, so
    they can be looked for in the bytes). A chunk without a quote and without a lone CR is counted by its
    line ends, as the csv module would split it (a record per line: nothing for `lines`); a chunk with one
    goes through the csv module (decoded), which notes in `lines` where records span lines, a record left
    open at the chunk's end carried over to the next."""
    if encoding == "utf-8-sig" and raw.read(3) != codecs.BOM_UTF8:
        raise CensusError(f"{name}: byte order mark expected")
    enc = "utf-8" if encoding == "utf-8-sig" else encoding
    lines = LineMap() if lines is None else lines
    n, carry, line, rec = 0, b"", 1, 1    # `line`, `rec`: physical line and record number where `carry` starts
    delim = delimiter.encode()
    while True:
        chunk = raw.read(CHUNK_BYTES)
        final = not chunk
        text = carry + chunk
        cut = len(text) if final else text.rfind(b"\n") + 1
        if cut <= 0 and not final:
            carry = text
            continue
        body, rest = text[:cut], text[cut:]
        if line - rec != lines.drift:         # the last record of the chunk before spanned lines
            lines.note(rec, line)
        crs = body.count(b"\r")
        if b'"' not in body and (crs == 0 or crs == body.count(b"\r\n")):
            k = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
            n += k - _blank_lines(body, delim)
            line, rec, carry = line + k, rec + k, rest
        else:
            got, recs, used, open_at = _csv_chunk(body.decode(enc), delimiter, name, (line, rec, lines), final)
            n, line, rec = n + got, line + used, rec + recs
            carry = body[len(body.decode(enc)[:open_at].encode(enc)):] + rest if open_at < len(body) else rest
        if final:
            break
    return max(n - 1, 0)


CHUNK_BYTES = 8 << 20
_BLANK_HINT = re.compile(rb"\n[\n\r \t\f\v,]")


def _blank_lines(body: bytes, delim: bytes) -> int:
    """Lines of `body` (no quotes, no lone CR) that hold no record: empty, spaces only, or only delimiters."""
    if body[:1] not in (b"\n", b"\r", b" ", b"\t", b"\f", b"\v", delim) and not _BLANK_HINT.search(body):
        return 0
    d = re.escape(delim)
    return len(re.findall(rb"(?m)^(?:[ \t\f\v]*|" + d + rb"+)\r?\n", body if body.endswith(b"\n") else body + b"\n"))


def _csv_chunk(body: str, delimiter: str, name: str, at: tuple[int, int, LineMap],
               final: bool) -> tuple[int, int, int, int]:
    """Records of `body` by the csv module: (non-blank records, records, lines consumed, offset of a record
    left open at the end of a non-final chunk, else len(body)). `at`: the physical line and record number
    where `body` starts, and the map noting the records from which on the two drift further apart."""
    line, first, lines = at
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, quotechar='"', doublequote=True,
                        strict=True)
    n, i, prev_end, drift = 0, 0, 0, 0
    try:
        for i, rec in enumerate(reader, start=1):
            if prev_end - (i - 1) != drift:      # the record before this one spanned lines
                drift = prev_end - (i - 1)
                lines.note(first + i - 1, line + prev_end)
            prev_end = reader.line_num
            if not _blank(rec):
                n += 1
    except csv.Error as exc:
        if "unexpected end of data" in str(exc) and not final:
            return n, i, prev_end, _offset_of_line(body, prev_end)
        what = ("a quoted field opened in the record starting here is never closed / 引号未闭合"
                if "unexpected end of data" in str(exc) else f"{exc} / 引号使用不规范")
        raise CensusError(f"{name}: line {line + prev_end}: {what}") from exc
    return n, i, prev_end, len(body)


def _offset_of_line(body: str, lines: int) -> int:
    """Offset in `body` after its first `lines` physical lines (CRLF, LF or CR each end one)."""
    if lines == 0:
        return 0
    for k, m in enumerate(re.finditer(r"\r\n|\r|\n", body), start=1):
        if k == lines:
            return m.end()
    return len(body)


def record_starts(stream: io.TextIOBase, delimiter: str) -> list[int]:
    """The physical line where each data record starts (blank ones left out): where a disagreement is."""
    reader = csv.reader(stream, delimiter=delimiter, quotechar='"', doublequote=True)
    out, prev_end = [], 0
    for i, rec in enumerate(reader):
        begin, prev_end = prev_end + 1, reader.line_num
        if i and not _blank(rec):
            out.append(begin)
    return out


def jsonl_records(stream: io.TextIOBase) -> int:
    return sum(1 for line in stream if line.strip())


def parquet_records(path: Path) -> int:
    import pyarrow.parquet as pq
    return pq.ParquetFile(path).metadata.num_rows


def xlsx_sheets(path: Path) -> list[Sheet]:
    """Every sheet: its header row, its non-blank data rows and its formula cells."""
    import openpyxl
    wb = openpyxl.load_workbook(path, read_only=True, data_only=False)
    try:
        return [_count_sheet(ws, k) for k, ws in enumerate(wb.worksheets)]
    finally:
        wb.close()


def _count_sheet(ws, index: int) -> Sheet:
    from pipelines.ingest.cells import cell_to_str
    sheet = Sheet(ws.title, index, [])
    for r, row in enumerate(ws.iter_rows(), start=1):
        vals = []
        for c, cell in enumerate(row):
            v = getattr(cell, "value", None)
            if getattr(cell, "data_type", None) == "f":
                sheet.formulas.add((r, c))
            vals.append(v)
        if r == 1:
            sheet.headers = [cell_to_str(v) or "" for v in vals]
            continue
        if any(v is not None and str(v).strip() for v in vals):
            sheet.records += 1
    return sheet


def count_file(path: Path, fmt: str, encoding: str | None, name: str) -> Census:
    """The independent count of one landing file (see the module docstring); CensusError if ambiguous."""
    import gzip
    if fmt in ("csv", "csv.gz", "tsv"):
        lines = LineMap()
        with (gzip.open(path, "rb") if fmt == "csv.gz" else open(path, "rb")) as raw:
            records = csv_records(raw, encoding or "utf-8", "\t" if fmt == "tsv" else ",", name, lines)
        return Census(records, "csv module", lines=lines)
    if fmt == "jsonl":
        with open(path, encoding=encoding or "utf-8", newline="") as t:
            return Census(jsonl_records(t), "non-blank lines")
    if fmt == "parquet":
        return Census(parquet_records(path), "parquet metadata")
    sheets = xlsx_sheets(path)
    return Census(sum(s.records for s in sheets), "xlsx rows, every sheet", sheets)
