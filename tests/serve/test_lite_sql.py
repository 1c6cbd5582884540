"""The rule library's DuckDB SQL on SQLite: each rewrite keeps DuckDB's meaning where SQLite's own reading of
the same text differs (pipelines.serve.lite_sql)."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlglot

from pipelines.serve.lite_sql import connect, iso, to_sqlite


def one(sql: str, **kw):
    return connect().execute(to_sqlite(sql, **kw)).fetchall()


def test_a_computed_decimal_is_compared_as_the_decimal_it_stands_for():
    """23 × 1.2 is 27.599999999999998 in binary floating point: SQLite's own comparison flags a price of 27.6
    as above a markup cap it equals; the translation does not, and still flags one a cent above."""
    plain = sqlglot.transpile("SELECT 1 WHERE 27.6 > 23 * 1.2", read="duckdb", write="sqlite")[0]
    assert connect().execute(plain).fetchall() == [(1,)]
    assert one("SELECT 1 WHERE 27.6 > 23 * 1.2") == []
    assert one("SELECT 1 WHERE 27.61 > 23 * 1.2") == [(1,)]
    assert one("SELECT 1 FROM (SELECT sum(a) AS s FROM (SELECT 0.1 AS a UNION ALL SELECT 0.2) t) u WHERE s = 0.3") \
        == [(1,)]
    assert one("SELECT sum(a) FILTER (WHERE a > 0) OVER () FROM (SELECT 0.1 AS a UNION ALL SELECT 0.2) t") \
        == [(0.3,), (0.3,)]


def test_division_is_numeric_as_in_duckdb():
    assert one("SELECT 7 / 2") == [(3.5,)]


def test_amounts_print_with_their_scale_rounded_half_away_from_zero():
    assert one("SELECT CAST(CAST(2.675 AS DECIMAL(18,2)) AS VARCHAR), CAST(CAST(1 AS DECIMAL(18,2)) AS VARCHAR), "
               "CAST(CAST(-0.125 AS DECIMAL(20,4)) AS VARCHAR)") == [("2.68", "1.00", "-0.1250")]


def test_days_added_to_a_date_give_a_time_as_in_duckdb():
    assert one("SELECT CAST('2024-01-31' AS DATE) + INTERVAL (3) DAY") == [("2024-02-03 00:00:00",)]


@pytest.mark.parametrize("text, want", [("12.5", 12.5), (" 3 ", 3.0), ("abc", None), ("", None), ("nan", None)])
def test_a_failed_try_cast_is_null_not_zero(text, want):
    assert one(f"SELECT TRY_CAST('{text}' AS DOUBLE)", typing=True) == [(want,)]


def test_a_split_list_becomes_rows():
    rows = one("SELECT unnest(string_split_regex('J45;E11', '[;,]')) AS code")
    assert sorted(rows) == [("E11",), ("J45",)]


def test_a_sorted_distinct_list_is_joined():
    sql = ("SELECT array_to_string(list_sort(list(DISTINCT x)), ',') FROM "
           "(SELECT 'b' AS x UNION ALL SELECT 'a' UNION ALL SELECT 'b') t")
    assert one(sql) == [("a,b",)]


def test_times_are_held_as_iso_text_in_time_order():
    times = [dt.datetime(1, 1, 1), dt.datetime(2024, 1, 2, 3, 4, 5), dt.datetime(2024, 1, 2, 3, 4, 5, 6),
             dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)]
    assert [iso(t) for t in times] == ["0001-01-01 00:00:00", "2024-01-02 03:04:05", "2024-01-02 03:04:05.000006",
                                       "2024-01-02 03:04:05"]
    assert sorted(iso(t) for t in times[:3]) == [iso(t) for t in sorted(times[:3])]
    assert iso(dt.date(2024, 3, 1)) == "2024-03-01" and iso(None) is None
