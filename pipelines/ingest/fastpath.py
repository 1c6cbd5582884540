"""The CSV fast path: a plain UTF-8 CSV/TSV goes to bronze in one pass, no row through Python, and is staged
from its bronze files (`staging.LazyPart`): its rows are typed by DuckDB SQL when read.

Attempt 1 streams the CSV straight into bronze Parquet with pyarrow's threaded CSV reader and dataset
writer (line = row number + 1) and keeps it only if every physical line became a row of the header's
width. Otherwise attempt 2 has DuckDB's CSV reader materialise the raw strings, place the rejected lines
(short/long rows, quarantined) and number the rows around them. A file not plain enough for the line
accounting to be exact (blank lines, lone CRs, quoted newlines, other parse errors) is left, with nothing
written, to the batched reader (`bronze.load_batched`); one whose independent count saw a record spanning
lines (`census.LineMap`) is left to it without trying, since both attempts number records as lines.
"""
from __future__ import annotations

import csv
import datetime as dt
import itertools

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipelines import contract
from pipelines.ingest import faults, nodes
from pipelines.ingest.bronze import bronze_schema
from pipelines.ingest.readers import drop_blank_rows
from pipelines.ingest.context import LoadContext, trace
from pipelines.ingest.inspection import FileInfo
from pipelines.ingest.staging import LazyPart, Staging
from pipelines.storage import CopiedFiles, sql_ident, sql_literal

#: DuckDB reject types the fast path accounts for (the row is quarantined); any other sends the file to the
#: batched reader
FAST_REJECTS = ("MISSING COLUMNS", "TOO MANY COLUMNS")
#: a bronze column gets a Parquet dictionary when its first batch has at most this share of distinct
#: values: codes, amounts, the lineage. Trying one on near-unique columns (ids) costs about as much as the
#: rest of the write and makes the file larger; a dictionary on the others makes typing them cheaper,
#: since DuckDB then types each distinct value once.
DICTIONARY_MAX_DISTINCT = 0.3


def stage_fast(ctx: LoadContext, staging: Staging, info: FileInfo, ord_: int) -> bool:
    """Bronze of a plain UTF-8 CSV/TSV in one pass, its rejected lines quarantined, the file staged; False,
    having written nothing, when the file is not plain enough (see the module docstring)."""
    st = info.text_stats
    if not st or st["blank"] or st["lone_cr"] or not info.mapping or (info.census and info.census.lines.spanning):
        return False
    f = _FastFile(ctx, info, ord_)
    try:
        rejects = f.write_bronze(max(st["newlines"] + (0 if st["ends_nl"] else 1) - 1, 0))
        if rejects is None:
            return False
        f.quarantine_rejects(rejects)
        f.commit_and_stage(staging)
        return True
    except duckdb.Error:
        if f.copied is not None:
            ctx.lake.discard_copied(f.copied)
        if f.committed:
            raise            # typing failed after bronze: not a reader problem
        return False
    finally:
        f.drop_temporaries()


