"""Reading landing files (contract §1): format, encoding and header detection, streamed string batches.

`inspect_file` looks at a whole file once (sha256, decodability, header mapping) before anything is
written, so a bad file is refused whole. `read_batches` then streams the file as Arrow tables of
*strings* with canonical column names (every field of the entity, absent ones null) plus `_line`, the
1-based row number a clerk sees (CSV/TSV/XLSX: the header is line 1; parquet/jsonl: row/line number).
Rows the reader cannot split into fields come back as `InvalidRow`s to be quarantined.
"""
from __future__ import annotations

import codecs
import csv
import datetime as dt
import decimal
import gzip
import hashlib
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipelines import contract

TEXT_FORMATS = ("csv", "csv.gz", "tsv", "jsonl")
CHUNK = 16 << 20


class IngestError(RuntimeError):
    """A drop (or a load) that cannot be accepted; the message names the file, line and field."""


class RefusedFile(IngestError):
    pass


@dataclass
class FileInfo:
    path: Path
    name: str
    entity: str
    format: str
    size: int
    sha256: str
    encoding: str | None = None          # text formats: utf-8, utf-8-sig, gb18030
    headers: list[str] = field(default_factory=list)      # raw headers, in file order
    mapping: dict[int, str] = field(default_factory=dict)  # column position -> canonical field
    unknown_columns: list[str] = field(default_factory=list)
    text_stats: dict | None = None       # utf-8 csv/tsv: physical line count, blank lines, lone CRs

    @property
    def columns(self) -> list[str]:
        return sorted(set(self.mapping.values()))


@dataclass
class InvalidRow:
    line: int
    field: str
    reason: str          # "english / 中文"
    raw: str


@dataclass
class RawBatch:
    table: pa.Table      # entity fields as strings + _line (int64)
    invalid: list[InvalidRow]


# ---------------------------------------------------------------- inspection

def list_drop(landing: Path) -> list[Path]:
    """Data files of a drop folder (hidden files and sub-folders are not part of it)."""
    return sorted(p for p in Path(landing).iterdir() if p.is_file() and not p.name.startswith("."))


def inspect_file(path: Path) -> FileInfo:
    """Identify a file (entity, format, encoding, headers); raise RefusedFile if it cannot be loaded."""
    path = Path(path)
    name = path.name
    entity = contract.entity_of(name)
    fmt = contract.file_format(name)
    if fmt is None:
        raise RefusedFile(f"{name}: unknown format (accepted: {', '.join(contract.ACCEPTED_SUFFIXES)}) "
                          f"/ 文件格式无法识别")
    if entity not in contract.ENTITIES:
        raise RefusedFile(f"{name}: unknown entity {entity!r} (known: {', '.join(contract.ENTITIES)}) "
                          f"/ 未知数据实体")
    info = FileInfo(path=path, name=name, entity=entity, format=fmt, size=path.stat().st_size, sha256="")
    try:
        if fmt in TEXT_FORMATS:
            _inspect_text(info)
        elif fmt == "parquet":
            info.sha256 = _sha256(path)
            try:
                schema = pq.ParquetFile(path).schema_arrow
            except Exception as exc:  # noqa: BLE001 - any reader error refuses the file
                raise RefusedFile(f"{name}: unreadable parquet ({exc}) / 无法读取的parquet文件") from exc
            info.headers = list(schema.names)
        elif fmt == "xlsx":
            info.sha256 = _sha256(path)
            info.headers = _xlsx_headers(path)
    except RefusedFile:
        raise
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise RefusedFile(f"{name}: unreadable ({exc}) / 文件无法读取") from exc
    _map_headers(info)
    return info


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _open_text_bytes(info: FileInfo):
    return gzip.open(info.path, "rb") if info.format == "csv.gz" else open(info.path, "rb")


def _inspect_text(info: FileInfo) -> None:
    """sha256 of the file as stored; encoding = the first of utf-8 / gb18030 that decodes every byte."""
    # sha256 on a thread (hashlib releases the GIL) while the encoding is checked
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        sha = pool.submit(_sha256, info.path)
        try:
            _detect_encoding(info)
        finally:
            info.sha256 = sha.result()
    if info.format == "jsonl":
        info.headers = _jsonl_keys(info)
    else:
        info.headers = _text_header(info)


def _detect_encoding(info: FileInfo) -> None:
    with _open_text_bytes(info) as f:
        head = f.read(4)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise RefusedFile(f"{info.name}: UTF-16 text is not accepted (use UTF-8, GBK or GB18030) "
                          f"/ 不支持UTF-16编码")
    bom = head.startswith(codecs.BOM_UTF8)
    errors = []
    for enc in ("utf-8", "gb18030"):
        stats = {} if enc == "utf-8" and info.format in ("csv", "csv.gz", "tsv") else None
        err = _decode_error(info, enc, skip=3 if bom and enc == "utf-8" else 0, stats=stats)
        if err is None and stats is not None:
            info.text_stats = stats
        if err is None:
            info.encoding = "utf-8-sig" if bom and enc == "utf-8" else enc
            break
        errors.append(f"{enc}: {err}")
    else:
        raise RefusedFile(f"{info.name}: cannot be decoded as UTF-8, GBK or GB18030 ({'; '.join(errors)}) "
                          f"/ 文件编码无法识别")


