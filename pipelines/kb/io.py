"""The knowledge-base stage's I/O: reading the published batch files and local kb CSVs, writing a release.

Files: `.xlsx` (openpyxl, read-only; the reported width is noted, then only the columns up to the header's last
named cell are read, so a sheet reporting 16,384 columns costs what its named columns cost) and `.csv` (UTF-8
with or without BOM, else GB18030). Lake (through `Lake`): `silver/kb_point` and `silver/kb_point_code` (every
release, partitioned by `release_id`), `silver/kb_hilist`, `silver/kb_item_pair`, `silver/kb_param` (the
release in force), and `silver/kb_release` (one row per release, written last: a release exists once its row
does).
"""
from __future__ import annotations

import csv
import hashlib
import io as _io
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from pipelines.kb.layout import Layout, LayoutError, cell_text
from pipelines.kb.sources import RawSheet

if TYPE_CHECKING:
    import pyarrow as pa

RULES_KB = Path(__file__).resolve().parents[2] / "rules" / "kb"
SOURCE_SUFFIXES = (".xlsx", ".csv")


def load_yaml(name: str, base: Path = RULES_KB) -> dict:
    with open(base / name, encoding="utf-8") as f:
        return yaml.safe_load(f)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_sources(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: not a folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SOURCE_SUFFIXES
                  and not p.name.startswith(("~$", ".")))


def _blank(row) -> bool:
    return all(cell_text(c) == "" for c in row)


def _width(head: list[tuple]) -> int:
    last = 0
    for row in head:
        for i, c in enumerate(row, 1):
            if cell_text(c):
                last = max(last, i)
    return last


def read_xlsx(path: Path, head_rows: int) -> list[RawSheet]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise LayoutError(path.name, None, f"not a readable .xlsx workbook ({exc})") from exc
    try:
        out = []
        for ws in wb.worksheets:
            reported = ws.max_column or 0
            ws.reset_dimensions()               # the reported dimension may be wrong either way
            head = [tuple(r) for r in ws.iter_rows(min_row=1, max_row=head_rows, values_only=True)]
            width = _width(head)
            rows = []
            for i, r in enumerate(ws.iter_rows(min_row=head_rows + 1, max_col=width or None, values_only=True),
                                  head_rows + 1):
                if not _blank(r):
                    rows.append((i, tuple(r)))
            out.append(RawSheet(path.name, ws.title, [tuple(r[:width]) for r in head] if width else [], rows,
                                reported, path.stem))
        return out
    finally:
        wb.close()


def decode(data: bytes, name: str) -> str:
    """UTF-8 (BOM or not), else GB18030; a file that is neither is refused."""
    for enc in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            continue
    raise LayoutError(name, None, "neither UTF-8 nor GB18030 text")


def read_csv(path: Path, head_rows: int) -> list[RawSheet]:
    text = decode(path.read_bytes(), path.name)
    rows = list(csv.reader(_io.StringIO(text, newline="")))
    head = [tuple(r) for r in rows[:head_rows]]
    width = _width(head)
    body = [(i, tuple(r[:width])) for i, r in enumerate(rows[head_rows:], head_rows + 1) if not _blank(r)]
    return [RawSheet(path.name, path.stem, [tuple(r[:width]) for r in head], body, width, path.stem)]


def read_source(path: Path, layout: Layout) -> list[RawSheet]:
    if path.suffix.lower() == ".xlsx":
        return read_xlsx(path, layout.header_rows_max)
    return read_csv(path, layout.header_rows_max)


def read_table_csv(path: Path) -> list[tuple[int, dict]]:
    """A small CSV (curation, local kb) as (line, {header: value}) in UTF-8 or GB18030."""
    text = decode(Path(path).read_bytes(), Path(path).name)
    reader = csv.DictReader(_io.StringIO(text, newline=""))
    return [(i, {(k or "").strip(): (v or "").strip() for k, v in r.items()}) for i, r in enumerate(reader, 2)]


def read_curation(folder: Path) -> list[tuple[str, int, dict]]:
    out = []
    for p in sorted(Path(folder).glob("*.csv")):
        out.extend((p.name, line, r) for line, r in read_table_csv(p))
    return out


# ---------------------------------------------------------------- the lake

POINT_TABLE, CODE_TABLE, RELEASE_TABLE = "silver/kb_point", "silver/kb_point_code", "silver/kb_release"


def typed(rows: list[dict], schema) -> "pa.Table":
    """Python rows as an Arrow table of `schema` (numbers into decimals/ints, everything else as text)."""
    import decimal

    import pyarrow as pa

    cols = {}
    for f in schema:
        vals = [r.get(f.name) for r in rows]
        if pa.types.is_decimal(f.type):
            vals = [None if v in (None, "") else decimal.Decimal(str(v)) for v in vals]
        elif pa.types.is_integer(f.type):
            vals = [None if v in (None, "") else int(v) for v in vals]
        elif pa.types.is_string(f.type):
            vals = [None if v in (None, "") else str(v) for v in vals]
        cols[f.name] = pa.array(vals, type=f.type)
    return pa.table(cols, schema=schema)


