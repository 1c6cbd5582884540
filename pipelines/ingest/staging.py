"""Staging: the typed rows of a load, per entity, in the load's DuckDB, before they are deduplicated and written.

An entity's rows are staged in a table (`stg_<entity>_all`: rows typed in Python batches, and small fast-path
files typed at once) and/or as lazy parts (large fast-path files, typed from their bronze files whenever
their rows are read: typing is cheaper to repeat than a staged copy is to write and read back).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from pipelines import contract
from pipelines.ingest import nodes
from pipelines.ingest.context import LoadContext
from pipelines.ingest.inspection import FileInfo
from pipelines.storage import sql_ident, sql_literal

#: a fast-path file is staged lazily (typed from bronze when read) when it has at least LAZY_MIN_ROWS rows and
#: its entity fewer than MAX_LAZY_PARTS lazy files; others are typed into the staging table at once (cheap
#: for a small file; a union of many lazy files costs more to plan than to read)
LAZY_MIN_ROWS = 100_000
MAX_LAZY_PARTS = 16


def ensure_stg(cur, entity: str, typed_select: str, tables: set[str]) -> None:
    """`stg_<entity>_all` holds typed rows with their `_err` ('' = good): every row of the small fast-path
    files, the good rows of the files read through Python batches."""
    if entity in tables:
        return
    cur.execute(f"CREATE TABLE stg_{entity}_all AS SELECT * FROM ({typed_select}) WHERE false")
    tables.add(entity)


@dataclass
class LazyPart:
    """A file staged without a copy: its rows are typed again from its bronze files whenever they are read
    (typing is cheaper to repeat than a staged copy is to write and read back)."""
    info: FileInfo
    ord_: int
    source: str               # SELECT of the file's bronze rows: contract fields as text, `_line`
    rows: int                 # rows in bronze
    bad: int | None = None    # rows that fail typing (quarantined); None until counted


class Staging:
    """What a load staged, per entity: a table of rows typed in Python batches (`tables`) and/or lazy parts.

    `stg_<entity>` (a view) unions their good rows in the silver columns plus `_ord`; `keys_sql` selects
    the keys of every row, good or bad, without checking them (a superset of the good rows' keys)."""

    def __init__(self, ctx: LoadContext):
        self.ctx = ctx
        self.tables: set[str] = set()
        self.parts: dict[str, list[LazyPart]] = defaultdict(list)
        self.deduplicated: set[str] = set()     # entities whose out_<entity> is a table (keys were repeated)

    @property
    def entities(self) -> list[str]:
        return sorted(self.tables | set(self.parts))

    def typed(self, part: LazyPart, checks: str = "report") -> str:
        return nodes.typing_sql(part.info.entity, part.source, self.ctx.salt, self.ctx.drop_id, part.info.name,
                                part.ord_, checks=checks, decimal=self.ctx.decimal_of(part.info))

    def _union(self, entity: str, table: str, part) -> str:
        branches = ([table] if entity in self.tables else []) + [part(p) for p in self.parts[entity]]
        return " UNION ALL ".join(branches)

    def create_view(self, entity: str) -> None:
        cols = ", ".join(sql_ident(c) for c in [*nodes.silver_columns(entity), "_ord"])
        body = self._union(entity, f"SELECT {cols} FROM stg_{entity}_all WHERE _err = ''",
                           lambda p: f"SELECT {cols} FROM ({self.typed(p)}) WHERE _err = ''")
        self.ctx.con.execute(f"CREATE OR REPLACE VIEW stg_{entity} AS {body}")

    def keys_sql(self, entity: str) -> str:
        kc = ", ".join(sql_ident(k) for k in contract.ENTITIES[entity].key)
        return self._union(entity, f"SELECT {kc} FROM stg_{entity}_all",
                           lambda p: f"SELECT {kc} FROM ({self.typed(p, 'none')})")

    def _files(self, entity: str) -> list[tuple[str, int, int, int]]:
        """The entity's staged files: name, rows, first and last line."""
        files: list[tuple[str, int, int, int]] = []
        if entity in self.tables:
            files += self.ctx.con.execute(f"SELECT _file, count(*), min(_line), max(_line) FROM stg_{entity}_all "
                                          f"WHERE _err = '' GROUP BY _file ORDER BY _file").fetchall()
        files += [(p.info.name, p.rows, 2, p.rows + 1) for p in self.parts[entity]]   # lines from 2, a few may lack
        return files

    def chunks(self, entity: str, rows: int) -> list[str]:
        """Predicates over `_file`/`_line` that split the entity's staged rows into chunks of about `rows`
        (whole small files together; a large file by ranges of lines). Together they cover every row once."""
        items: list[tuple[int, str]] = []
        for name, n, first, last in self._files(entity):
            k = max(1, -(-n // rows))
            step = max(1, -(-(last - first + 1) // k))
            for j in range(k):
                # by ranges of line numbers; the first and last range are open, so every line is in one
                lo = f" AND _line >= {first + j * step}" if j else ""
                hi = f" AND _line < {first + (j + 1) * step}" if j < k - 1 else ""
                items.append((-(-n // k), f"(_file = {sql_literal(name)}{lo}{hi})"))
        chunks: list[list] = []          # [rows, predicates]
        for n, where in items:
            if chunks and chunks[-1][0] + n <= rows:
                chunks[-1][0] += n
                chunks[-1][1].append(where)
            else:
                chunks.append([n, [where]])
        if len(chunks) <= 1:
            return ["true"]
        return [" OR ".join(w) for _, w in chunks]

    def rows(self, entity: str) -> int:
        """Rows staged for `entity`: the good rows of its table, every row of its lazy parts (as in bronze)."""
        table = 0
        if entity in self.tables:
            table = self.ctx.con.execute(f"SELECT count(*) FROM stg_{entity}_all WHERE _err = ''").fetchall()[0][0]
        return table + sum(p.rows for p in self.parts[entity])

    def add(self, part: LazyPart) -> None:
        """Stage a fast-path file: lazily when it is large and the entity has few lazy parts yet (a view over
        many of them costs more to plan than to run); else its typed rows are copied into the staging table
        at once (bad ones with their `_err`) and its bad rows quarantined."""
        entity, con = part.info.entity, self.ctx.con
        if part.rows >= LAZY_MIN_ROWS and len(self.parts[entity]) < MAX_LAZY_PARTS:
            self.parts[entity].append(part)
            return
        typed = self.typed(part)
        ensure_stg(con, entity, typed, self.tables)
        con.execute(f"INSERT INTO stg_{entity}_all SELECT * FROM ({typed})")
        self._quarantine(part, f"SELECT * FROM stg_{entity}_all WHERE _file = {sql_literal(part.info.name)}")

    def quarantine_parts(self, entity: str) -> None:
        """Put the rows of `entity`'s lazy parts that fail typing in quarantine (once per part)."""
        for p in self.parts[entity]:
            if p.bad is None:
                self._quarantine(p)

    def _quarantine(self, p: LazyPart, typed: str | None = None) -> None:
        """Quarantine the part's rows that fail typing; `typed` selects its typed rows (default: typed anew)."""
        entity, con = p.info.entity, self.ctx.con
        bad = con.sql(f"SELECT _line, _err, _errf FROM ({typed or self.typed(p)}) WHERE _err <> '' "
                      f"ORDER BY _line").to_arrow_table()
        p.bad = bad.num_rows
        if not bad.num_rows:
            return
        con.register("_bad_lines", bad.select(["_line"]))
        raws = con.sql(f"SELECT v.* FROM {p.source} v SEMI JOIN _bad_lines b ON v._line = b._line").to_arrow_table()
        con.unregister("_bad_lines")
        raw_by_line = {r["_line"]: r for r in raws.to_pylist()}
        for line, err, errf in zip(*(bad.column(c).to_pylist() for c in ("_line", "_err", "_errf"))):
            self.ctx.quarantine.add(p.info.name, entity, line, errf, err,
                                    nodes.raw_json(entity, raw_by_line[line], self.ctx.salt))

    def all_good(self, entity: str) -> None:
        """Record that no row of `entity`'s lazy parts fails typing (shown by the rows a write kept)."""
        for p in self.parts[entity]:
            p.bad = 0
