"""The independent count: every record of every file is loaded or quarantined, or the load is refused saying
where the readings part; every file under the landing folder is loaded, skipped (listed) or refused."""
from __future__ import annotations

import gzip
import io
import os

import numpy as np
import openpyxl
import pytest

from pipelines.ingest import census, readers
from pipelines.ingest.inspection import SHEET_LINES, IngestError

from . import drops


def _fee_rows(n: int) -> list[list[str]]:
    rows = [drops.FEE_HEAD]
    for i in range(n):
        r = list(drops.FEE_LIST[1])
        r[0] = f"F{i}"
        rows.append(r)
    return rows


def test_unterminated_quote_refuses_the_file_at_its_line(tmp_path, load, lake):
    lines = [",".join(r) for r in _fee_rows(3980)]
    lines[100] = lines[100].replace("床位费", '"床位费')          # line 101 opens a quote never closed
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "fee_list.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(IngestError, match=r"fee_list.csv: line 101: a quoted field .* never closed"):
        load(tmp_path / "d")
    assert not lake.exists("bronze/fee_list") and not lake.exists("silver/fee_list")


@pytest.mark.parametrize("text,records", [
    ("a,b\n1,2\n\n3,4\n,\n  \n5,\"x\ny\"\n6,7", 4),      # blank lines, a line of delimiters, a quoted newline
    ("a,b\r\n1,2\r\n\r\n3,4\r\n", 2),                    # CRLF with a blank line
    ("a,b\r1,2\r3,4\r", 2),                              # lone CRs
    ("a,b\n1,\"x,\"\"q\"\"\"\n", 1),                     # quoted delimiter and doubled quotes
])
def test_csv_records_counts_records_not_lines(text, records):
    assert census.csv_records(io.BytesIO(text.encode()), "utf-8", ",", "f") == records


def test_csv_records_carries_a_record_across_chunks(monkeypatch):
    monkeypatch.setattr(census, "CHUNK_BYTES", 7)
    text = 'a,b\n1,"long\nvalue over\nthree lines"\n2,3\n\n4,5\n'
    assert census.csv_records(io.BytesIO(text.encode("gb18030")), "gb18030", ",", "f") == 3


@pytest.mark.parametrize("chunk", [5, 9, 1 << 20])
@pytest.mark.parametrize("eol, encoding", [("\n", "utf-8"), ("\r\n", "utf-8"), ("\r\n", "gb18030")])
def test_line_map_names_the_line_where_each_record_starts(monkeypatch, chunk, eol, encoding):
    """Record numbers (header 1, blank records counted, as pyarrow numbers them) to physical lines, whether
    the record spanning lines ends a chunk, starts one or lies inside one."""
    monkeypatch.setattr(census, "CHUNK_BYTES", chunk)
    text = eol.join(['a,b',            # record 1, line 1
                     '1,"x',           # record 2, lines 2-3
                     'y"',
                     '2,3',            # record 3, line 4
                     '',               # record 4, line 5: blank
                     '4,"三',          # record 5, lines 6-8
                     '',
                     '行"',
                     '5,6',            # record 6, line 9
                     '7,8']) + eol     # record 7, line 10
    lines = census.LineMap()
    assert census.csv_records(io.BytesIO(text.encode(encoding)), encoding, ",", "f", lines) == 5
    assert lines.spanning
    assert [lines.line(r) for r in range(1, 8)] == [1, 2, 4, 5, 6, 9, 10]
    assert lines.lines(np.arange(1, 8, dtype=np.int64)).tolist() == [1, 2, 4, 5, 6, 9, 10]


def test_one_line_records_need_no_line_map():
    """A file without a record spanning lines (the usual one) holds nothing: its records are its lines."""
    lines = census.LineMap()
    census.csv_records(io.BytesIO(b'a,b\n1,"x,y"\n\n2,3\n'), "utf-8", ",", "f", lines)
    assert not lines.spanning and lines.line(4) == 4


def test_text_after_a_closing_quote_is_refused():
    with pytest.raises(census.CensusError, match="line 3"):
        census.csv_records(io.BytesIO(b'a,b\n1,2\n3,"x"y\n'), "utf-8", ",", "f")


def _lose_line(monkeypatch, lost: int) -> None:
    """A batched CSV reader with a bug: the row of line `lost` never comes out."""
    real = readers._read_csv

    def lossy(info, batch_rows):
        for rb in real(info, batch_rows):
            yield readers.RawBatch(rb.table.filter([line != lost for line in rb.table.column("_line").to_pylist()]),
                                   rb.invalid)
    monkeypatch.setattr(readers, "_read_csv", lossy)


def test_a_reader_that_drops_a_row_is_caught_at_the_line(tmp_path, load, lake, monkeypatch):
    """A loader bug that silently loses a record cannot pass: the independent count refuses the load."""
    drops.write_csv(tmp_path / "d" / "fee_list.csv", _fee_rows(10))
    _lose_line(monkeypatch, 5)
    from pipelines.ingest import fastpath
    monkeypatch.setattr(fastpath, "stage_fast", lambda *a: False)
    with pytest.raises(IngestError, match=r"read 9 records .* finds 10; the readings part at line 5"):
        load(tmp_path / "d")
    assert not lake.exists("bronze/fee_list") and not lake.exists("silver/fee_list")