class _FastFile:
    """One file on the fast path: its bronze files written but not committed yet (`copied`), and the DuckDB
    temporaries made for it."""

    def __init__(self, ctx: LoadContext, info: FileInfo, ord_: int):
        self.ctx, self.info, self.ord_ = ctx, info, ord_
        self.ent = contract.ENTITIES[info.entity]
        self.delim = "\t" if info.format == "tsv" else ","
        self.bronze = f"bronze/{info.entity}"
        self.copied: CopiedFiles | None = None
        self.committed = False
        self.view = f"_rawv_{ord_}"
        self.made: list[str] = []                # temporary tables

    def write_bronze(self, data_lines: int) -> list[tuple] | None:
        """Bronze written (`copied`); returns the rejected lines (line, error type, text), or None when
        the file is not plain enough. `data_lines`: the physical lines after the header."""
        invalid: list[int] = []
        blank = [0]           # rows of empty fields only (a line of delimiters): not rows, as in every reader
        try:
            rows, dictionary = _dictionary_columns(_arrow_bronze(self.info, self.ctx.now, invalid, blank))
            self.copied = self.ctx.lake.copy_batches(self.bronze, rows, constant={"_drop": self.ctx.drop_id},
                                                     dictionary=dictionary)
        except pa.ArrowInvalid:        # e.g. bytes that are not UTF-8 after all
            self.copied, invalid = None, [0]
        if not invalid and self.copied.rows + blank[0] == data_lines:
            return []
        if self.copied is not None:
            self.ctx.lake.discard_copied(self.copied)
        self.copied = None
        return self._write_bronze_duckdb(data_lines)

    def _write_bronze_duckdb(self, data_lines: int) -> list[tuple] | None:
        """Attempt 2: raw strings materialised by DuckDB's reader, rejected lines placed."""
        con, raw, rej = self.ctx.con, f"_raw_{self.ord_}", f"_rej_{self.ord_}"
        self.made += [raw, rej, f"_rejscan_{self.ord_}"]
        con.execute("SET preserve_insertion_order = true")
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {raw} AS SELECT {self._fields()}, "
                        f"row_number() OVER () AS _rn FROM {self._read_csv()}")
        finally:
            con.execute("SET preserve_insertion_order = false")
        rejects = con.execute(f"SELECT line, error_type::VARCHAR, csv_line FROM {rej} ORDER BY line").fetchall()
        n_rows = con.execute(f"SELECT count(*) FROM {raw}").fetchall()[0][0]
        lines = sorted({r[0] for r in rejects})
        if any(r[1] not in FAST_REJECTS for r in rejects) or n_rows + len(lines) != data_lines:
            return None
        con.execute(f"CREATE OR REPLACE TEMP VIEW {self.view} AS SELECT * FROM ({self._numbered(raw, lines)}) "
                    f"WHERE NOT ({self._blank()})")
        self.copied = self.ctx.lake.copy_query(self.bronze, con, f"SELECT {self._names()}, _line, "
                                               f"{self._lineage()} FROM {self.view}", ["_drop"],
                                               constant={"_drop": self.ctx.drop_id})
        return rejects

    def _numbered(self, raw: str, lines: list[int]) -> str:
        """SELECT of the raw rows with their `_line`, around the rejected `lines` (sorted)."""
        if not lines:
            return f"SELECT * EXCLUDE (_rn), _rn + 1 AS _line FROM {raw}"
        # line of the k-th good row (0-based) = k + 2 + rejected lines before it; reject j (0-based,
        # sorted) has line - 2 - j good rows before it
        gaps: dict[int, int] = {}
        for j, line in enumerate(lines):
            gaps[line - 2 - j] = j + 1
        table = f"_gaps_{self.ord_}"
        self.made.append(table)
        self.ctx.con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM (VALUES "
                             + ", ".join(f"({g}, {c})" for g, c in gaps.items()) + ") v(g, c)")
        return (f"SELECT r.* EXCLUDE (_rn), r._rn + 1 + coalesce(j.c, 0) AS _line FROM {raw} r "
                f"ASOF LEFT JOIN {table} j ON r._rn - 1 >= j.g")

    def quarantine_rejects(self, rejects: list[tuple]) -> None:
        """Each rejected line (a row of the wrong width) read and quarantined once; a line of blanks is no row."""
        info, seen = self.info, set()
        exp = len(info.headers)
        for line, _etype, text in rejects:
            if line in seen:
                continue
            seen.add(line)
            if not (text or "").strip():
                continue
            n = len(next(csv.reader([text], delimiter=self.delim))) if text else 0
            what = "truncated row:" if n < exp else "row has"
            reason = f"{what} {n} fields, expected {exp} / 字段数不符(应为{exp}, 实为{n})"
            self.ctx.report.file(info.name).rows_read += 1
            self.ctx.quarantine.add(info.name, info.entity, line, "*", reason,
                                    nodes.raw_text_json(info.entity, text, self.ctx.salt, info.mapping, self.delim,
                                                        info.headers))

    def commit_and_stage(self, staging: Staging) -> None:
        """Bronze committed; the file staged from its bronze files."""
        copied, info = self.copied, self.info
        files = ", ".join(sql_literal(str(f)) for f in copied.files)
        source = f"(SELECT {self._names()}, _line FROM read_parquet([{files}]))" if copied.files else None
        rows = copied.rows
        self.ctx.report.file(info.name).rows_read += rows
        self.ctx.report.versions[self.bronze] = self.ctx.lake.commit_copied(copied)
        self.copied, self.committed = None, True
        trace(f"bronze {info.name}")
        faults.point("ingest.bronze_file")
        if rows:
            staging.add(LazyPart(info, self.ord_, source, rows))

    def drop_temporaries(self) -> None:
        self.ctx.con.execute(f"DROP VIEW IF EXISTS {self.view}")
        for t in self.made:
            self.ctx.con.execute(f"DROP TABLE IF EXISTS {t}")

    # ---- SQL pieces
    def _read_csv(self) -> str:
        info = self.info
        cols = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(info.headers))) + "}"
        return (f"read_csv({sql_literal(str(info.path))}, header=false, skip=1, auto_detect=false, "
                f"delim={sql_literal(self.delim)}, quote='\"', escape='\"', columns={cols}, nullstr=chr(0), "
                f"allow_quoted_nulls=false, compression={sql_literal('gzip' if info.format == 'csv.gz' else 'none')}, "
                f"ignore_errors=true, store_rejects=true, rejects_table={sql_literal(f'_rej_{self.ord_}')}, "
                f"rejects_scan={sql_literal(f'_rejscan_{self.ord_}')}, max_line_size=8388608, parallel=true)")

    def _fields(self) -> str:
        by_field = {c: i for i, c in self.info.mapping.items()}
        return ", ".join((f"c{by_field[n]}" if n in by_field else "NULL::VARCHAR") + f" AS {sql_ident(n)}"
                         for n in self.ent.names)

    def _names(self) -> str:
        return ", ".join(sql_ident(n) for n in self.ent.names)

    def _blank(self) -> str:
        mapped = [sql_ident(self.info.mapping[i]) for i in sorted(self.info.mapping)]
        return " AND ".join(f"coalesce({c}, '') = ''" for c in mapped)

    def _lineage(self) -> str:
        info = self.info
        loaded_at = self.ctx.now.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")
        return (f"{sql_literal(self.ctx.drop_id)} AS _drop, {sql_literal(info.name)} AS _file, "
                f"{sql_literal(info.sha256)} AS _file_sha256, TIMESTAMPTZ '{loaded_at}+00' AS _loaded_at")


