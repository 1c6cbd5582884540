"""The gate's report for whoever decides whether to publish: one HTML page that opens offline.

`gate_report` gathers from a suite run what the page says, `render` writes it (the template
`templates/gate_report.html.j2`): the verdict first in plain words (可以发布 / Safe to publish, or 不得发布 /
Do not publish: N checks failed), the run, the scope (institutions × months) and the counts, then each
failed check with its messages and the rows it rejected (the first `ROW_LIMIT`, then "and N more"), the
passed checks collapsed, and a relative link to the Great Expectations Data Docs beside it as the detail.
The page is self-contained: inline CSS, no script, no font, image or style fetched from anywhere.
The functions are pure: `gate.run_gate` writes the page (`gate.html` beside the Data Docs).
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.quality import gx as qgx

ROW_LIMIT = 20    # rows shown per failed check
CELL_WIDTH = 80   # characters shown per cell
LIST_LIMIT = 40   # institutions or months named in the scope


@dataclass(frozen=True)
class CheckReport:
    """One check of the run as the page shows it."""

    name: str
    description: str
    frame: str
    severity: str                   # failure | warning
    success: bool
    unexpected: int | None          # rows it rejected (None: a check on the whole frame that says no count)
    messages: tuple[str, ...]       # plain words, 中文 / English
    columns: tuple[str, ...]        # the columns of `rows`
    rows: tuple[tuple[str, ...], ...]  # the first rejected rows, as text
    more: int = 0                   # rejected rows not shown


@dataclass(frozen=True)
class GateReport:
    success: bool
    run_ids: tuple[str, ...]
    institutions: tuple[str, ...]
    periods: tuple[str, ...]
    scope_recorded: bool            # the scope is the one screening recorded (else: what the list holds)
    input_rows: int | None
    suspects: int
    amount: Decimal | None
    checks: tuple[CheckReport, ...]
    data_docs: str | None           # relative link to the Data Docs' index.html

    @property
    def failed(self) -> list[CheckReport]:
        return [c for c in self.checks if not c.success and c.severity == "failure"]

    @property
    def warned(self) -> list[CheckReport]:
        return [c for c in self.checks if not c.success and c.severity != "failure"]

    @property
    def passed(self) -> list[CheckReport]:
        return [c for c in self.checks if c.success]

    @property
    def verdict(self) -> tuple[str, str]:
        """The decision in plain words, Chinese and English."""
        if self.success:
            return "可以发布", "Safe to publish"
        n = len(self.failed)
        return (f"不得发布：{n} 项检查未通过",
                f"Do not publish: {n} check{'s' if n != 1 else ''} failed")


# ------------------------------------------------------------------------------------ gathering

def cell(value) -> str:
    """A value as a table cell: — for null, amounts with two decimals, long text cut."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.0f}" if value.is_integer() else f"{value:,.2f}"
    text = str(value)
    return text if len(text) <= CELL_WIDTH else text[:CELL_WIDTH - 1] + "…"


def check_report(outcome: qgx.CheckOutcome, limit: int = ROW_LIMIT) -> CheckReport:
    """A check's outcome with, when it failed, its messages and the first `limit` rows it rejected."""
    c = outcome.check
    description = getattr(c.expectation, "description", None) or type(c.expectation).__name__
    if outcome.success:
        return CheckReport(c.name, description, c.frame, c.severity, True, 0, (), (), ())
    messages = tuple(qgx.outcome_messages(outcome))
    rows = c.rows() if c.rows else None
    if rows is None:
        return CheckReport(c.name, description, c.frame, c.severity, False, outcome.unexpected_count,
                           messages, (), ())
    columns = c.columns or (tuple(rows[0]) if rows else ())
    shown = tuple(tuple(cell(r.get(k)) for k in columns) for r in rows[:limit])
    return CheckReport(c.name, description, c.frame, c.severity, False, len(rows), messages, columns, shown,
                       max(0, len(rows) - limit))


def _distinct(*columns: pa.ChunkedArray | None) -> tuple[str, ...]:
    values: set[str] = set()
    for col in columns:
        if col is not None:
            values |= {str(v) for v in col.drop_null().unique().to_pylist() if v != ""}
    return tuple(sorted(values))


def _column(t: pa.Table | None, name: str) -> pa.ChunkedArray | None:
    return t.column(name) if t is not None and name in t.column_names else None


def run_ids(suspects: pa.Table, scope: pa.Table | None) -> tuple[str, ...]:
    """The runs the gated list belongs to: the one its screening recorded, else those its rows name."""
    return _distinct(_column(scope, "run_id")) or _distinct(_column(suspects, "run_id"))


def _amount(suspects: pa.Table) -> Decimal | None:
    col = _column(suspects, "amount")
    if col is None or not suspects.num_rows:
        return None
    try:
        total = pc.sum(col).as_py()
    except (pa.ArrowNotImplementedError, pa.ArrowTypeError):  # a mistyped column: the gate says so
        return None
    return None if total is None else Decimal(str(total))


def gate_report(run: qgx.SuiteRun, suspects: pa.Table, scope: pa.Table | None, *,
                data_docs: str | None = "index.html", limit: int = ROW_LIMIT) -> GateReport:
    """What the page says about a gate run on `suspects` against `scope` (staging/scope; None when the
    screening recorded none: the institutions and months are then those of the list)."""
    recorded = scope is not None and scope.num_rows > 0
    source = scope if recorded else suspects
    input_rows = _column(scope, "input_rows") if recorded else None
    return GateReport(
        success=run.success, run_ids=run_ids(suspects, scope),
        institutions=_distinct(_column(source, "fixmedins_code")), periods=_distinct(_column(source, "period")),
        scope_recorded=recorded, input_rows=int(pc.sum(input_rows).as_py() or 0) if input_rows else None,
        suspects=suspects.num_rows, amount=_amount(suspects),
        checks=tuple(check_report(o, limit) for o in run.outcomes), data_docs=data_docs)


# ------------------------------------------------------------------------------------ writing

def capped(values: Sequence[str], limit: int = LIST_LIMIT) -> str:
    """`a, b, c … (+k)`: at most `limit` values named."""
    text = ", ".join(values[:limit])
    return text + (f" … (+{len(values) - limit})" if len(values) > limit else "")


@lru_cache(maxsize=1)
def _template():
    import jinja2
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
                             autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["capped"] = capped
    env.filters["money"] = lambda v: "—" if v is None else f"{v:,.2f}"
    return env.get_template("gate_report.html.j2")


def render(report: GateReport) -> str:
    """The page (see the module docstring)."""
    return _template().render(r=report)
