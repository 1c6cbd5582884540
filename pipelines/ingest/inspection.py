"""Inspecting landing files (contract §1) before anything is written: entity, format, encoding, headers.

`inspect_file` looks at a whole file once (sha256, decodability, header mapping), so that a bad file is
refused whole (`RefusedFile`). The readers (`readers.read_batches`) then stream what it found.
"""
from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq

from pipelines import contract
from pipelines.ingest import census as counting

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
    census: counting.Census | None = None  # the independent count (census.py)
    sheets: list[tuple[counting.Sheet, dict[int, str]]] = field(default_factory=list)  # xlsx: data sheets
    notes: list[str] = field(default_factory=list)        # said in the load report (sheets not read...)


#: xlsx: the `_line` of row r of the k-th sheet (0-based) is k * SHEET_LINES + r
SHEET_LINES = 10_000_000


def list_drop(landing: Path) -> list[Path]:
    """Data files of a drop folder, sub-folders included (hidden and temporary files left out; see
    listing.py for what the load reports about them)."""
    from pipelines.ingest.listing import list_landing
    return [p for p, _ in list_landing(landing).files]


def inspect_file(path: Path, name: str | None = None) -> FileInfo:
    """Identify a file (entity, format, encoding, headers) and count its records independently; raise
    RefusedFile if it cannot be loaded. `name`: the file's name in the drop (its relative path)."""
    path = Path(path)
    name = name or path.name
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
            _inspect_xlsx(info)
            return info
        _map_headers(info)
        info.census = counting.count_file(path, fmt, info.encoding, name)
    except RefusedFile:
        raise
    except counting.CensusError as exc:
        raise RefusedFile(f"{exc} (independent count / 独立点数)") from exc
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise RefusedFile(f"{name}: unreadable ({exc}) / 文件无法读取") from exc
    return info


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def open_text_bytes(info: FileInfo):
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
    with open_text_bytes(info) as f:
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
    with open_text_bytes(info) as f:
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


def text_stream(info: FileInfo) -> io.TextIOBase:
    return io.TextIOWrapper(open_text_bytes(info), encoding=info.encoding, newline="")


def delimiter(info: FileInfo) -> str:
    return "\t" if info.format == "tsv" else ","


def _text_header(info: FileInfo) -> list[str]:
    with text_stream(info) as t:
        first = t.readline()
    if not first.strip():
        raise RefusedFile(f"{info.name}: no header line / 缺少表头")
    return next(csv.reader([first.rstrip("\r\n")], delimiter=delimiter(info)))


def _jsonl_keys(info: FileInfo) -> list[str]:
    keys: dict[str, None] = {}
    with text_stream(info) as t:
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


def _inspect_xlsx(info: FileInfo) -> None:
    """Every sheet looked at: a sheet carrying the entity's required columns is read, one without any of
    the entity's columns is reported as not read, one with only some of them refuses the file."""
    try:
        sheets = counting.xlsx_sheets(info.path)
    except Exception as exc:  # noqa: BLE001 - any reader error refuses the file
        raise RefusedFile(f"{info.name}: unreadable xlsx ({exc}) / 无法读取的Excel文件") from exc
    data = []
    for sh in sheets:
        canon = contract.canonical_headers(info.entity, sh.headers)
        if not any(canon.get(h) for h in sh.headers):
            if sh.records or sh.headers:
                info.notes.append(f"sheet {sh.title!r} has none of the {info.entity} columns, not read "
                                  f"/ 工作表无本实体列, 未读取")
            continue
        data.append(sh)
    if not data:
        raise RefusedFile(f"{info.name}: no sheet carries the {info.entity} columns / 没有工作表含本实体的列")
    for k, sh in enumerate(data):
        probe = FileInfo(info.path, f"{info.name} sheet {sh.title!r}", info.entity, info.format, 0, "",
                         headers=sh.headers)
        _map_headers(probe)      # refuses a sheet missing required columns: the sheets disagree
        if k == 0:
            info.headers, info.mapping, info.unknown_columns = sh.headers, probe.mapping, probe.unknown_columns
        info.sheets.append((sh, probe.mapping))
    if len(data) > 1:
        info.notes.append("sheets read / 已读工作表: " + ", ".join(
            f"{sh.title!r} (line = row{f' + {sh.index * SHEET_LINES:,}' if sh.index else ''})" for sh in data))
    info.census = counting.Census(sum(sh.records for sh in data), "xlsx rows of the data sheets", data)


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

