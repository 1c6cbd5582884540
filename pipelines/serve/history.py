"""The service's warm view of the lake: one in-process DuckDB database holding, at recorded Delta versions,
the columns the rule library reads, each history table clustered by the key a claim looks it up by.

This is the stage's I/O module: it reads the lake only through `pipelines.storage`. Everything a request
does runs on a `Session` (a DuckDB cursor with its own temporary tables), see `pipelines.serve.evaluate`.

- the person-keyed history (`fee_list`, `mdtrt`, `diag` with the visit's psn_no, `psn`): Arrow tables streamed
  from the snapshot and held compact (`compact`: repeated text as dictionaries, decimals in 64 bits) in person
  order (`PersonRows`), so a look-up is a binary search and a slice (a DuckDB statement per person cost ~1 ms
  of binding each: 90–220 ms a pass of 16–64 claims at 10 M lines); their `h_<input>`
  DuckDB tables are empty, the shape of the pass tables;
- `h_fixmedins`: master data; `h_inv_movement`: sorted by institution and item;
- `kb_hilist`, `kb_item_pair`, `kb_param`: the knowledge base, under the names the rules read.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.storage import Lake, native_select, sql_ident

#: rule input name -> (lake table, the column its history is sorted by)
SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "fee_list": ("silver/fee_list_net", ("psn_no", "fee_ocur_time")),
    "mdtrt": ("silver/mdtrt", ("psn_no", "begntime")),
    "diag": ("silver/diag", ()),
    "setl": ("silver/setl", ()),
    "psn": ("silver/psn", ("psn_no",)),
    "fixmedins": ("silver/fixmedins", ("fixmedins_code",)),
    "inv_movement": ("silver/inv_movement", ("fixmedins_code", "hilist_code")),
    "kb_hilist": ("silver/kb_hilist", ()),
    "kb_item_pair": ("silver/kb_item_pair", ()),
    "kb_param": ("silver/kb_param", ()),
}
KB_INPUTS = ("kb_hilist", "kb_item_pair", "kb_param")
#: columns a look-up needs whether or not a rule names them
LOOKUP_COLUMNS = {"fee_list": {"psn_no", "mdtrt_id", "fee_ocur_time", "hilist_code"},
                  "mdtrt": {"psn_no", "mdtrt_id", "begntime", "endtime", "fixmedins_code"},
                  "diag": {"mdtrt_id"}, "psn": {"psn_no"}, "fixmedins": {"fixmedins_code"},
                  "inv_movement": {"fixmedins_code", "hilist_code"}, "setl": {"mdtrt_id"}}


#: rule inputs whose history is looked up by person (held as PersonRows)
PERSON_KEYED = ("fee_list", "mdtrt", "diag", "psn")


@dataclass(frozen=True)
class PersonRows:
    """One history table held in person order, each person's rows found by binary search (no query to plan):
    the rows sorted by psn_no (then the table's sort columns; rows without a psn_no left out), `keys` the
    distinct psn_no (UTF-8 bytes, sorted), `starts`/`counts` each person's run of rows. The table is held compact
    (`compact`); `of(persons)` gives those persons' rows (slices, no copy of the whole) with plain text columns,
    as DuckDB reads them fastest."""
    table: pa.Table
    keys: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def build(cls, table: pa.Table, then: tuple[str, ...] = ()) -> "PersonRows":
        """Index `table` by psn_no, rows of one person ordered by the columns `then`; the table is re-ordered
        one column at a time (the extra memory is one column), so the caller should hold no other reference."""
        rank, values = _ranks(table.column("psn_no"))
        keys = [rank] + [_sort_key(table.column(c)) for c in then]
        order = np.lexsort(keys[::-1])
        del keys
        order = order[rank[order] >= 0]
        sorted_rank = rank[order]
        edges = np.flatnonzero(np.diff(sorted_rank)) + 1
        starts = np.r_[0, edges].astype(np.int64) if len(order) else np.zeros(0, np.int64)
        counts = np.diff(np.r_[starts, len(order)]).astype(np.int64)
        names = np.array([values[r].encode() for r in sorted_rank[starts]], dtype=object)
        del rank, sorted_rank
        take, schema, columns = pa.array(order), table.schema, []
        while table.num_columns:                   # each column re-ordered, then let go of in the original
            col = table.column(0).take(take)
            columns.append(pa.chunked_array([pa.concat_arrays(col.chunks)], col.type) if col.num_chunks else col)
            table = table.remove_column(0)
            pa.default_memory_pool().release_unused()
        table = pa.Table.from_arrays(columns, schema=schema)
        return cls(table, names, starts, counts)

    def _find(self, person: str) -> int | None:
        key = person.encode()
        i = int(np.searchsorted(self.keys, key))
        return i if i < len(self.keys) and self.keys[i] == key else None

    def holds(self, person: str) -> bool:
        return self._find(person) is not None

    def of(self, persons: list[str]) -> pa.Table:
        found = [i for i in map(self._find, persons) if i is not None]
        if not found:
            return plain(self.table.slice(0, 0))
        parts = [self.table.slice(self.starts[i], self.counts[i]) for i in found]
        return plain(parts[0] if len(parts) == 1 else pa.concat_tables(parts))


def _ranks(column: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    """Each row's rank among the column's distinct values in text order (-1 for null), and those values."""
    encoded = (column if pa.types.is_dictionary(column.type) else pc.dictionary_encode(column)).unify_dictionaries()
    if not encoded.num_chunks:
        return np.zeros(0, np.int64), []
    values = encoded.chunk(0).dictionary
    by_text = pc.sort_indices(values)
    rank_of = np.full(len(values) + 1, -1, np.int64)         # the last entry: a null's rank
    rank_of[by_text.to_numpy()] = np.arange(len(values))
    index = np.concatenate([pc.fill_null(c.indices.cast(pa.int64()), -1).to_numpy() for c in encoded.chunks])
    return rank_of[index], values.take(by_text).to_pylist()


def _sort_key(column: pa.ChunkedArray) -> np.ndarray:
    """A numpy key that orders like the column (nulls first), for lexsort."""
    if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
        column = column.cast(pa.int64())
    if pa.types.is_integer(column.type):
        return pc.fill_null(column.cast(pa.int64()), np.iinfo(np.int64).min).to_numpy()
    return _ranks(column.cast(pa.string()))[0]


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))


def compact(table: pa.Table, share: float = 0.5) -> pa.Table:
    """The same values in less memory, one chunk per column in Arrow's own pool: text whose distinct values are
    at most `share` of the rows as a dictionary with the narrowest index (other text as plain text), a decimal
    of up to 18 digits in 64 bits. DuckDB reads both as its VARCHAR and DECIMAL; `plain` decodes dictionaries.
    Columns are settled one at a time, so holding the only reference to `table` bounds the extra memory."""
    for i, f in enumerate(table.schema):
        table = table.set_column(i, f.name, _settle(table.column(i), share))
        pa.default_memory_pool().release_unused()     # mimalloc keeps freed pages unless asked
    return table


def _settle(col: pa.ChunkedArray, share: float) -> pa.ChunkedArray:
    t = col.type
    if _narrow_decimal(t):
        col = col.cast(_narrow_decimal(t))
    elif _is_text(t) and len(col) and (pa.types.is_dictionary(t) or _repeats(col.slice(0, 1 << 20), share)):
        enc = (col if pa.types.is_dictionary(t) else pc.dictionary_encode(col)).unify_dictionaries()
        size = len(enc.chunk(0).dictionary)
        if size <= share * len(col):
            index = pa.int8() if size < 2 ** 7 else pa.int16() if size < 2 ** 15 else pa.int32()
            return pa.chunked_array([pa.concat_arrays(enc.chunks).cast(pa.dictionary(index, pa.string()))])
        if pa.types.is_dictionary(t):
            col = pa.chunked_array([c.dictionary_decode() for c in enc.chunks], pa.string())
    return pa.chunked_array([pa.concat_arrays(col.chunks)], col.type) if col.num_chunks else col


def _narrow_decimal(t: pa.DataType) -> pa.DataType | None:
    """The 64-bit decimal a 128-bit one of up to 18 digits fits in (None for any other type)."""
    return pa.decimal64(t.precision, t.scale) if pa.types.is_decimal128(t) and t.precision <= 18 else None


def _repeats(col, share: float) -> bool:
    """Whether a text column's distinct values are at most `share` of its rows (judged on the rows given: a
    column of unique values is never hashed whole)."""
    return pc.count_distinct(col).as_py() <= share * len(col)


def _own_table(reader: pa.RecordBatchReader, share: float = 0.5) -> pa.Table:
    """The reader's batches re-made in Arrow's pool (a column left in a batch DuckDB exported keeps that whole
    batch alive): narrow decimals in 64 bits, and the text columns that repeat in the first batch
    dictionary-encoded batch by batch (`compact` settles each column)."""
    batches, encode = [], None
    for batch in reader:
        if encode is None:
            encode = {f.name for f, c in zip(batch.schema, batch.columns)
                      if pa.types.is_string(f.type) and _repeats(c, share)}
        cols = []
        for f, c in zip(batch.schema, batch.columns):
            if _narrow_decimal(f.type):
                cols.append(c.cast(_narrow_decimal(f.type)))
            else:
                cols.append(pc.dictionary_encode(c) if f.name in encode else pa.concat_arrays([c]))
        batches.append(pa.RecordBatch.from_arrays(cols, names=batch.schema.names))
    if not batches:
        return reader.schema.empty_table()
    table = pa.Table.from_batches(batches)
    batches.clear()
    return table


def plain(table: pa.Table) -> pa.Table:
    """Dictionary columns decoded to their values (DuckDB converts a whole dictionary at every scan)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            col = table.column(i).combine_chunks()
            table = table.set_column(i, pa.field(f.name, f.type.value_type), col.dictionary_decode())
    return table


