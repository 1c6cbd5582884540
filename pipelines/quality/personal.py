"""Personal data in a suspect list's text: identity numbers and the names of insured persons.

- **Identity numbers** (居民身份证号): 18 characters (6-digit area code of a known province, a birth date
  YYYYMMDD, 3 digits, and the ISO 7064 MOD 11-2 check character 0-9/X) or the older 15 digits (area code,
  YYMMDD, 3 digits), written plain or in groups separated by single spaces or hyphens
  (`110101 19900307 1234`, `110101-1990-0307-1234`). A candidate must not touch other digits; in a hash
  column (hexadecimal ids) it must not touch letters or digits either, so that a hash is never read as one.
- **Names** (`psn.psn_name`): silver keeps only the keyed hash of a name (contract.pii, ingestion's), so candidate
  strings of the list are hashed the same way and compared. Two kinds of candidate:
  `own`: every 2-4 character substring of each run of Chinese characters (spaces or a middle dot between
  them ignored): it counts only when it is the name of the row's own person (`psn_no`), the way a template
  that pastes the patient's name would leak it; `whole`: a whole value, each whitespace-separated token and
  each run of Chinese characters: it counts when it is the name of any insured person. (Any substring against
  every name would read ordinary words of the evidence as names: in a district every common two-character
  name exists.)
The functions are pure; `person_data` hashes and joins with DuckDB in memory.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Iterable

import duckdb
import pyarrow as pa

from pipelines.contract.pii import pii_hash_sql

#: province codes of the mainland, Hong Kong, Macao and Taiwan (the first two digits of an area code)
PROVINCES = frozenset({11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46,
                       50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83, 91})
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
#: columns holding hexadecimal hashes
HASH_COLUMNS = frozenset({"suspect_id", "run_id", "rule_set_fingerprint"})
#: digit groups joined by single spaces or hyphens (the last character may be X)
_GROUPS = re.compile(r"[0-9](?:[ \-\u3000]?[0-9])*(?:[ \-\u3000]?[Xx])?")
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RUN = re.compile(rf"[{_HAN}](?:[\s\u3000·•・]*[{_HAN}])*")
_NAME_GAPS = re.compile(r"[\s\u3000·•・]+")
_CANDIDATE_PREFILTER = re.compile(r"[0-9][0-9 \-\u3000]{13,}[0-9Xx]")


def _valid_date(y: int, m: int, d: int) -> bool:
    try:
        dt.date(y, m, d)
    except ValueError:
        return False
    return 1850 <= y <= 2100


def is_id18(s: str) -> bool:
    """An 18-character identity number: known province, a real birth date, the MOD 11-2 check character."""
    if len(s) != 18 or not s[:17].isdigit() or int(s[:2]) not in PROVINCES:
        return False
    if not _valid_date(int(s[6:10]), int(s[10:12]), int(s[12:14])):
        return False
    return CHECK[sum(int(c) * w for c, w in zip(s[:17], WEIGHTS)) % 11] == s[17].upper()


def is_id15(s: str) -> bool:
    """A 15-digit identity number (before 1999): known province and a real birth date 19YYMMDD."""
    return (len(s) == 15 and s.isdigit() and int(s[:2]) in PROVINCES
            and _valid_date(1900 + int(s[6:8]), int(s[8:10]), int(s[10:12])))


def _within(text: str, start: int, end: int, hashlike: bool) -> bool:
    """True when text[start:end] touches no other digit (no letter or digit either, in a hash)."""
    around = text[start - 1:start] + text[end:end + 1]
    return not any(c.isascii() and (c.isalnum() if hashlike else c.isdigit()) for c in around)


def id_numbers(text: str | None, hashlike: bool = False) -> list[str]:
    """The identity numbers written in `text` (plain, spaced or hyphenated), as plain characters."""
    if not text or not _CANDIDATE_PREFILTER.search(text):
        return []
    found = []
    for m in _GROUPS.finditer(text):
        if not _within(text, m.start(), m.end(), hashlike):
            continue
        groups = re.split(r"[ \-\u3000]", m.group())
        for i in range(len(groups)):  # every run of whole consecutive groups that spells 15 or 18 characters
            joined = ""
            for g in groups[i:]:
                joined += g
                if len(joined) > 18:
                    break
                if (len(joined) == 18 and is_id18(joined)) or (len(joined) == 15 and is_id15(joined)):
                    found.append(joined.upper())
    return found


def masked(number: str) -> str:
    """An identity number as a message may show it: `110…34` (never the whole number)."""
    return f"{number[:3]}…{number[-2:]}"


def name_candidates(text: str | None) -> tuple[set[str], set[str]]:
    """(own, whole) candidate names of `text` (module docstring)."""
    if not text:
        return set(), set()
    own: set[str] = set()
    whole = {t for t in (text.strip(), *text.split()) if len(t) >= 2}
    for m in _HAN_RUN.finditer(text):
        run = _NAME_GAPS.sub("", m.group())
        if len(run) >= 2:
            whole.add(run)
        for n in (2, 3, 4):
            own.update(run[i:i + n] for i in range(len(run) - n + 1))
    return own, whole


# ------------------------------------------------------------------------------------ the frame

PERSON_DATA_SCHEMA = pa.schema([("_row", pa.int64()), ("id_number_in", pa.string()),
                                ("id_number_example", pa.string()), ("name_in", pa.string())])


def text_columns(suspects: pa.Table) -> list[str]:
    """Every column of the list that holds text (the contract's and any other)."""
    return [f.name for f in suspects.schema
            if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]


def _ids_by_row(suspects: pa.Table, columns: Iterable[str]) -> dict[int, tuple[list[str], str]]:
    out: dict[int, tuple[list[str], str]] = {}
    for col in columns:
        for i, v in enumerate(suspects.column(col).to_pylist()):
            found = id_numbers(v, hashlike=col in HASH_COLUMNS)
            if found:
                cols, example = out.get(i, ([], masked(found[0])))
                out[i] = (cols + [col], example)
    return out


def _candidates(suspects: pa.Table, columns: Iterable[str]) -> pa.Table:
    psn = suspects.column("psn_no").to_pylist() if "psn_no" in suspects.column_names else [None] * suspects.num_rows
    rows, cols, cands, owns = [], [], [], []
    for col in columns:
        if col in HASH_COLUMNS:
            continue
        for i, v in enumerate(suspects.column(col).to_pylist()):
            own, whole = name_candidates(v)
            for c in whole:
                rows.append(i), cols.append(col), cands.append(c), owns.append(None)
            for c in own - whole if psn[i] is not None else ():
                rows.append(i), cols.append(col), cands.append(c), owns.append(psn[i])
    return pa.table({"_row": pa.array(rows, pa.int64()), "col": pa.array(cols, pa.string()),
                     "cand": pa.array(cands, pa.string()), "own_psn": pa.array(owns, pa.string())})


NAMES_SQL = """
WITH c AS (SELECT _row, col, own_psn, {hash} AS h FROM cands),
hits AS (
    SELECT c._row, c.col FROM c SEMI JOIN persons p ON p.psn_name_hash = c.h WHERE c.own_psn IS NULL
    UNION
    SELECT c._row, c.col FROM c JOIN persons p ON p.psn_no = c.own_psn AND p.psn_name_hash = c.h)
SELECT _row, string_agg(DISTINCT col, ', ' ORDER BY col) AS name_in FROM hits GROUP BY _row
"""


def _names_by_row(suspects: pa.Table, columns: list[str], persons, key: str) -> dict[int, str]:
    cands = _candidates(suspects, columns)
    if cands.num_rows == 0:
        return {}
    con = duckdb.connect()
    try:
        con.register("cands", cands)
        con.register("persons_src", persons)
        con.execute("CREATE TEMP VIEW persons AS SELECT psn_no, psn_name_hash FROM persons_src "
                    "WHERE psn_name_hash IS NOT NULL")
        return {r: cols for r, cols in con.execute(NAMES_SQL.format(hash=pii_hash_sql(key, 'cand'))).fetchall()}
    finally:
        con.close()


def person_data(suspects: pa.Table, persons, key: str) -> pa.Table:
    """One row per suspect that carries personal data: its row number (from 1, as the suspects frame counts),
    the columns with an identity number and a masked example, the columns with a person's name. `persons`:
    a table or dataset with psn_no and psn_name_hash."""
    columns = text_columns(suspects)
    ids = _ids_by_row(suspects, columns)
    names = _names_by_row(suspects, columns, persons, key)
    rows = [{"_row": i + 1, "id_number_in": ", ".join(ids[i][0]) if i in ids else None,
             "id_number_example": ids[i][1] if i in ids else None, "name_in": names.get(i)}
            for i in sorted(set(ids) | set(names))]
    return pa.Table.from_pylist(rows, schema=PERSON_DATA_SCHEMA)
