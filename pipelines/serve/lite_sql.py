"""The claim-time SQL on SQLite: the rule library's DuckDB SQL (rules, views, ingestion's typing and netting)
carried to SQLite by sqlglot, with the rewrites and functions SQLite lacks.

Why a second engine at all (docs/decisions.md §42): DuckDB 2.0 binds and optimises every statement again at
each execution, ~5-15 ms per rule whatever the rows, so a pass over one claim costs ~300 ms; SQLite keeps a
prepared statement's plan (`sqlite3`'s statement cache) and runs the same 39 rules on a claim's few hundred
rows in ~2 ms. The SQL stays the batch screening's: it is translated here, never written twice.

What SQLite stores and how it reads back (`rows_of` / `table_of`, pipelines.serve.lite):
- timestamps and dates as ISO text ('2024-01-02 08:30:00', a fraction only when there is one; '2024-01-02'),
  so that text order is time order;
- decimals as REAL. Binary floating point is where SQLite could disagree with DuckDB's exact decimals: a sum
  of amounts or a price × ratio lands a hair off the decimal value (23 × 1.2 = 27.599999999999998). So every
  sum, product and difference is rounded back to 8 decimals where it is computed (`R8`): money has 2
  decimals and a knowledge-base ratio at most 6, so the exact decimal result has at most 8, and the rounded
  float is the one its decimal literal would give; a float64 carries 8 decimals exactly up to ~10 million
  yuan. Division stays floating point, as it is in DuckDB. Amounts and numbers in evidence text are printed
  with their decimal scale (`NUMS`).
"""
from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import re
import sqlite3

import sqlglot
from sqlglot import exp

# ---------------------------------------------------------------- functions SQLite lacks


def iso(v) -> str | None:
    """A datetime or date as SQLite holds it: ISO text, the fraction only when there is one."""
    if v is None:
        return None
    if isinstance(v, dt.datetime):       # the lake's times are UTC (contract); the offset is left out
        return v.replace(tzinfo=None).isoformat(" ")
    return v.isoformat()


def _concat_ws(sep, *xs):
    return None if sep is None else sep.join(_text(x) for x in xs if x is not None)


def _text(x) -> str:
    return repr(x) if isinstance(x, float) else str(x)


def _sha2(x, bits=256):
    return None if x is None else hashlib.sha256(str(x).encode()).hexdigest()


def _hash(*xs):
    """Any deterministic 63-bit hash: the rules compare it only with itself (fee_dup_groups)."""
    return int.from_bytes(hashlib.blake2b(repr(xs).encode(), digest_size=8).digest(), "big") >> 1


def _regexp_replace(s, pattern, replacement, flags=""):
    if s is None:
        return None
    return re.sub(pattern, replacement, s, count=0 if "g" in (flags or "") else 1)


def _lpad(s, n, c):
    if s is None:
        return None
    s = str(s)
    return s[:n] if len(s) >= n else (c * n)[: n - len(s)] + s


def _date_part(i: int):
    def part(x):
        return None if x is None else int(str(x)[:10].split("-")[i])
    return part


def _split_json(s, pattern):
    return None if s is None else json.dumps(re.split(pattern, s))


def _nums(x, scale):
    """CAST(CAST(x AS DECIMAL(p, scale)) AS VARCHAR) as DuckDB prints it (half away from zero)."""
    if x is None:
        return None
    q = decimal.Decimal(1).scaleb(-int(scale))
    return str(decimal.Decimal(repr(x) if isinstance(x, float) else str(x)).quantize(q, decimal.ROUND_HALF_UP))


def _r8(x):
    return round(x, 8) if isinstance(x, float) else x


def _try_number(kind: str):
    def convert(x):
        if x is None:
            return None
        text = str(x).strip()
        try:
            v = decimal.Decimal(text)
        except decimal.InvalidOperation:
            return None
        if not v.is_finite():
            return None
        if kind == "int":
            return int(v.quantize(0, decimal.ROUND_HALF_UP))
        return float(v)
    return convert


def _try_strptime(x, formats):
    if x is None:
        return None
    for f in json.loads(formats) if formats.startswith("[") else [formats]:
        try:
            return iso(dt.datetime.strptime(x, f))
        except ValueError:
            continue
    return None


def _hmac(outer_hex, inner_hex, x):
    if x is None:
        return None
    inner = hashlib.sha256(bytes.fromhex(inner_hex) + str(x).encode()).digest()
    return hashlib.sha256(bytes.fromhex(outer_hex) + inner).hexdigest()


class _SortedDistinctJoin:
    """list_sort(list(DISTINCT x)) joined by a separator."""

    def __init__(self):
        self.seen, self.sep = set(), ","

    def step(self, x, sep):
        self.sep = sep
        if x is not None:
            self.seen.add(_text(x))

    def finalize(self):
        return self.sep.join(sorted(self.seen)) if self.seen else None