def test_the_readings_part_at_a_physical_line(tmp_path, load, lake, monkeypatch):
    """After a record spanning lines, the refusal names the line where the lost record starts."""
    rows = _fee_rows(10)
    rows[2][7] = "二甲双胍\n片"                     # record 3 spans lines 3-4: record 5 starts on line 6
    drops.write_csv(tmp_path / "d" / "fee_list.csv", rows)
    _lose_line(monkeypatch, 6)
    with pytest.raises(IngestError, match=r"read 9 records .* finds 10; the readings part at line 6"):
        load(tmp_path / "d")


def _xlsx(path, sheets: dict[str, list[list]]):
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    wb.save(path)


def test_every_sheet_carrying_the_entity_is_read(tmp_path, load, lake):
    (tmp_path / "d").mkdir()
    rows = _fee_rows(5)
    _xlsx(tmp_path / "d" / "fee_list.xlsx", {"一月": rows[:3], "说明": [["备注"], ["说明文字"]],
                                             "二月": [rows[0]] + rows[3:]})
    rep = load(tmp_path / "d")
    fr = rep.file("fee_list.xlsx")
    assert (fr.rows_read, fr.rows_loaded) == (5, 5)
    assert "说明" in fr.note and "not read" in fr.note
    lines = sorted(lake.read("bronze/fee_list", columns=["_line"]).column("_line").to_pylist())
    assert lines == [2, 3, 2 * SHEET_LINES + 2, 2 * SHEET_LINES + 3, 2 * SHEET_LINES + 4]


def test_sheets_that_disagree_refuse_the_file(tmp_path, load):
    (tmp_path / "d").mkdir()
    rows = _fee_rows(2)
    _xlsx(tmp_path / "d" / "fee_list.xlsx", {"a": rows, "b": [["feedetl_sn", "cnt"], ["F9", "1"]]})
    with pytest.raises(IngestError, match=r"fee_list.xlsx sheet 'b': required column\(s\) missing"):
        load(tmp_path / "d")


def test_formula_without_cached_value_is_quarantined_not_null(tmp_path, load, lake):
    (tmp_path / "d").mkdir()
    rows = _fee_rows(2)
    rows[2][13] = "=L3*M3"                # openpyxl writes a formula and no cached value
    _xlsx(tmp_path / "d" / "fee_list.xlsx", {"s": rows})
    rep = load(tmp_path / "d")
    fr = rep.file("fee_list.xlsx")
    assert (fr.rows_loaded, fr.rows_quarantined) == (1, 1)
    q = lake.read("quarantine").to_pylist()
    assert q[0]["line"] == 3 and q[0]["field"] == "det_item_fee_sumamt" and "formula" in q[0]["reason"]


def test_subfolders_hidden_and_temporary_files(tmp_path, load, lake):
    d = tmp_path / "d"
    drops.write_csv(d / "2022-03" / "fee_list.csv", _fee_rows(3))
    drops.write_csv(d / "psn.csv", drops.PSN)
    for junk in (".~lock.psn.csv#", "~$fee_list.xlsx", ".DS_Store", "psn.csv.tmp"):
        (d / junk).write_text("junk")
    (d / ".hidden").mkdir()
    drops.write_csv(d / ".hidden" / "fee_list.csv", _fee_rows(1))
    (d / "fee_list_part3.csv").write_bytes(b"")         # an export of no rows: nothing to lose, not a refusal
    rep = load(d)
    by = {f.file: f for f in rep.files}
    assert by["2022-03/fee_list.csv"].rows_loaded == 3 and by["2022-03/fee_list.csv"].status == "loaded"
    skipped = {n for n, f in by.items() if f.status == "skipped"}
    assert skipped == {".~lock.psn.csv#", "~$fee_list.xlsx", ".DS_Store", "psn.csv.tmp", ".hidden/",
                       "fee_list_part3.csv"}
    assert set(lake.read("bronze/fee_list", columns=["_file"]).column("_file").to_pylist()) == {"2022-03/fee_list.csv"}
    assert "~$fee_list.xlsx" in rep.to_text()


def test_symlink_outside_the_landing_folder_is_refused_unread(tmp_path, load, lake):
    secret = tmp_path / "secret.csv"
    secret.write_text("fixmedins_code,fixmedins_name,hosp_lv\nTOPSECRET,x,01\n")
    d = tmp_path / "d"
    drops.write_csv(d / "psn.csv", drops.PSN)
    os.symlink(secret, d / "fixmedins.csv")
    os.symlink(tmp_path, d / "sub")
    with pytest.raises(IngestError) as exc:
        load(d)
    msg = str(exc.value)
    assert "fixmedins.csv: a link to a file outside the landing folder" in msg
    assert "sub: a link to a folder outside" in msg
    assert "TOPSECRET" not in msg and str(secret) not in msg
    assert not lake.exists("bronze/psn")


def test_gzip_and_gb18030_counts(tmp_path):
    p = tmp_path / "fee_list.csv.gz"
    body = "\n".join(",".join(r) for r in _fee_rows(4)) + "\n"
    with gzip.open(p, "wb") as f:
        f.write(body.encode("gb18030"))
    assert census.count_file(p, "csv.gz", "gb18030", p.name).records == 4


def test_census_streams_a_large_file_fast(tmp_path):
    """The count streams: 200,000 lines in well under a second or two (benchmarks: 1 M lines 0.25 s)."""
    import time
    p = tmp_path / "fee_list.csv"
    line = ",".join(drops.FEE_LIST[1]) + "\n"
    p.write_text(",".join(drops.FEE_HEAD) + "\n" + line * 200_000)
    t = time.perf_counter()
    assert census.count_file(p, "csv", "utf-8", p.name).records == 200_000
    assert time.perf_counter() - t < 3

