"""The service's warm view of the lake: one in-process DuckDB database holding, at recorded Delta versions,
the columns the rule library reads, each history table clustered by the key a claim looks it up by.

This is the stage's I/O module: it reads the lake only through `pipelines.storage`. Everything a request
does runs on a `Session` (a DuckDB cursor with its own temporary tables), see `pipelines.serve.evaluate`.

- the person-keyed history (`fee_list`, `mdtrt`, `diag` with the visit's psn_no, `psn`): Arrow tables sorted
  by psn_no with an index of each person's rows (`PersonRows`), so a look-up is a binary search and a slice
  (a DuckDB statement per person cost ~1 ms of binding each: 90–220 ms a pass of 16–64 claims at 10 M lines);
  their `h_<input>` DuckDB tables are left empty, as the shape of the pass tables;
- `h_fixmedins`: master data; `h_inv_movement`: sorted by institution and item;
- `kb_hilist`, `kb_item_pair`, `kb_param`: the knowledge base, under the names the rules read.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

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
    """One history table sorted by psn_no, with each person's first row and row count: `of(persons)` is every
    row of those persons, found by binary search (no query to plan)."""
    table: pa.Table
    keys: np.ndarray          # the distinct psn_no, UTF-8 bytes, sorted
    starts: np.ndarray
    counts: np.ndarray

    @classmethod
    def from_duckdb(cls, con: duckdb.DuckDBPyConnection, name: str) -> "PersonRows":
        """From a DuckDB table already sorted by psn_no: DuckDB keeps insertion order (`preserve_insertion_order`,
        on by default), so a table's rowids are the positions of its rows in the scan."""
        table = con.table(name).to_arrow_table().combine_chunks()
        runs = con.sql(f"SELECT psn_no, min(rowid) AS s, count(*) AS n FROM {name} "
                       "WHERE psn_no IS NOT NULL GROUP BY psn_no").to_arrow_table()
        keys = np.array([k.encode() for k in runs.column("psn_no").to_pylist()], dtype=object)
        order = np.argsort(keys, kind="stable")
        return cls(table, keys[order], runs.column("s").to_numpy()[order].astype(np.int64),
                   runs.column("n").to_numpy()[order].astype(np.int64))

    def _find(self, person: str) -> int | None:
        key = person.encode()
        i = int(np.searchsorted(self.keys, key))
        return i if i < len(self.keys) and self.keys[i] == key else None

    def holds(self, person: str) -> bool:
        return self._find(person) is not None

    def of(self, persons: list[str]) -> pa.Table:
        found = [i for i in map(self._find, persons) if i is not None]
        parts = [self.table.slice(int(self.starts[i]), int(self.counts[i])) for i in found]
        return pa.concat_tables(parts) if parts else self.table.schema.empty_table()


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

    @property
    def kb_release(self) -> str:
        """The knowledge base's identity: the Delta version of each kb table (`kb_hilist@3,...`)."""
        return ",".join(f"{s}@{self.versions.get(SOURCES[s][0])}" for s in KB_INPUTS)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self.con.cursor()

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        self.con.close()


def lake_versions(lake: Lake) -> dict[str, int | None]:
    """The current Delta version of every table the service reads (None when absent)."""
    return {table: (lake.version(table) if lake.exists(table) else None) for table, _ in SOURCES.values()}


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
    versions, columns, rows = {}, {}, {}
    for source, (table, order) in SOURCES.items():
        keep = {c.lower() for c in wanted.get(source, set())} | LOOKUP_COLUMNS.get(source, set())
        version = lake.version(table) if lake.exists(table) else None
        versions[table] = version
        select = _snapshot_select(con, lake, table, version, keep, source)
        if source == "diag":      # the visit's person, so that a person's diagnoses are found by psn_no
            select = (f"SELECT d.*, m.psn_no FROM ({select}) d "
                      f"JOIN (SELECT mdtrt_id, any_value(psn_no) AS psn_no FROM h_mdtrt GROUP BY 1) m USING (mdtrt_id)")
            order = ("psn_no",)
        sort = f" ORDER BY {', '.join(sql_ident(c) for c in order)}" if order else ""
        con.execute(f"CREATE TABLE {table_name(source)} AS SELECT * FROM ({select}){sort}")
        columns[source] = [r[0] for r in con.execute(
            f"SELECT column_name FROM (DESCRIBE {table_name(source)})").fetchall()]
        rows[source] = con.execute(f"SELECT count(*) FROM {table_name(source)}").fetchall()[0][0]
    people = {}
    for source in PERSON_KEYED:     # into Arrow; the DuckDB table kept only as the empty shape of the pass table
        people[source] = PersonRows.from_duckdb(con, table_name(source))
        con.execute(f"CREATE OR REPLACE TABLE {table_name(source)} AS SELECT * FROM {table_name(source)} LIMIT 0")
    return WarmLake(con, versions, columns, rows, people)


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
