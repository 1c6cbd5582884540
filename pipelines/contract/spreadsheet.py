"""What every spreadsheet FundGuard writes promises (contract §5 outputs: the export package's csv and xlsx,
the workflow's worksheets and lists): a cell never becomes a formula, and an identifier stays text.

- `neutralise(value)`: CSV/formula injection (OWASP): text whose first character is `= + - @` (or their
  full-width forms), a tab, CR or LF — also after leading spaces — gets a single quote in front, so a
  spreadsheet shows it as text. Only text is touched: a number (an amount), a date, None come back as they
  are. One function, here, because two stages (export, workflow) write spreadsheets and a stage may not
  import another.
- `IDENTIFIER_COLUMNS`: the columns holding codes and numbers that are names, not quantities (16-digit
  person numbers, item codes with leading zeros, hex ids, periods): written as xlsx text cells
  (`number_format` `@`), never as numbers.
- `put_cell(ws, row, column, value, text=...)`: one openpyxl cell written by those two rules (this module
  imports no spreadsheet library; the caller passes the worksheet).
"""
from __future__ import annotations

import re

#: a text cell beginning with one of these is read as a formula by Excel, LibreOffice or Google Sheets
FORMULA_STARTS = frozenset("=+-@＝＋－＠")
#: control characters that start a formula-looking cell on their own (OWASP: tab, carriage return)
CONTROL_STARTS = frozenset("\t\r\n")
QUOTE = "'"

#: codes and numbers that name something: text in every spreadsheet, whatever their digits look like
IDENTIFIER_COLUMNS = frozenset({
    "suspect_id", "rule_id", "fixmedins_code", "period", "psn_no", "mdtrt_id", "setl_id", "feedetl_sn",
    "hilist_code", "run_id", "rule_set_fingerprint",
})
TEXT_FORMAT = "@"

#: characters an xlsx cannot hold (XML 1.0); a cell carrying one would make the whole workbook unwritable
_NOT_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def neutralise(value):
    """`value` with a leading `'` when it is text a spreadsheet would run as a formula; anything else as is."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in CONTROL_STARTS or value.lstrip(" \u3000")[:1] in FORMULA_STARTS:
        return QUOTE + value
    return value


def put_cell(ws, row: int, column: int, value, *, text: bool = False):
    """Write one cell of an openpyxl worksheet: text neutralised and stored as a string (data type `s`,
    never `f`); `text=True` (an identifier) also turns a non-text value into text and formats the cell `@`,
    so Excel keeps 3301030000000001 and 00123 as written. Numbers and dates stay numbers and dates."""
    if text and value is not None and not isinstance(value, str):
        value = str(value)
    if isinstance(value, str):
        value = neutralise(_NOT_XML.sub("\ufffd", value))
    cell = ws.cell(row=row, column=column, value=value)
    if isinstance(value, str):
        cell.data_type = "s"
    if text:
        cell.number_format = TEXT_FORMAT
    return cell