def table_name(source: str) -> str:
    """The warm table of a rule input: the knowledge base under its own name, history as `h_<input>`."""
    return source if source in KB_INPUTS else f"h_{source}"


@dataclass
class WarmLake:
    """The lake's tables loaded into one DuckDB database at `versions` (None: the table is absent)."""

    con: duckdb.DuckDBPyConnection
    versions: dict[str, int | None]
    columns: dict[str, list[str]]           # input -> columns held (the contract's typed names)
    rows: dict[str, int]
    people: dict[str, PersonRows] = field(default_factory=dict)   # PERSON_KEYED input -> its history by person
    sessions: list = field(default_factory=list)   # cursors opened on this database (closed with it)
    spare: list = field(default_factory=list)      # sessions made with the load, not yet taken by a worker

    @property
    def kb_release(self) -> str:
        """The knowledge base's identity: the Delta version of each kb table (`kb_hilist@3,...`)."""
        return ",".join(f"{s}@{self.versions.get(SOURCES[s][0])}" for s in KB_INPUTS)

    @property
    def history_bytes(self) -> dict[str, int]:
        """Bytes held by each person-keyed history (its compact Arrow table and index), for /readyz."""
        return {s: p.table.nbytes + p.starts.nbytes + p.counts.nbytes
                for s, p in self.people.items()}

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        self.con.close()