FUNCTIONS = {
    ("TRY_DOUBLE", 1): _try_number("double"), ("TRY_BIGINT", 1): _try_number("int"),
    ("TRY_DEC", 1): _try_number("dec"), ("TRY_STRPTIME", 2): _try_strptime, ("HMAC_SHA256", 3): _hmac,
    ("STARTS_WITH", 2): lambda s, p: None if s is None or p is None else s.startswith(p),
    ("ENDS_WITH", 2): lambda s, p: None if s is None or p is None else s.endswith(p),
    ("CONTAINS", 2): lambda s, p: None if s is None or p is None else p in s,
    ("REGEXP_FULL_MATCH", 2): lambda s, p: None if s is None else re.fullmatch(p, s) is not None,
    ("REGEXP_MATCHES", 2): lambda s, p: None if s is None else re.search(p, s) is not None,
    ("SHA2", 2): _sha2, ("CONCAT_WS", -1): _concat_ws, ("HASH", -1): _hash,
    ("REGEXP_REPLACE", 4): _regexp_replace, ("REGEXP_REPLACE", 3): _regexp_replace, ("LPAD", 3): _lpad,
    ("YEAR", 1): _date_part(0), ("MONTH", 1): _date_part(1), ("DAY", 1): _date_part(2),
    ("SPLIT_JSON", 2): _split_json, ("NUMS", 2): _nums, ("R8", 1): _r8,
}


def connect() -> sqlite3.Connection:
    """An in-memory SQLite database with the functions the translated SQL calls; statements are cached by their
    text (a pass runs the same strings), autocommit unless a transaction is begun."""
    con = sqlite3.connect(":memory:", isolation_level=None, cached_statements=1024, check_same_thread=False)
    for (name, n), fn in FUNCTIONS.items():
        con.create_function(name, n, fn, deterministic=True)
    con.create_aggregate("SORTED_DISTINCT_JOIN", 2, _SortedDistinctJoin)
    return con


# ---------------------------------------------------------------- translation

#: what DuckDB computes exactly on decimals, rounded back to the decimal it stands for on SQLite (`R8`)
_EXACT = (exp.Add, exp.Sub, exp.Mul, exp.Sum)


def _rewrite(node: exp.Expression) -> exp.Expression:
    """Rewrites on the DuckDB tree that make the SQLite output mean what DuckDB means (sqlglot does not descend
    into a node a rewrite replaced, so each rewrite carries its kept parts through `_sub`)."""
    if isinstance(node, (exp.Cast, exp.TryCast)) and node.to.is_type("text", "varchar") \
            and isinstance(node.this, (exp.Cast, exp.TryCast)) and node.this.to.is_type("decimal"):
        params = node.this.to.expressions
        scale = params[1].this.this if len(params) > 1 else "0"
        return exp.Anonymous(this="NUMS", expressions=[_sub(node.this.this), exp.Literal.number(scale)])
    if isinstance(node, (exp.Cast, exp.TryCast)) and node.to.is_type("timestamptz"):
        return _sub(node.this)     # stored as ISO text already; SQLite's CAST would cut the text at '-'
    if isinstance(node, exp.Add) and isinstance(node.expression, exp.Interval) \
            and node.expression.unit is not None and node.expression.unit.name.upper() == "DAY":
        days = exp.DPipe(this=exp.Cast(this=_sub(node.expression.this), to=exp.DataType.build("TEXT")),
                         expression=exp.Literal.string(" days"))
        return exp.Anonymous(this="DATETIME", expressions=[_sub(node.this), days])
    if isinstance(node, exp.Div):          # DuckDB's `/` divides as numbers; SQLite's cuts integers
        return exp.Div(this=exp.Cast(this=_sub(node.this), to=exp.DataType.build("REAL")),
                       expression=_sub(node.expression))
    if isinstance(node, exp.ArrayToString) and isinstance(node.this, exp.ArraySort):
        return _sorted_distinct_join(node) or node
    if _sum_chain(node) and isinstance(node.parent, (exp.Window, exp.Filter)):
        return node                # rounded around its window or filter, where SQL allows a function
    if _sum_chain(node) or isinstance(node, _EXACT):
        return exp.Anonymous(this="R8", expressions=[_inner(node)])
    return node


def _sum_chain(node: exp.Expression) -> bool:
    """A sum, or a window or filter over one."""
    while isinstance(node, (exp.Window, exp.Filter)):
        node = node.this
    return isinstance(node, exp.Sum)


def _sub(node: exp.Expression) -> exp.Expression:
    return node.transform(_rewrite)


def _inner(node: exp.Expression) -> exp.Expression:
    """A copy of `node` with its descendants rewritten, not itself (a sum inside a window or filter stays
    where SQL wants it)."""
    node = node.copy()

    def each(child, parent):
        if not isinstance(child, exp.Expression):
            return child
        keep = _sum_chain(child) and isinstance(parent, (exp.Window, exp.Filter))
        return _inner(child) if keep else _sub(child)

    for key, value in list(node.args.items()):
        node.set(key, [each(v, node) for v in value] if isinstance(value, list) else each(value, node))
    return node