def _arrow_bronze(info: FileInfo, now: dt.datetime, invalid: list, blank: list) -> pa.RecordBatchReader:
    """The file's rows as bronze batches (contract fields as strings, `_line`, lineage but `_drop`), read with
    pyarrow's multi-threaded CSV reader. Rows of the wrong width are counted in `invalid`, not returned."""
    ent = contract.ENTITIES[info.entity]
    raw_names = [f"c{i}" for i in range(len(info.headers))]
    by_field = {c: i for i, c in info.mapping.items()}

    def bad(row) -> str:
        invalid.append(row.number if row.number is not None else -1)
        return "skip"

    read = pacsv.ReadOptions(column_names=raw_names, skip_rows=1, block_size=8 << 20)
    parse = pacsv.ParseOptions(delimiter="\t" if info.format == "tsv" else ",", quote_char='"', double_quote=True,
                               escape_char=False, newlines_in_values=False, invalid_row_handler=bad)
    conv = pacsv.ConvertOptions(column_types={n: pa.string() for n in raw_names}, strings_can_be_null=False,
                                quoted_strings_can_be_null=False)
    source = pa.input_stream(str(info.path), compression="gzip" if info.format == "csv.gz" else None)
    reader = pacsv.open_csv(source, read_options=read, parse_options=parse, convert_options=conv)
    bronze = bronze_schema(info.entity)
    schema = bronze.remove(bronze.get_field_index("_drop"))
    loaded_at = pa.scalar(now, pa.timestamp("us", tz="UTC"))

    def batches():
        line = 2
        for b in reader:
            n = b.num_rows
            cols = [b.column(by_field[f]) if f in by_field else pa.nulls(n, pa.string()) for f in ent.names]
            cols += [pa.array(np.arange(line, line + n, dtype=np.int64)), pa.repeat(info.name, n),
                     pa.repeat(info.sha256, n), pa.repeat(loaded_at, n)]
            line += n
            rb = pa.RecordBatch.from_arrays(cols, schema=schema)
            kept = drop_blank_rows(pa.Table.from_batches([rb]), [f for f in ent.names if f in by_field])
            blank[0] += n - kept.num_rows
            yield from kept.to_batches()
    return pa.RecordBatchReader.from_batches(schema, batches())


def _dictionary_columns(reader: pa.RecordBatchReader) -> tuple[pa.RecordBatchReader, list[str]]:
    """The columns of `reader` worth a dictionary (judged on its first batch), and the reader, whole."""
    first = next(iter(reader), None)
    if first is None:
        return pa.RecordBatchReader.from_batches(reader.schema, []), []
    n = max(first.num_rows, 1)
    cols = [f.name for f, col in zip(first.schema, first.columns)
            if pc.count_distinct(col).as_py() <= DICTIONARY_MAX_DISTINCT * n]
    return pa.RecordBatchReader.from_batches(reader.schema, itertools.chain([first], reader)), cols
