"""Checking claims on SQLite (`serve.engine: sqlite`): `LiteSession` does what `evaluate.Session` does (type the
claims with ingestion's SQL, put each in place of the lake's version of its visit, add each person's history as
of the claim's time, run the rule library's queries) with the same SQL translated by `lite_sql.to_sqlite`, in
a private in-memory SQLite database whose prepared statements keep their plans (decision 42).

The warm lake stays what it is (pipelines.serve.history): the persons' history in Arrow, the knowledge base,
institutions and stock movements in DuckDB, copied once into the session's SQLite database when it opens. The
claims' rows stay in SQLite from typing to rules (pipelines.serve.passes); the suspects come back as an Arrow
table of the DuckDB session's types, so everything after a pass (the answer, the equivalence test) is the same
for both engines.
"""
from __future__ import annotations

import datetime as dt
import decimal
import json

import pyarrow as pa
import pyarrow.compute as pc

from pipelines import contract
from pipelines.serve import gates, lite_sql
from pipelines.serve.evaluate import RuleProgram
from pipelines.serve.history import WarmLake, table_name
from pipelines.serve.passes import CLAIM_PARTS, NETTED, REQUEST_INPUTS, SHAPE_SCHEMA, PassSteps, staged

#: warm tables copied whole into the session (small: the knowledge base, institutions, stock movements), with
#: the columns the rules join them on indexed
COPIED = {"kb_hilist": ("hilist_code",), "kb_item_pair": ("hilist_code_a",), "kb_param": ("key",),
          "h_fixmedins": ("fixmedins_code",), "h_inv_movement": ("fixmedins_code", "hilist_code")}


