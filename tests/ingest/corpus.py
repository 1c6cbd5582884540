"""A corpus of bad (and tricky) landing input, generated, never stored: each kind is a drop of one or two fee
files built from four known rows (F0..F3, amounts 10.00..40.00) with one thing done to them, and what must
come of it: refused naming the file, or loaded with exactly the amounts that survive and the number of
rows quarantined. `test_ingest_corpus.py` loads each and checks it against the independent count."""
from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, field
from typing import Callable

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

from . import drops

AMOUNTS = {"F0": "10.00", "F1": "20.00", "F2": "30.00", "F3": "40.00"}
AMT = drops.FEE_HEAD.index("det_item_fee_sumamt")


@dataclass
class Kind:
    name: str
    files: dict[str, bytes]
    refuse: str | None = None                                # a pattern the refusal names
    amounts: dict[str, str] = field(default_factory=dict)    # feedetl_sn -> amount in silver
    quarantined: int = 0


def rows(mut: Callable[[list[list[str]]], None] | None = None) -> list[list[str]]:
    out = [list(drops.FEE_HEAD)]
    for sn, amt in AMOUNTS.items():
        r = list(drops.FEE_LIST[1])
        r[0], r[AMT] = sn, amt
        r[drops.FEE_HEAD.index("inscp_scp_amt")] = ""
        out.append(r)
    if mut:
        mut(out)
    return out


def text(rs: list[list[str]], delimiter: str = ",", eol: str = "\n") -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter, lineterminator=eol).writerows(rs)
    return buf.getvalue()


def plain(rs=None, **kw) -> bytes:
    return text(rs or rows(), **kw).encode("utf-8")


def _set(sn: str, col: str, value: str):
    def mut(rs):
        i = drops.FEE_HEAD.index(col)
        next(r for r in rs if r[0] == sn)[i] = value
    return mut


def _without(*sns):
    return {k: v for k, v in AMOUNTS.items() if k not in sns}


def _xlsx(sheets: dict[str, list[list]]) -> bytes:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for t, rs in sheets.items():
        ws = wb.create_sheet(t)
        for r in rs:
            ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _jsonl(objs: list) -> bytes:
    return "\n".join(o if isinstance(o, str) else json.dumps(o, ensure_ascii=False) for o in objs).encode() + b"\n"


def _dicts(rs):
    return [dict(zip(rs[0], r)) for r in rs[1:]]


def _refused() -> list[Kind]:
    body = plain()
    lines = body.decode().splitlines(keepends=True)
    r = []
    k = lambda name, files, pat: r.append(Kind(name, files, refuse=pat))  # noqa: E731
    k("unterminated_quote_mid_file", {"fee_list.csv": "".join(lines[:2] + ['F9,"oops' + lines[2][2:]] + lines[3:]).encode()},
      r"line 3: a quoted field")
    k("unterminated_quote_last_line", {"fee_list.csv": body + b'F9,"never closed\n'}, r"line 6: a quoted field")
    k("text_after_closing_quote", {"fee_list.csv": body + b'F9,"M1"x,S1\n'}, r"fee_list.csv: line 6")
    k("utf16", {"fee_list.csv": text(rows()).encode("utf-16")}, "UTF-16")
    k("nul_bytes", {"fee_list.csv": body[:50] + b"\x00\x00" + body[50:]}, "NUL")
    k("blank_file", {"fee_list.csv": b"\r\n\n"}, "no header")        # (a 0-byte file is skipped: test_ingest_census)
    k("undecodable_bytes", {"fee_list.csv": body + b"F9,\xff\xfe\xff\n"}, "cannot be decoded")
    k("required_column_missing", {"fee_list.csv": plain([r[1:] for r in rows()])}, "feedetl_sn")
    k("unknown_entity", {"claims.csv": body}, "unknown entity")
    k("unknown_extension", {"fee_list.txt": body}, "unknown format")
    k("corrupt_gzip", {"fee_list.csv.gz": b"\x1f\x8b\x08\x00garbage"}, "fee_list.csv.gz")
    k("truncated_gzip", {"fee_list.csv.gz": gzip.compress(body * 50)[:-40]}, "fee_list.csv.gz")
    k("corrupt_parquet", {"fee_list.parquet": b"PAR1 not really PAR1"}, "parquet")
    k("corrupt_xlsx", {"fee_list.xlsx": b"PK\x03\x04 broken zip"}, "xlsx")
    k("xlsx_sheets_disagree", {"fee_list.xlsx": _xlsx({"a": rows(), "b": [["feedetl_sn", "cnt"], ["F9", "1"]]})},
      "sheet 'b'")
    k("manifest_unknown_decimal", {"fee_list.csv": body, "manifest.yml": b'decimal: ";"\n'}, "manifest.yml")
    k("manifest_unknown_key", {"fee_list.csv": body, "manifest.yml": b"encoding: latin1\n"}, "manifest.yml")
    k("one_bad_file_refuses_the_drop", {"fee_list.csv": body, "fee_list_part2.csv": body[:60] + b'"\n'},
      "fee_list_part2.csv")
    return r


