"""Landing values as the strings a clerk would have typed (bronze keeps every field as text)."""
from __future__ import annotations

import datetime as dt
import decimal
import json

import pyarrow as pa
import pyarrow.compute as pc


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
    if pa.types.is_floating(t):
        return _floats_to_str(arr)
    try:
        return pc.cast(arr, pa.string())
    except pa.ArrowNotImplementedError:
        return pa.array([cell_to_str(v) for v in arr.to_pylist()], pa.string())


def _floats_to_str(arr) -> pa.Array:
    """Floats as a clerk typed them: a whole number without a fraction or exponent (pandas writes a code column
    with nulls, e.g. init_feedetl_sn, as float64: 100000044948.0 is `100000044948`, not Arrow's
    `1.00000044948e+11`), NaN as null, any other value as Arrow's shortest text (`0.5`) (= cell_to_str)."""
    arr = pc.cast(arr, pa.float64())
    nan = pc.fill_null(pc.is_nan(arr), False)
    whole = pc.and_(pc.equal(pc.floor(arr), arr), pc.less(pc.abs(arr), 2.0 ** 53))
    whole = pc.and_(pc.fill_null(whole, False), pc.invert(nan))
    ints = pc.cast(pc.cast(pc.if_else(whole, arr, 0.0), pa.int64()), pa.string())
    text = pc.if_else(whole, ints, pc.cast(arr, pa.string()))
    return pc.if_else(nan, pa.scalar(None, pa.string()), text)