def _affinity(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        t = t.value_type
    if pa.types.is_decimal(t) or pa.types.is_floating(t):
        return "REAL"
    if pa.types.is_integer(t) or pa.types.is_boolean(t):
        return "INTEGER"
    return "TEXT"            # text, and dates and times as ISO text (their text order is their time order)


def _values(col: pa.ChunkedArray) -> list:
    t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    if pa.types.is_timestamp(t):
        naive = col.cast(pa.timestamp(t.unit)) if t.tz else col
        whole = naive.cast(pa.timestamp("s"), safe=False)
        if pc.all(pc.equal(whole.cast(naive.type), naive)).as_py() is not False:   # no fractions: Arrow's text
            return whole.cast(pa.string()).to_pylist()
        return [lite_sql.iso(v) for v in col.to_pylist()]
    if pa.types.is_date(t):
        return col.cast(pa.string()).to_pylist()
    if pa.types.is_decimal(t):
        return [None if v is None else float(v) for v in col.to_pylist()]
    if pa.types.is_boolean(t):
        return [None if v is None else int(v) for v in col.to_pylist()]
    if pa.types.is_nested(t):
        return [None if v is None else json.dumps(v, ensure_ascii=False, default=str) for v in col.to_pylist()]
    return col.to_pylist()


def rows_of(table: pa.Table, names: list[str]) -> list[tuple]:
    """A table's rows as SQLite takes them (pipelines.serve.lite_sql: ISO text times, REAL decimals)."""
    return list(zip(*(_values(table.column(n)) for n in names)))


def _back(v, t: pa.DataType):
    if v is None:
        return None
    if pa.types.is_timestamp(t):
        out = dt.datetime.fromisoformat(v)
        return out.replace(tzinfo=dt.timezone.utc) if t.tz else out
    if pa.types.is_date(t):
        return dt.date.fromisoformat(v[:10])
    if pa.types.is_decimal(t):
        return decimal.Decimal(repr(v) if isinstance(v, float) else str(v)).quantize(
            decimal.Decimal(1).scaleb(-t.scale), decimal.ROUND_HALF_UP)
    if pa.types.is_boolean(t):
        return bool(v)
    if pa.types.is_list(t):
        items = json.loads(v) if isinstance(v, str) else v
        return [json.loads(i) if isinstance(i, str) else i for i in items]
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return lite_sql._text(v) if not isinstance(v, str) else v
    return v


def fetch(cursor, names: list[str]) -> list[tuple]:
    """A SQLite result's rows with the columns `names`, in that order (found by name)."""
    rows = cursor.fetchall()
    if not rows:
        return rows
    at = [[d[0] for d in cursor.description].index(n) for n in names]
    return [tuple(r[i] for i in at) for r in rows]


def table_of(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    """Rows from SQLite (`fetch`, the columns of `schema` in order) as an Arrow table of `schema`."""
    if not rows:
        return _empty(schema)
    columns = list(zip(*rows))
    return pa.table([_column(col, f.type) for f, col in zip(schema, columns)], schema=schema)


def _column(values, t: pa.DataType) -> pa.Array:
    """SQLite values as an Arrow array of `t`: Arrow's own conversion (ISO text cast to times) when it takes
    them, else value by value (decimals from REAL, JSON lists, numbers in a text column)."""
    try:
        if pa.types.is_timestamp(t):
            naive = pa.array(values, pa.string()).cast(pa.timestamp(t.unit))
            return naive.cast(t) if t.tz else naive
        if pa.types.is_date(t):
            return pa.array(values, pa.string()).cast(t)
        if not (pa.types.is_decimal(t) or pa.types.is_boolean(t) or pa.types.is_nested(t)):
            return pa.array(values, t)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    return pa.array([_back(v, t) for v in values], t)


_EMPTY: dict[pa.Schema, pa.Table] = {}


def _empty(schema: pa.Schema) -> pa.Table:
    if schema not in _EMPTY:
        _EMPTY[schema] = schema.empty_table()
    return _EMPTY[schema]


class LiteSession(PassSteps):
    """`evaluate.Session`'s interface (`check_many`, `close`) on a private SQLite database, with the same gates:
    a pass runs the rules whose gate holds on its tables (pipelines.serve.gates)."""

    def __init__(self, warm: WarmLake, program: RuleProgram):
        self.warm, self.program = warm, program
        self.cols = {s: warm.columns[s] for s in REQUEST_INPUTS}
        self.con = lite_sql.connect()
        duck = warm.cursor()
        try:
            self._create(duck)
            self.gates = gates.PassGates(program.rules, lambda sql: [r[0] for r in duck.execute(sql).fetchall()])
        finally:
            duck.close()
        self.rules = [lite_sql.to_sqlite(f"SELECT * FROM ({r.sql}) q WHERE q.mdtrt_id IN "
                                         "(SELECT mdtrt_id FROM claim_keys)") for r in program.rules]
        self.exists = (lite_sql.to_sqlite("SELECT " + ", ".join(t[1] for t in self.gates.exists))
                       if self.gates.exists else None)
        for sql in self.rules + ([self.exists] if self.exists else []):   # what SQLite cannot prepare fails here
            self.con.execute("EXPLAIN " + sql)
        self.ran: list[int] = []      # the rules the last pass ran (the others' gates were false)

    def _create(self, duck) -> None:
        """The pass tables (empty), the copied warm tables, the staging tables of typing and history, the views,
        and the typing statements with the Arrow schemas of their DuckDB results."""
        con = self.con
        for s in REQUEST_INPUTS:
            schema = duck.sql(f"SELECT {self._sel(s)} FROM {table_name(s)} LIMIT 0").to_arrow_table().schema
            self._table(s, schema)
        self._table("claim_keys", pa.schema([("psn_no", pa.string()), ("mdtrt_id", pa.string()),
                                             ("t", pa.timestamp("us")), ("psn_sent", pa.bool_())]))
        for name, keys in COPIED.items():
            data = duck.sql(f"SELECT * FROM {name}").to_arrow_table()
            self._table(name, data.schema)
            con.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * data.num_columns)})',
                            rows_of(data, data.column_names))
            if set(keys) <= set(data.column_names):
                con.execute(f'CREATE INDEX "i_{name}" ON "{name}" ({", ".join(keys)})')
        self.places = frozenset(r[0] for r in con.execute("SELECT fixmedins_code FROM h_fixmedins"))
        for s, rows in self.warm.people.items():
            self._table(f"r_{s}", rows.table.schema)
        self.typed_names, self.typing = {}, {}
        for entity in CLAIM_PARTS:
            names = contract.ENTITIES[entity].names
            duck.execute(f'CREATE TEMP TABLE "raw_{entity}" ({", ".join(f"{chr(34)}{n}{chr(34)} VARCHAR" for n in names)}'
                         ", _line BIGINT)")
            self._table(f"raw_{entity}", pa.schema([*((n, pa.string()) for n in names), ("_line", pa.int64())]))
            sql = self.program.typing.typing(entity, f"raw_{entity}")
            self._stage_table(duck, staged(entity), sql)
            self.typing[entity] = (f'INSERT INTO "{staged(entity)}" SELECT * FROM '
                                   f"({lite_sql.to_sqlite(sql, typing=True)})")
        net = self.program.typing.net(staged("fee_list"))
        self._stage_table(duck, NETTED, net)
        net = lite_sql.to_sqlite(net, typing=True, star_columns=self.typed_names[staged("fee_list")])
        self.net = f'INSERT INTO "{NETTED}" SELECT * FROM ({net})'
        for name, sql in self.program.views:
            con.execute(f'CREATE VIEW "{name}" AS {lite_sql.to_sqlite(sql)}')

    def _table(self, name: str, schema: pa.Schema) -> None:
        cols = ", ".join(f'"{f.name}" {_affinity(f.type)}' for f in schema)
        self.con.execute(f'CREATE TABLE "{name}" ({cols})')

    def _stage_table(self, duck, name: str, select: str) -> None:
        """A staging table of typing (or netting) with the columns of its DuckDB result, in DuckDB too (the next
        statement's source)."""
        duck.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM ({select}) LIMIT 0')
        schema = duck.sql(f'SELECT * FROM "{name}"').to_arrow_table().schema
        self._table(name, schema)
        self.typed_names[name] = schema.names

    def _insert(self, table: str, data: pa.Table) -> None:
        names = data.column_names
        if data.num_rows:
            self._put(table, names, rows_of(data, names))

    def _put(self, table: str, names: list[str], rows: list[tuple]) -> None:
        cols = ", ".join(f'"{n}"' for n in names)
        self.con.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({", ".join("?" * len(names))})', rows)

    def _execute(self, sql: str) -> None:
        self.con.execute(sql)

    def _select(self, sql: str) -> tuple[list[str], list[tuple]]:
        cursor = self.con.execute(sql)
        return [d[0] for d in cursor.description], cursor.fetchall()

    def _type(self, entity: str) -> None:
        self.con.execute(self.typing[entity])

    def _net(self) -> None:
        self.con.execute(self.net)

    def _places(self, codes: list[str]) -> set[str]:
        return {c for c in codes if c in self.places}

    def _stage(self, people: dict[str, pa.Table]) -> None:
        for source, rows in people.items():       # emptied by the pass's rollback
            self._insert(f"r_{source}", rows)

    def _unstage(self) -> None:
        pass

    def _run_rules(self) -> pa.Table:
        codes = {r[0] for r in self.con.execute("SELECT DISTINCT hilist_code FROM fee_list")}
        values = self.con.execute(self.exists).fetchone() if self.exists else ()
        self.ran = self.gates.ran(codes, values)
        rows = []
        for i in self.ran:
            rows += fetch(self.con.execute(self.rules[i]), SHAPE_SCHEMA.names)
        return table_of(rows, SHAPE_SCHEMA)

    def _sel(self, source: str, prefix: str = "") -> str:
        return ", ".join(f'{prefix}"{c}"' for c in self.cols[source])

    def close(self) -> None:
        self.con.close()

