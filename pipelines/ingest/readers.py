"""Streaming landing files as Arrow tables of *strings* with canonical column names.

`read_batches` streams a file that `inspection.inspect_file` accepted: every field of the entity (absent
ones null) plus `_line`, where a clerk finds the row: CSV/TSV (gzipped or not, any encoding) and JSON lines
the physical line (1-based, the header line 1) where the record starts, also after a quoted field holding
line breaks; xlsx the sheet's row number (see `SHEET_LINES`); parquet the row number (there are no lines).
Rows the reader cannot split into fields come back as `InvalidRow`s to be quarantined.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines import contract
from pipelines.ingest.census import LineMap
from pipelines.ingest.cells import array_to_str, cell_to_str
from pipelines.ingest.inspection import SHEET_LINES, FileInfo, RefusedFile, delimiter, text_stream


@dataclass
class InvalidRow:
    line: int
    field: str
    reason: str          # "english / 中文"
    raw: str | dict      # the line as text, or its fields by canonical name


@dataclass
class RawBatch:
    table: pa.Table      # entity fields as strings + _line (int64)
    invalid: list[InvalidRow]


def _assemble(info: FileInfo, cols: dict[str, pa.Array], lines: np.ndarray) -> pa.Table:
    n = len(lines)
    ent = contract.ENTITIES[info.entity]
    arrays = [cols.get(f, pa.nulls(n, pa.string())) for f in ent.names]
    arrays.append(pa.array(lines, pa.int64()))
    return pa.Table.from_arrays(arrays, names=[*ent.names, "_line"])


def read_batches(info: FileInfo, batch_rows: int) -> Iterator[RawBatch]:
    if info.format in ("csv", "csv.gz", "tsv"):
        yield from _read_csv(info, batch_rows)
    elif info.format == "jsonl":
        yield from _read_jsonl(info, batch_rows)
    elif info.format == "parquet":
        yield from _read_parquet(info, batch_rows)
    elif info.format == "xlsx":
        yield from _read_xlsx(info, batch_rows)
    else:  # pragma: no cover - inspect_file refuses these
        raise RefusedFile(f"{info.name}: unknown format")


def _read_csv(info: FileInfo, batch_rows: int) -> Iterator[RawBatch]:
    ncol = len(info.headers)
    names = [f"c{i}" for i in range(ncol)]
    starts = info.census.lines if info.census else LineMap()     # record number -> physical line
    invalid: dict[int, InvalidRow] = {}
    pending: list[InvalidRow] = []

    def on_invalid(row) -> str:
        number = row.number      # the record number, header 1: `starts` turns it into a line
        reason = (f"truncated row: {row.actual_columns} fields, expected {row.expected_columns} "
                  f"/ 字段数不符(应为{row.expected_columns}, 实为{row.actual_columns})")
        if row.actual_columns > row.expected_columns:
            reason = (f"row has {row.actual_columns} fields, expected {row.expected_columns} "
                      f"/ 字段数不符(应为{row.expected_columns}, 实为{row.actual_columns})")
        if row.actual_columns <= 1 and not row.text.strip():
            invalid[number] = None  # a blank line: not a row
        else:
            inv = InvalidRow(starts.line(number), "*", reason, row.text)
            invalid[number] = inv
            pending.append(inv)
        return "skip"

    block = int(min(64 << 20, max(1 << 20, batch_rows * 160)))
    ropts = pacsv.ReadOptions(use_threads=False, block_size=block, skip_rows=1, column_names=names,
                              encoding="utf8" if info.encoding in ("utf-8", "utf-8-sig") else info.encoding)
    popts = pacsv.ParseOptions(delimiter=delimiter(info), invalid_row_handler=on_invalid,
                               ignore_empty_lines=False, newlines_in_values=starts.spanning)
    keep = [names[i] for i in sorted(info.mapping)]
    copts = pacsv.ConvertOptions(column_types={c: pa.string() for c in names}, include_columns=keep,
                                 strings_can_be_null=False, quoted_strings_can_be_null=False)
    source = pa.input_stream(str(info.path), compression="gzip" if info.format == "csv.gz" else None)
    try:
        reader = pacsv.open_csv(source, read_options=ropts, parse_options=popts, convert_options=copts)
    except pa.ArrowInvalid as exc:
        if "Empty CSV file" in str(exc):
            return
        raise
    at = 2  # record number of the next data row not yet numbered
    with source:
        for batch in reader:
            numbers, at = _record_numbers(at, batch.num_rows, invalid)
            cols = {info.mapping[int(c[1:])]: batch.column(c) for c in batch.schema.names}
            table = _assemble(info, cols, starts.lines(numbers))
            table = _drop_blank(table)
            out, pending[:] = list(pending), []
            yield RawBatch(table, out)
    if pending:
        yield RawBatch(_assemble(info, {}, np.empty(0, np.int64)), list(pending))


def _record_numbers(first: int, n: int, skipped: dict[int, InvalidRow | None]) -> tuple[np.ndarray, int]:
    """The record numbers (header 1) of the `n` rows of a batch, the first of them not before record `first`
    (the records the reader `skipped`, handed to its invalid-row handler, have none), and the next number."""
    numbers = np.empty(n, dtype=np.int64)
    i, at = 0, first
    while i < n:
        if at in skipped:
            at += 1
            continue
        # run of rows without skipped ones: the next skipped number bounds it
        stop = at + (n - i)
        nxt = min((k for k in skipped if at <= k < stop), default=stop)
        run = nxt - at
        numbers[i:i + run] = np.arange(at, at + run)
        i += run
        at += run
    return numbers, at


def _drop_blank(table: pa.Table) -> pa.Table:
    """Rows where every field is empty are blank lines, not rows."""
    return drop_blank_rows(table, table.column_names[:-1])


def drop_blank_rows(table: pa.Table, columns: list[str]) -> pa.Table:
    """`table` without the rows whose `columns` are all empty or null."""
    if table.num_rows == 0:
        return table
    first = table.column(columns[0])
    if first.null_count == 0 and not pc.any(pc.equal(first, "")).as_py():
        return table
    blank = None
    for c in columns:
        col = table.column(c)
        e = pc.or_kleene(pc.is_null(col), pc.equal(pc.utf8_length(pc.fill_null(col, "")), 0))
        blank = e if blank is None else pc.and_(blank, e)
    if not pc.any(blank).as_py():
        return table
    return table.filter(pc.invert(blank))


def _read_jsonl(info: FileInfo, batch_rows: int) -> Iterator[RawBatch]:
    keymap = {info.headers[i]: c for i, c in info.mapping.items()}
    buf: dict[str, list] = {c: [] for c in keymap.values()}
    lines: list[int] = []
    invalid: list[InvalidRow] = []

    def flush():
        cols = {c: pa.array(v, pa.string()) for c, v in buf.items()}
        b = RawBatch(_assemble(info, cols, np.array(lines, np.int64)), list(invalid))
        for v in buf.values():
            v.clear()
        lines.clear()
        invalid.clear()
        return b

    with text_stream(info) as t:
        for no, text in enumerate(t, start=1):
            s = text.strip()
            if not s:
                continue
            try:
                obj = json.loads(s)
            except ValueError as exc:
                invalid.append(InvalidRow(no, "*", f"not valid JSON ({exc.msg}) / JSON格式错误", s))
                continue
            if not isinstance(obj, dict):
                invalid.append(InvalidRow(no, "*", "not a JSON object / 不是JSON对象", s))
                continue
            for k, c in keymap.items():
                buf[c].append(cell_to_str(obj.get(k)))
            lines.append(no)
            if len(lines) >= batch_rows:
                yield flush()
    if lines or invalid:
        yield flush()


def _read_parquet(info: FileInfo, batch_rows: int) -> Iterator[RawBatch]:
    pf = pq.ParquetFile(info.path)
    raw = [info.headers[i] for i in sorted(info.mapping)]
    start = 1
    for batch in pf.iter_batches(batch_size=batch_rows, columns=raw):
        n = batch.num_rows
        cols = {}
        for i in sorted(info.mapping):
            cols[info.mapping[i]] = array_to_str(batch.column(info.headers[i]))
        yield RawBatch(_assemble(info, cols, np.arange(start, start + n, dtype=np.int64)), [])
        start += n


def _read_xlsx(info: FileInfo, batch_rows: int) -> Iterator[RawBatch]:
    """Every data sheet (inspection chose them), rows numbered `sheet index * SHEET_LINES + row`. A formula
    cell without a cached value (the workbook was never recalculated) is not taken for an empty cell: its
    row is quarantined."""
    import openpyxl
    wb = openpyxl.load_workbook(info.path, read_only=True, data_only=True)
    buf: dict[str, list] = {c: [] for c in contract.ENTITIES[info.entity].names}
    lines: list[int] = []
    invalid: list[InvalidRow] = []

    def flush() -> RawBatch:
        b = RawBatch(_assemble(info, {c: pa.array(v, pa.string()) for c, v in buf.items()},
                               np.array(lines, np.int64)), list(invalid))
        for v in buf.values():
            v.clear()
        lines.clear()
        invalid.clear()
        return b
    try:
        for sheet, mapping in info.sheets:
            ws = wb.worksheets[sheet.index]
            for no, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
                vals = [cell_to_str(v) for v in row]
                if all(v is None or not str(v).strip() for v in vals) and not any(
                        (no, i) in sheet.formulas for i in mapping):
                    continue
                line = sheet.index * SHEET_LINES + no
                lost = [c for i, c in mapping.items() if (no, i) in sheet.formulas and (i >= len(vals) or vals[i] is None)]
                if lost:
                    invalid.append(InvalidRow(line, ",".join(lost), f"{', '.join(lost)}: formula without a cached value "
                                              f"(open and save the workbook in Excel) / 公式单元格无计算结果",
                                              {c: (vals[i] if i < len(vals) else None) for i, c in mapping.items()}))
                else:
                    for c in buf:
                        buf[c].append(None)
                    for i, c in mapping.items():
                        buf[c][-1] = vals[i] if i < len(vals) else None
                    lines.append(line)
                if len(lines) + len(invalid) >= batch_rows:
                    yield flush()
        if lines or invalid:
            yield flush()
    finally:
        wb.close()