def _decode_error(info: FileInfo, encoding: str, skip: int = 0, stats: dict | None = None) -> str | None:
    """The first decoding problem of the file, or None. `stats` (if given) receives what the DuckDB fast
    path checks its row accounting against: newline count, whether a blank line or a lone CR exists."""
    dec = codecs.getincrementaldecoder(encoding)(errors="strict")
    offset = 0
    newlines, blank, lone_cr, prev = 0, False, False, b"\n"
    with _open_text_bytes(info) as f:
        if skip:
            f.read(skip)
            offset = skip
        while True:
            chunk = f.read(CHUNK)
            final = not chunk
            nul = chunk.find(b"\x00")
            if nul >= 0:
                return f"binary content (NUL byte) near byte {offset + nul}"
            try:
                if not (chunk.isascii() and not dec.getstate()[0]):   # ASCII needs no decoding
                    dec.decode(chunk, final=final)
            except UnicodeDecodeError as exc:
                return f"invalid byte near byte {offset + exc.start}"
            if stats is not None and chunk:
                newlines += chunk.count(b"\n")
                has_cr = b"\r" in chunk or prev.endswith(b"\r")
                # blank lines are not looked for: DuckDB skips them silently, which the fast path's
                # row count (rows + rejected lines = physical lines) detects
                if not lone_cr and has_cr:
                    lone_cr = (chunk.count(b"\r") != chunk.count(b"\r\n") + chunk.endswith(b"\r")
                               or (prev.endswith(b"\r") and not chunk.startswith(b"\n")))
                prev = chunk
            if final:
                if stats is not None:
                    stats.update(newlines=newlines, blank=blank, lone_cr=lone_cr or prev.endswith(b"\r"),
                                 ends_nl=prev.endswith(b"\n"))
                return None
            offset += len(chunk)


def _text_stream(info: FileInfo) -> io.TextIOBase:
    return io.TextIOWrapper(_open_text_bytes(info), encoding=info.encoding, newline="")


def _delimiter(info: FileInfo) -> str:
    return "\t" if info.format == "tsv" else ","


def _text_header(info: FileInfo) -> list[str]:
    with _text_stream(info) as t:
        first = t.readline()
    if not first.strip():
        raise RefusedFile(f"{info.name}: no header line / 缺少表头")
    return next(csv.reader([first.rstrip("\r\n")], delimiter=_delimiter(info)))


def _jsonl_keys(info: FileInfo) -> list[str]:
    keys: dict[str, None] = {}
    with _text_stream(info) as t:
        for line in t:
            line = line.strip()
            if not line:
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict):
                for k in obj:
                    keys.setdefault(k, None)
    return list(keys)


def _xlsx_headers(path: Path) -> list[str]:
    import openpyxl
    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001
        raise RefusedFile(f"{path.name}: unreadable xlsx ({exc}) / 无法读取的Excel文件") from exc
    try:
        ws = wb.worksheets[0]
        for row in ws.iter_rows(min_row=1, max_row=1, values_only=True):
            return [cell_to_str(v) or "" for v in row]
        raise RefusedFile(f"{path.name}: empty sheet / 空工作表")
    finally:
        wb.close()


def _map_headers(info: FileInfo) -> None:
    ent = contract.ENTITIES[info.entity]
    canon = contract.canonical_headers(info.entity, info.headers)
    seen: set[str] = set()
    for i, h in enumerate(info.headers):
        c = canon.get(h)
        if c is None or c in seen:
            if str(h).strip():
                info.unknown_columns.append(str(h) if c is None else f"{h} (duplicate of {c})")
            continue
        seen.add(c)
        info.mapping[i] = c
    missing = [f for f in ent.required if f not in seen]
    if missing:
        labels = ", ".join(f"{m} {ent.field(m).label}" for m in missing)
        raise RefusedFile(f"{info.name}: required column(s) missing: {labels} / 缺少必填列 "
                          f"(headers: {', '.join(map(str, info.headers))})")


# ---------------------------------------------------------------- value conversion