def lake_versions(lake: Lake) -> dict[str, int | None]:
    """The current Delta version of every table the service reads (None when absent)."""
    return {table: (lake.version(table) if lake.exists(table) else None) for table, _ in SOURCES.values()}


def held_columns(source: str, wanted: dict[str, set[str]]) -> set[str]:
    """The columns of `source` a warm lake holds: those the rules read (`wanted`) and those a look-up needs."""
    return {c.lower() for c in wanted.get(source, set())} | LOOKUP_COLUMNS.get(source, set())


def load_warm_lake(lake: Lake, wanted: dict[str, set[str]], *, threads: int = 2,
                   memory_limit: str | None = None) -> WarmLake:
    """Load every rule input into a fresh DuckDB database: only the columns in `wanted[input]` (lower-case
    names the rules read) plus those a look-up needs; an absent table is an empty one of the contract's
    schema."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET threads = {int(threads)}")
    con.execute("SET enable_progress_bar = false")
    if memory_limit:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    versions, columns, rows, people = {}, {}, {}, {}
    for source, (table, order) in SOURCES.items():
        keep = held_columns(source, wanted)
        version = lake.version(table) if lake.exists(table) else None
        versions[table] = version
        select = _snapshot_select(con, lake, table, version, keep, source)
        if source == "diag":      # the visit's person, so that a person's diagnoses are found by psn_no
            select = (f"SELECT d.*, m.psn_no FROM ({select}) d JOIN (SELECT mdtrt_id, any_value(psn_no) AS psn_no "
                      "FROM __visit_person GROUP BY 1) m USING (mdtrt_id)")
        name = table_name(source)
        if source in PERSON_KEYED:    # into Arrow by person; the DuckDB table is only the empty shape of the pass's
            people[source] = PersonRows.build(_fetch(con, select), tuple(c for c in order if c != "psn_no"))
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM ({select}) LIMIT 0")
            rows[source] = people[source].table.num_rows
            if source == "mdtrt":
                con.register("__visit_person", people[source].table.select(["mdtrt_id", "psn_no"]))
            elif source == "diag":
                con.unregister("__visit_person")
        else:
            sort = f" ORDER BY {', '.join(sql_ident(c) for c in order)}" if order else ""
            con.execute(f"CREATE TABLE {name} AS SELECT * FROM ({select}){sort}")
            rows[source] = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0]
        columns[source] = [r[0] for r in con.execute(f"SELECT column_name FROM (DESCRIBE {name})").fetchall()]
    return WarmLake(con, versions, columns, rows, people)


def _fetch(con: duckdb.DuckDBPyConnection, select: str, batch_rows: int = 1 << 20) -> pa.Table:
    """A SELECT's rows as a compact Arrow table, streamed in batches so that the whole result is never held as
    plain text nor by DuckDB as well (the load's peak is about the table re-made batch by batch, and then one
    column settled at a time by `compact`, which gets the only reference to it)."""
    return compact(_own_table(con.sql(select).to_arrow_reader(batch_rows)))


def _snapshot_select(con, lake: Lake, table: str, version: int | None, keep: set[str], source: str) -> str:
    """A SELECT of one table's snapshot with the kept columns (an empty contract table when absent)."""
    entity = "fee_list" if source == "fee_list" else source
    if version is None:
        schema = contract.arrow_schema(entity)
        empty = schema.empty_table().select([n for n in schema.names if n.lower() in keep])
        con.register(f"__empty_{source}", empty)
        con.execute(f"CREATE TABLE __e_{source} AS SELECT * FROM __empty_{source}")
        con.unregister(f"__empty_{source}")
        return f"SELECT * FROM __e_{source}"
    names = [n for n in lake.delta(table, version).schema().to_arrow().names if n.lower() in keep]
    snap = lake.native_files(table, version)
    select = native_select(snap, union=True, columns=names) if snap is not None else None
    if select is not None:
        return select
    ds = lake.dataset(table, version)
    con.register(f"__ds_{source}", ds)
    cols = ", ".join(sql_ident(c) for c in names)
    con.execute(f"CREATE TABLE __m_{source} AS SELECT {cols} FROM __ds_{source}")
    con.unregister(f"__ds_{source}")
    return f"SELECT * FROM __m_{source}"