def _sorted_distinct_join(node: exp.ArrayToString) -> exp.Expression | None:
    inner, condition = node.this.this, None
    if isinstance(inner, exp.Filter):
        condition, inner = inner.expression, inner.this
    if not isinstance(inner, exp.ArrayAgg):
        return None
    arg = inner.this.expressions[0] if isinstance(inner.this, exp.Distinct) else inner.this
    agg = exp.Anonymous(this="SORTED_DISTINCT_JOIN", expressions=[_sub(arg), node.expression])
    return exp.Filter(this=agg, expression=_sub(condition)) if condition is not None else agg


def _rewrite_typing(node: exp.Expression) -> exp.Expression:
    """Typing's rewrites: TRY_CAST keeps its NULL-on-failure meaning (SQLite's CAST('abc' AS REAL) is 0.0),
    try_strptime's list of formats, the {field, msg} structs as JSON, the salted name hash as one function."""
    if isinstance(node, exp.TryCast):
        fn = next((f for t, f in (("double", "TRY_DOUBLE"), ("float", "TRY_DOUBLE"), ("bigint", "TRY_BIGINT"),
                                  ("int", "TRY_BIGINT"), ("decimal", "TRY_DEC")) if node.to.is_type(t)), None)
        if fn:
            return exp.Anonymous(this=fn, expressions=[node.this.transform(_rewrite_typing)])
    parsed = ((node.this, node.args["format"]) if isinstance(node, exp.StrToTime) and node.args.get("safe") else
              node.expressions[:2] if isinstance(node, exp.Anonymous) and node.name.lower() == "try_strptime" else None)
    if parsed:
        text, fmt = parsed
        if isinstance(fmt, exp.Array):
            fmt = exp.Literal.string(json.dumps([e.name for e in fmt.expressions]))
        return exp.Anonymous(this="TRY_STRPTIME", expressions=[text, fmt])
    if isinstance(node, exp.Struct):
        pairs = []
        for e in node.expressions:
            pairs += [exp.Literal.string(e.this.name), e.expression]
        return exp.Anonymous(this="json_object", expressions=pairs)
    if isinstance(node, exp.Array):
        return exp.Anonymous(this="json_array", expressions=[e.transform(_rewrite_typing) for e in node.expressions])
    if isinstance(node, exp.SHA2) and any(True for _ in node.find_all(exp.Unhex)):
        keys = [h for h in node.find_all(exp.Literal) if h.is_string and len(h.name) >= 64]
        if len(keys) == 2:
            return exp.Anonymous(this="HMAC_SHA256",
                                 expressions=[keys[0].copy(), keys[1].copy(), next(node.find_all(exp.Column)).copy()])
    return node


def _unnest_to_json_each(tree: exp.Expression) -> exp.Expression:
    """SELECT unnest(string_split_regex(e, p)) AS a [FROM src] → SELECT _u.value AS a FROM [src,]
    json_each(SPLIT_JSON(e, p)) AS _u."""
    for select in list(tree.find_all(exp.Select)):
        for projection in select.expressions:
            target = projection.this if isinstance(projection, exp.Alias) else projection
            if not isinstance(target, (exp.Explode, exp.Unnest)):
                continue
            arg = target.this if isinstance(target, exp.Explode) else target.expressions[0]
            if isinstance(arg, exp.RegexpSplit):
                arg = exp.Anonymous(this="SPLIT_JSON", expressions=[arg.this, arg.expression])
            each = exp.Table(this=exp.Anonymous(this="json_each", expressions=[arg]),
                             alias=exp.TableAlias(this=exp.to_identifier("_u")))
            target.replace(exp.column("value", "_u"))
            if select.args.get("from_") or select.args.get("from"):
                select.join(each, join_type="cross", copy=False)
            else:
                select.from_(each, copy=False)
    return tree


def _expand_star_replace(tree: exp.Expression, columns: list[str]) -> exp.Expression:
    """`t.* REPLACE (e AS c, ...)` (DuckDB) → the columns listed, c replaced by e."""
    for col in list(tree.find_all(exp.Column)):
        if isinstance(col.this, exp.Star) and col.this.args.get("replace"):
            new = {a.alias: a for a in col.this.args["replace"]}
            items = [new[c].copy() if c in new else exp.column(c, col.table, quoted=True) for c in columns]
            select = col.parent
            at = select.expressions.index(col)
            select.set("expressions", select.expressions[:at] + items + select.expressions[at + 1:])
    return tree


def to_sqlite(duck_sql: str, *, typing: bool = False, star_columns: list[str] | None = None) -> str:
    """DuckDB SQL of the rule library (or, `typing`, ingestion's typing and netting) as SQLite SQL."""
    tree = sqlglot.parse_one(duck_sql, read="duckdb")
    if star_columns:
        tree = _expand_star_replace(tree, star_columns)
    if typing:
        tree = tree.transform(_rewrite_typing)
        for cte in tree.find_all(exp.CTE):      # else SQLite copies each typed expression into every use
            cte.set("materialized", True)
    tree = _unnest_to_json_each(tree.transform(_rewrite))
    return tree.sql(dialect="sqlite")