def _quarantined() -> list[Kind]:
    r = []

    def q(name, mut, *sns, manifest=None, n=None):
        files = {"fee_list.csv": plain(rows(mut))}
        if manifest:
            files["manifest.yml"] = manifest
        r.append(Kind(name, files, amounts=_without(*sns), quarantined=n if n is not None else len(sns)))
    q("decimal_comma", _set("F1", "det_item_fee_sumamt", "20,50"), "F1")
    q("mixed_separators", _set("F1", "det_item_fee_sumamt", "1.234,50"), "F1")
    q("groups_not_of_three", _set("F1", "det_item_fee_sumamt", "1,23"), "F1")
    q("money_three_decimals", _set("F1", "det_item_fee_sumamt", "20.005"), "F1")
    q("price_seven_decimals", _set("F1", "pric", "1.1234567"), "F1")
    q("count_five_decimals", _set("F1", "cnt", "1.00001"), "F1")
    q("exponent", _set("F1", "det_item_fee_sumamt", "2e1"), "F1")
    q("not_a_number", _set("F1", "det_item_fee_sumamt", "twenty"), "F1")
    q("negative_sign_after", _set("F1", "det_item_fee_sumamt", "20.00-"), "F1")
    q("currency_symbol", _set("F1", "det_item_fee_sumamt", "¥20.00"), "F1")
    q("fullwidth_digits", _set("F1", "det_item_fee_sumamt", "２０.00"), "F1")
    q("required_empty", _set("F1", "mdtrt_id", ""), "F1")
    q("required_spaces_only", _set("F1", "mdtrt_id", "   "), "F1")
    q("impossible_date", _set("F1", "fee_ocur_time", "2022-13-45 10:00:00"), "F1")
    q("unknown_code", _set("F1", "med_chrgitm_type", "99"), "F1")
    q("truncated_row", lambda rs: rs.__setitem__(2, rs[2][:5]), "F1")
    q("extra_field", lambda rs: rs[2].append("surplus"), "F1")
    q("key_conflict_in_drop", lambda rs: rs.append(rs[2][:AMT] + ["99.00"] + rs[2][AMT + 1:]), "F1", n=2)
    q("point_value_in_comma_drop", None, "F0", "F1", "F2", "F3", manifest=b'decimal: ","\n')
    q("row_of_spaced_delimiters", lambda rs: rs.insert(3, [" "] * len(drops.FEE_HEAD)), n=1)
    # xlsx / jsonl / parquet
    rs = rows()
    rs[2][AMT] = "=L3*M3"
    r.append(Kind("xlsx_formula_without_value", {"fee_list.xlsx": _xlsx({"s": rs})}, amounts=_without("F1"),
                  quarantined=1))
    objs = _dicts(rows())
    r.append(Kind("jsonl_invalid_json", {"fee_list.jsonl": _jsonl(objs[:2] + ['{"feedetl_sn": "F9", oops'] + objs[2:])},
                  amounts=dict(AMOUNTS), quarantined=1))
    r.append(Kind("jsonl_not_an_object", {"fee_list.jsonl": _jsonl(objs + ["[1, 2, 3]", '"text"'])},
                  amounts=dict(AMOUNTS), quarantined=2))
    t = pa.Table.from_pylist(_dicts(rows()) + [{h: None for h in drops.FEE_HEAD}])
    r.append(Kind("parquet_all_null_row", {"fee_list.parquet": _parquet(t)}, amounts=dict(AMOUNTS), quarantined=1))
    t = pa.Table.from_pylist(_dicts(rows())).set_column(AMT, "det_item_fee_sumamt",
                                                        pa.array([10.0, 20.0, 30.0, 40.0 / 3]))
    r.append(Kind("parquet_float_with_more_decimals", {"fee_list.parquet": _parquet(t)}, amounts=_without("F3"),
                  quarantined=1))
    return r