def dated_table(lake, table: str, rows: list[dict], schema, release_id: str, valid: dict) -> "pa.Table":
    """The kb table with every release's rows: this release's `rows` plus the rows the lake holds of the other
    releases in `valid` (rows of no release, e.g. a drop's sample kb, go), each with its kb_valid_from/to."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parts = [typed(rows, schema)]
    others = [r for r in valid if r != release_id]
    if others and lake.exists(table):
        old = lake.read(table)
        old = old.filter(pc.is_in(old["kb_release"], pa.array(others, pa.string())))
        parts.append(pa.table({f.name: old[f.name].cast(f.type) if f.name in old.column_names
                               else pa.nulls(old.num_rows, f.type) for f in schema}, schema=schema))
    t = pa.concat_tables(parts)
    rel = t["kb_release"].to_pylist()
    for col, i in (("kb_valid_from", 0), ("kb_valid_to", 1)):
        t = t.set_column(t.schema.get_field_index(col), col, pa.array([valid[r][i] for r in rel], pa.date32()))
    return t


def point_schema():
    import pyarrow as pa
    s, i = pa.string(), pa.int64()
    return pa.schema([("release_id", s), ("batch", s), ("kind", s), ("file", s), ("sheet", s), ("row", i),
                      ("point_no", i), ("name", s), ("logic", s), ("basis", s), ("basis_source", s),
                      ("declared_codes", i), ("code_rows", i), ("status", s), ("reason", s), ("params", s),
                      ("matched", s), ("extra", s)])


def code_schema():
    import pyarrow as pa
    s, i = pa.string(), pa.int64()
    return pa.schema([("release_id", s), ("batch", s), ("point_no", i), ("hilist_code", s), ("side", s),
                      ("name", s), ("file", s), ("sheet", s), ("row", i)])


def release_schema():
    import pyarrow as pa
    s, i = pa.string(), pa.int64()
    return pa.schema([("release_id", s), ("effective_date", pa.date32()), ("created_at", pa.timestamp("us")),
                      ("sources", s), ("local_sources", s), ("precedence", s), ("points", i), ("points_mapped", i),
                      ("points_curation", i), ("code_rows", i), ("rows_rejected", i), ("count_mismatches", i),
                      ("kb_versions", s)])


def releases(lake) -> list[dict]:
    """Every release written to the lake, oldest effective date first."""
    if not lake.exists(RELEASE_TABLE):
        return []
    rows = lake.read(RELEASE_TABLE).to_pylist()
    return sorted(rows, key=lambda r: (r["effective_date"], r["created_at"]))


def read_release(lake, release_id: str) -> tuple[list[dict], list[dict]]:
    """(points, codes) of one release; KeyError when the lake has no such release."""
    import pyarrow.compute as pc

    if release_id not in {r["release_id"] for r in releases(lake)}:
        raise KeyError(f"no knowledge-base release {release_id!r} in {lake.root} "
                       f"(releases: {', '.join(r['release_id'] for r in releases(lake)) or 'none'})")
    filt = pc.field("release_id") == release_id
    return (lake.read(POINT_TABLE, filter=filt).to_pylist(), lake.read(CODE_TABLE, filter=filt).to_pylist())


def read_local(folder: Path, entity: str) -> tuple[list[dict], list[dict]]:
    """A district's own kb CSV (today's shapes, contract §3) as rows keyed by canonical names, and its sources.
    Headers may be the canonical name, an alias or the Chinese label; value maps and code padding apply."""
    from pipelines import contract

    ent = contract.ENTITIES[entity]
    rows, sources = [], []
    for path in sorted(Path(folder).glob(f"{entity}*.csv")):
        table = read_table_csv(path)
        names = contract.canonical_headers(entity, table[0][1].keys() if table else [])
        lack = [f for f in ent.required if f not in names.values()]
        if lack:
            raise ValueError(f"{path}: line 1: missing required column(s) {', '.join(lack)}")
        for line, raw in table:
            row = {names[h]: v for h, v in raw.items() if names.get(h)}
            for f in ent.fields:
                v = row.get(f.name, "")
                v = ent.value_maps.get(f.name, {}).get(v, v)
                if f.type == contract.CODE2 and v.isdigit() and len(v) < 2:
                    v = v.zfill(2)
                if f.required and not v:
                    raise ValueError(f"{path}: line {line}: field {f.name}: required value missing")
                if v and f.codes is not None and v not in f.codes:
                    raise ValueError(f"{path}: line {line}: field {f.name}: {v!r} not one of {', '.join(f.codes)}")
                row[f.name] = v or None
            row["kb_source"] = f"local {path.name}:{line}"
            rows.append(row)
        sources.append({"file": path.name, "sha256": sha256(path), "entity": entity})
    return rows, sources
