"""How a suite says in plain words what failed (the `message` of a suite record).

A failed expectation is described from the rows it rejected (`unexpected_rows`: the same rule as the
expectation, on the Arrow frame GX validated as pandas; or, with `rows: {column, equals}`, the rows where
that column holds that value), by a template in Chinese and in English filled:
- `per: row`: once per rejected row (its columns), at most `limit` rows;
- `per: [col, …]`: once per group of rejected rows with the same values of those columns;
- `per: all`: once for all rejected rows together (nothing when there are none);
- `per: once`: once, from the run's parameters alone (an expectation on the whole table).
A group or `all` fills `{n}` (the rows) and the `fields` the record declares, each one a list of values
taken from the rows (`column`, or `of`: a template per row), optionally `distinct` (`sorted` or in `first`
order of appearance), cut to `width` characters, then either reduced (`reduce`: `count` or `min`) or joined
with `sep`, at most `limit` of them followed by `more` (`ellipsis`: " …", `count`: " … (+k)").
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from string import Formatter
from typing import Mapping

import pyarrow as pa
import pyarrow.compute as pc

PER_MODES = ("row", "all", "once")
FIELD_KEYS = frozenset({"column", "of", "distinct", "width", "reduce", "sep", "limit", "more"})
DISTINCT = (None, "sorted", "first")
REDUCE = (None, "count", "min")
MORE = (None, "ellipsis", "count")
#: the expectations whose rejected rows `unexpected_rows` can name (the others are about the whole table)
ROW_EXPECTATIONS = frozenset({
    "ExpectColumnValuesToNotBeNull", "ExpectColumnValuesToBeNull", "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToBeUnique", "ExpectColumnValuesToMatchRegex", "ExpectColumnValuesToBeBetween"})


@dataclass(frozen=True)
class Message:
    """A message template: `zh` and `en` (str.format templates), how often it is said, and its fields."""

    zh: str
    en: str
    per: str | tuple[str, ...] = "all"
    fields: Mapping[str, Mapping] = field(default_factory=dict)
    limit: int | None = None        # per row: at most this many messages
    rows: Mapping | None = None     # {column, equals}: describe these rows instead of the rejected ones


def bilingual(zh: str, en: str) -> str:
    """`中文 / English`; after a full-width bracket the bracket is the space: `…（…）/ English`."""
    return f"{zh}{'/ ' if zh.endswith('）') else ' / '}{en}"


# ------------------------------------------------------------------------------------ rejected rows

def _between(col: pa.ChunkedArray, kwargs: Mapping):
    bad = pa.array([False] * len(col), pa.bool_())
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None:
        bad = pc.or_(bad, (pc.less_equal if kwargs.get("strict_min") else pc.less)(col, low))
    if high is not None:
        bad = pc.or_(bad, (pc.greater_equal if kwargs.get("strict_max") else pc.greater)(col, high))
    return bad


def _regex(col: pa.ChunkedArray, pattern: str):
    rx = re.compile(pattern)  # Python's re, as GX's pandas `str.contains`
    return pa.array([v is not None and rx.search(str(v)) is None for v in col.to_pylist()], pa.bool_())


def _unique(col: pa.ChunkedArray):
    counts = pc.value_counts(col.drop_null())
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    return pc.is_in(col, value_set=repeated)


def unexpected_mask(frame: pa.Table, expect: str, kwargs: Mapping):
    """True for each row of `frame` the column expectation `expect(**kwargs)` rejects, else False (nulls
    are left to the null expectations, as GX does)."""
    return pc.fill_null(_mask(frame.column(kwargs["column"]), expect, kwargs), False)


def _mask(col: pa.ChunkedArray, expect: str, kwargs: Mapping):
    if expect == "ExpectColumnValuesToNotBeNull":
        return pc.is_null(col)
    if expect == "ExpectColumnValuesToBeNull":
        return pc.is_valid(col)
    if expect == "ExpectColumnValuesToBeInSet":
        inside = pc.is_in(col, value_set=pa.array(list(kwargs["value_set"]), col.type))
        return pc.and_(pc.is_valid(col), pc.invert(inside))
    if expect == "ExpectColumnValuesToBeUnique":
        return _unique(col)
    if expect == "ExpectColumnValuesToMatchRegex":
        return _regex(col, kwargs["regex"])
    if expect == "ExpectColumnValuesToBeBetween":
        return _between(col, kwargs)
    raise ValueError(f"no rejected rows for {expect}: an expectation on the whole table (per: once)")


def unexpected_rows(frame: pa.Table, expect: str, kwargs: Mapping, message: Message) -> list[dict] | None:
    """The rows a message describes (None for `per: once`)."""
    if message.per == "once":
        return None
    if message.rows:
        mask = pc.fill_null(pc.equal(frame.column(message.rows["column"]), message.rows["equals"]), False)
    else:
        mask = unexpected_mask(frame, expect, kwargs)
    return frame.filter(mask).to_pylist()


# ------------------------------------------------------------------------------------ filling in

def field_value(spec: Mapping, rows: list[dict]):
    """One field of a group or of all rows: see the module docstring."""
    values = [r[spec["column"]] for r in rows] if "column" in spec else [spec["of"].format(**r) for r in rows]
    if spec.get("distinct") == "sorted":
        values = sorted(set(values))
    elif spec.get("distinct") == "first":
        values = list(dict.fromkeys(values))
    if spec.get("width"):
        values = [v[:spec["width"]] for v in values]
    if spec.get("reduce") == "count":
        return len(values)
    if spec.get("reduce") == "min":
        return min(values)
    limit = spec.get("limit")
    text = spec.get("sep", ", ").join(str(v) for v in (values[:limit] if limit else values))
    if limit and len(values) > limit and spec.get("more") == "ellipsis":
        text += " …"
    elif limit and len(values) > limit and spec.get("more") == "count":
        text += f" … (+{len(values) - limit})"
    return text


def _say(message: Message, values: Mapping) -> str:
    return bilingual(message.zh.format(**values), message.en.format(**values))


def placeholders(template: str) -> set[str]:
    """The names a str.format template fills (`{amount:.2f}` → amount)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in Formatter().parse(template) if name}


def _fields(message: Message, rows: list[dict]) -> dict:
    """`n` and the fields the templates name (a shared field other templates use is not computed)."""
    named = placeholders(message.zh) | placeholders(message.en)
    return {"n": len(rows), **{name: field_value(spec, rows) for name, spec in message.fields.items()
                               if name in named}}


def describe(message: Message, rows: list[dict] | None, params: Mapping) -> list[str]:
    """The plain-words messages for a failed expectation, from the rows it rejected."""
    if message.per == "once":
        return [_say(message, params)]
    if not rows:
        return []
    if message.per == "row":
        return [_say(message, {**params, **r}) for r in rows[:message.limit]]
    if message.per == "all":
        return [_say(message, {**params, **_fields(message, rows)})]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(k) for k in message.per), []).append(r)
    return [_say(message, {**params, **dict(zip(message.per, key)), **_fields(message, rs)})
            for key, rs in groups.items()]