def cell_to_str(v) -> str | None:
    """An Excel/JSON value as the string a clerk would have typed."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() else repr(v)
    if isinstance(v, decimal.Decimal):
        return format(v, "f")
    if isinstance(v, dt.datetime):
        return v.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(v, dt.date):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, (dict, list)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def array_to_str(arr: pa.ChunkedArray | pa.Array) -> pa.Array:
    """A typed Arrow column (parquet) as strings in the contract's notation."""
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pc.cast(arr, pa.string())
    if pa.types.is_timestamp(t):
        return pc.strftime(arr, format="%Y-%m-%d %H:%M:%S")
    if pa.types.is_date(t):
        return pc.strftime(arr, format="%Y-%m-%d")
    if pa.types.is_boolean(t):
        return pc.cast(pc.cast(arr, pa.int8()), pa.string())
    if pa.types.is_dictionary(t):
        return array_to_str(pc.cast(arr, t.value_type))
    if pa.types.is_null(t):
        return pa.nulls(len(arr), pa.string())
    try:
        return pc.cast(arr, pa.string())
    except pa.ArrowNotImplementedError:
        return pa.array([cell_to_str(v) for v in arr.to_pylist()], pa.string())


# ---------------------------------------------------------------- streaming

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
    invalid: dict[int, InvalidRow] = {}
    pending: list[InvalidRow] = []

    def on_invalid(row) -> str:
        number = row.number
        reason = (f"truncated row: {row.actual_columns} fields, expected {row.expected_columns} "
                  f"/ 字段数不符(应为{row.expected_columns}, 实为{row.actual_columns})")
        if row.actual_columns > row.expected_columns:
            reason = (f"row has {row.actual_columns} fields, expected {row.expected_columns} "
                      f"/ 字段数不符(应为{row.expected_columns}, 实为{row.actual_columns})")
        if row.actual_columns <= 1 and not row.text.strip():
            invalid[number] = None  # a blank line: not a row
        else:
            inv = InvalidRow(number, "*", reason, row.text)
            invalid[number] = inv
            pending.append(inv)
        return "skip"

    block = int(min(64 << 20, max(1 << 20, batch_rows * 160)))
    ropts = pacsv.ReadOptions(use_threads=False, block_size=block, skip_rows=1, column_names=names,
                              encoding="utf8" if info.encoding in ("utf-8", "utf-8-sig") else info.encoding)
    popts = pacsv.ParseOptions(delimiter=_delimiter(info), invalid_row_handler=on_invalid,
                               ignore_empty_lines=False, newlines_in_values=False)
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
    next_line = 2  # physical row of the next data row not yet assigned
    with source:
        for batch in reader:
            n = batch.num_rows
            lines = np.empty(n, dtype=np.int64)
            i = 0
            while i < n:
                if next_line in invalid:
                    next_line += 1
                    continue
                # run of rows without invalid ones: the next invalid number bounds it
                stop = next_line + (n - i)
                nxt = min((k for k in invalid if next_line <= k < stop), default=stop)
                run = nxt - next_line
                lines[i:i + run] = np.arange(next_line, next_line + run)
                i += run
                next_line += run
            cols = {info.mapping[int(c[1:])]: batch.column(c) for c in batch.schema.names}
            table = _assemble(info, cols, lines)
            table = _drop_blank(table)
            out, pending[:] = list(pending), []
            yield RawBatch(table, out)
    if pending:
        yield RawBatch(_assemble(info, {}, np.empty(0, np.int64)), list(pending))


def _drop_blank(table: pa.Table) -> pa.Table:
    """Rows where every field is empty are blank lines, not rows."""
    if table.num_rows == 0:
        return table
    first = table.column(0)
    if first.null_count == 0 and not pc.any(pc.equal(first, "")).as_py():
        return table
    blank = None
    for c in table.column_names[:-1]:
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

    with _text_stream(info) as t:
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
        yield RawBatch(_drop_blank(_assemble(info, cols, np.arange(start, start + n, dtype=np.int64))), [])
        start += n


def _read_xlsx(info: FileInfo, batch_rows: int) -> Iterator[RawBatch]:
    import openpyxl
    wb = openpyxl.load_workbook(info.path, read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        buf: dict[str, list] = {c: [] for c in info.mapping.values()}
        lines: list[int] = []
        for no, row in enumerate(ws.iter_rows(min_row=2, values_only=True), start=2):
            vals = [cell_to_str(v) for v in row]
            if all(v is None or not str(v).strip() for v in vals):
                continue
            for i, c in info.mapping.items():
                buf[c].append(vals[i] if i < len(vals) else None)
            lines.append(no)
            if len(lines) >= batch_rows:
                yield RawBatch(_assemble(info, {c: pa.array(v, pa.string()) for c, v in buf.items()},
                                         np.array(lines, np.int64)), [])
                for v in buf.values():
                    v.clear()
                lines.clear()
        if lines:
            yield RawBatch(_assemble(info, {c: pa.array(v, pa.string()) for c, v in buf.items()},
                                     np.array(lines, np.int64)), [])
    finally:
        wb.close()
