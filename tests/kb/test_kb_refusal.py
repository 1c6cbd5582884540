"""A batch file whose layout changed is refused whole, naming the file, the sheet and what was expected."""
from __future__ import annotations

import datetime as dt

import pytest
from openpyxl import load_workbook

from pipelines.kb import io
from pipelines.kb.pipeline import import_release, read_folder
from pipelines.storage import Lake
from pipelines.synth.kb_batches import write_batches

LEVEL = "第五批_药品限医疗机构级别.xlsx"
POINTS_SHEET = "“药品限医疗机构级别”规则对应知识点明细"


@pytest.fixture
def src(tmp_path):
    write_batches(tmp_path / "src", scale=0, only={"5", "6", "7"})
    return tmp_path / "src"


def _edit(path, fn):
    wb = load_workbook(path)
    fn(wb)
    wb.save(path)


def _renamed(wb):
    ws = wb[POINTS_SHEET]
    ws.cell(row=4, column=2, value="通用名称")            # was 药品通用名


def _moved(wb):
    wb[POINTS_SHEET].insert_rows(1, 2)                 # header from row 4 to row 6


def _extra(wb):
    ws = wb.create_sheet("附表")
    ws.append(["序号", "备注"])
    ws.append([1, "说明"])


@pytest.mark.parametrize("change, sheet, words", [
    (_renamed, POINTS_SHEET, ["lacks 药品通用名", "expected columns 序号, 药品通用名, 检出逻辑, 逻辑依据, 知识点对应药品代码数量"]),
    (_moved, POINTS_SHEET, ["no header row on rows 1–4"]),
    (_extra, "附表", ["no header row on rows 1–4"]),
])
def test_changed_layout_is_refused_whole(src, tmp_path, change, sheet, words):
    _edit(src / LEVEL, change)
    _, _, rec, _ = read_folder(src)
    (r,) = rec.refused
    assert (r.file, r.sheet) == (LEVEL, sheet)
    for w in words:
        assert w in r.message
    assert {f.file for f in rec.files if f.status == "imported"} == {
        "第六批_药品限支付疗程.xlsx", "第七批_医疗服务项目重复收费.xlsx"}
    lake = Lake(tmp_path / "lake")
    res = import_release(src, lake, effective=dt.date(2025, 1, 1))
    assert not res.written and not lake.exists(io.POINT_TABLE) and not lake.exists("silver/kb_hilist")
    res = import_release(src, lake, effective=dt.date(2025, 1, 1), partial=True)
    assert res.written
    points = lake.read(io.POINT_TABLE).to_pylist()
    assert {p["batch"] for p in points} == {"6", "7"}           # nothing of the refused file
    assert not any(p["file"] == LEVEL for p in lake.read(io.CODE_TABLE).to_pylist())


def test_an_extra_sheet_of_the_same_batch_is_refused(src):
    def second_points_sheet(wb):
        copy = wb.copy_worksheet(wb[POINTS_SHEET])
        copy.title = "“药品限医疗机构级别”规则对应知识点明细2"
    _edit(src / LEVEL, second_points_sheet)
    _, _, rec, _ = read_folder(src)
    (r,) = rec.refused
    assert r.file == LEVEL and "extra sheet" in r.message and "expected sheets drug_points, drug_codes" in r.message


def test_an_unexpected_column_is_refused(src):
    _edit(src / LEVEL, lambda wb: wb[POINTS_SHEET].cell(row=4, column=7, value="限定年龄"))
    _, _, rec, _ = read_folder(src)
    (r,) = rec.refused
    assert r.sheet == POINTS_SHEET and "unexpected column '限定年龄'" in r.message


def test_a_csv_code_file_without_its_points_file_is_refused(tmp_path):
    write_batches(tmp_path, scale=0, only={"5"}, as_csv=True)
    (tmp_path / "第五批_药品限医疗机构级别_知识点明细.csv").unlink()
    _, _, rec, _ = read_folder(tmp_path)
    (r,) = rec.refused
    assert r.file == "第五批_药品限医疗机构级别_知识点对应药品代码.csv" and "lacks its drug_points sheet" in r.message


def test_a_sheet_naming_no_batch_is_refused(tmp_path):
    write_batches(tmp_path, scale=0, only={"6"})
    path = tmp_path / "第六批_药品限支付疗程.xlsx"

    def anonymous(wb):
        for ws in wb.worksheets:
            ws.title = f"Sheet{wb.worksheets.index(ws) + 1}"
            ws.cell(row=1, column=1, value="知识点明细")
    _edit(path, anonymous)
    _, _, rec, _ = read_folder(tmp_path)
    (r,) = rec.refused
    assert r.file == path.name and r.sheet == "Sheet1" and "not recognised as a batch" in r.message
