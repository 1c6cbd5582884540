"""Values and names written into SQL text: a literal for a delta-rs predicate or a DuckDB query, a quoted
identifier. (Spark SQL escapes quotes differently: `pipelines.screen.sql.spark_literal`.)"""
from __future__ import annotations


def sql_literal(value) -> str:
    """A value as a SQL literal for a delta-rs predicate."""
    if value is None:
        return "NULL"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A column or table name quoted for SQL."""
    return '"' + name.replace('"', '""') + '"'