def _exact() -> list[Kind]:
    r = []
    body = plain()

    def ok(name, files, amounts=None, quarantined=0):
        r.append(Kind(name, files, amounts=dict(AMOUNTS if amounts is None else amounts), quarantined=quarantined))
    ok("header_only", {"fee_list.csv": plain(rows()[:1])}, {})
    ok("crlf", {"fee_list.csv": plain(eol="\r\n")})
    ok("lone_cr", {"fee_list.csv": plain(eol="\r")})
    ok("utf8_bom", {"fee_list.csv": b"\xef\xbb\xbf" + body})
    ok("gb18030", {"fee_list.csv": text(rows()).encode("gb18030")})
    ok("gzip", {"fee_list.csv.gz": gzip.compress(body)})
    ok("tsv", {"fee_list.tsv": plain(delimiter="\t")})
    ok("quoted_newline", {"fee_list.csv": plain(rows(_set("F1", "hilist_name", "二甲双胍\n片")))})
    ok("quoted_delimiter", {"fee_list.csv": plain(rows(_set("F1", "hilist_name", "片,盒")))})
    ok("doubled_quotes", {"fee_list.csv": plain(rows(_set("F1", "hilist_name", 'say "片"')))})
    ok("blank_lines_between", {"fee_list.csv": body.replace(b"\nF2", b"\n\n\nF2")})
    ok("trailing_blank_lines", {"fee_list.csv": body + b"\n\n\n"})
    ok("no_final_newline", {"fee_list.csv": body.rstrip(b"\n")})
    ok("line_of_delimiters", {"fee_list.csv": body.replace(b"\nF2", b"\n" + b"," * 20 + b"\nF2")})
    ok("thousands_separator", {"fee_list.csv": plain(rows(_set("F1", "det_item_fee_sumamt", "1,020.00")))},
       {**AMOUNTS, "F1": "1020.00"})
    ok("trailing_zeros", {"fee_list.csv": plain(rows(_set("F1", "det_item_fee_sumamt", "20.0000")))})
    ok("spaces_around_amount", {"fee_list.csv": plain(rows(_set("F1", "det_item_fee_sumamt", " 20.00 ")))})
    ok("identical_duplicate_row", {"fee_list.csv": plain(rows(lambda rs: rs.append(list(rs[2]))))})
    ok("comma_locale_declared", {"fee_list.csv": plain(rows(lambda rs: [r.__setitem__(AMT, r[AMT].replace(".", ","))
                                                                      for r in rs[1:]])), "manifest.yml": b'decimal: ","\n'})
    ok("chinese_headers", {"fee_list.csv": plain(rows(lambda rs: rs.__setitem__(0, [
        "费用明细流水号", *rs[0][1:]])))})
    ok("upper_case_headers", {"fee_list.csv": plain(rows(lambda rs: rs.__setitem__(0, [h.upper() for h in rs[0]])))})
    ok("unknown_extra_column", {"fee_list.csv": plain(rows(lambda rs: [x.append("v") for x in rs]))})
    ok("very_long_field", {"fee_list.csv": plain(rows(_set("F1", "hilist_name", "长" * 100_000)))})
    ok("split_in_parts", {"fee_list_part1.csv": plain(rows()[:3]), "fee_list_part2.csv": plain(rows()[:1] + rows()[3:])})
    ok("subfolder", {"2022-03/fee_list.csv": body})
    ok("hidden_and_lock_files", {"fee_list.csv": body, ".~lock.fee_list.csv#": b"x", "~$fee_list.xlsx": b"x",
                                 ".DS_Store": b"x"})
    rs = rows()
    ok("xlsx_two_sheets_and_notes", {"fee_list.xlsx": _xlsx({"a": rs[:3], "notes": [["备注"], ["x"]],
                                                            "b": [rs[0]] + rs[3:]})})
    ok("jsonl_numbers", {"fee_list.jsonl": _jsonl([{**d, "cnt": 4, "det_item_fee_sumamt": float(d["det_item_fee_sumamt"])}
                                                   for d in _dicts(rows())])})
    ok("jsonl_blank_lines", {"fee_list.jsonl": _jsonl(_dicts(rows())).replace(b"\n", b"\n\n")})
    ok("parquet_strings", {"fee_list.parquet": _parquet(pa.Table.from_pylist(_dicts(rows())))})
    return r


def kinds() -> list[Kind]:
    return _refused() + _quarantined() + _exact()