class WarmHolder:
    """The current WarmLake, swapped for a fresh one when the lake's versions change; a WarmLake is closed
    once no request uses it any more."""

    def __init__(self, lake: Lake, loader):
        self.lake, self._loader = lake, loader
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()
        self.current: WarmLake | None = None
        self._users: dict[int, int] = {}
        self._retired: list[WarmLake] = []
        self.last_error: str | None = None

    def load(self) -> WarmLake:
        warm = self._loader(self.lake)
        with self._lock:
            old, self.current = self.current, warm
            self._users.setdefault(id(warm), 0)
            if old is not None:
                self._retired.append(old)
            self._close_idle()
        return warm

    def refresh_if_changed(self) -> bool:
        """Reload when any table's version differs from the loaded ones; True when it reloaded."""
        if not self._refreshing.acquire(blocking=False):
            return False
        try:
            if self.current is not None and lake_versions(self.lake) == self.current.versions:
                return False
            self.load()
            self.last_error = None
            return True
        except Exception as exc:   # keep serving the previous versions; /readyz reports the error
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        finally:
            self._refreshing.release()

    def acquire(self) -> WarmLake:
        with self._lock:
            if self.current is None:
                raise RuntimeError("the lake is not loaded yet")
            self._users[id(self.current)] = self._users.get(id(self.current), 0) + 1
            return self.current

    def release(self, warm: WarmLake) -> None:
        with self._lock:
            self._users[id(warm)] -= 1
            self._close_idle()

    def _close_idle(self) -> None:
        for old in list(self._retired):
            if self._users.get(id(old), 0) == 0:
                self._retired.remove(old)
                self._users.pop(id(old), None)
                old.close()

    def close(self) -> None:
        with self._lock:
            for w in [*self._retired, *([self.current] if self.current else [])]:
                w.close()
            self._retired, self.current = [], None
