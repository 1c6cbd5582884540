"""Importing generated batch files in the exact published shapes: the reconciliation is exact per file."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from pipelines.kb import io
from pipelines.kb.pipeline import import_release, read_folder
from pipelines.storage import Lake
from pipelines.synth.kb_batches import write_batches

COUNTS = ("points_read", "code_rows_read", "points_mapped", "points_curation", "rows_rejected", "count_mismatches")


def _check_exact(rec, expected):
    got = {f.file: f for f in rec.files}
    assert sorted(got) == sorted(e.file for e in expected)
    for e in expected:
        assert {c: getattr(got[e.file], c) for c in COUNTS} == {c: getattr(e, c) for c in COUNTS}, e.file
        assert got[e.file].batch == e.batch
        assert got[e.file].status == "imported"


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    src = tmp_path_factory.mktemp("nhsa")
    return src, write_batches(src, scale=0)


def test_every_published_sheet_imports_with_exact_reconciliation(published):
    src, expected = published
    batches, knowledge, rec, hashes = read_folder(src)
    assert len(expected) == 26                                       # 19 batch files + 7 indication files
    assert {b.batch for b in batches} == {e.batch for e in expected}
    _check_exact(rec, expected)
    assert not rec.refused
    # traps planted by construction: one count mismatch, three rejected rows, unreadable remarks
    assert rec.total("count_mismatches") == 1 and rec.total("rows_rejected") == 3
    assert rec.total("points_curation") == sum(e.points_curation for e in expected) > 0


def test_over_wide_sheet_is_read_by_its_named_columns(published):
    src, _ = published
    raws = io.read_xlsx(src / "第一批-1_药品区分性别使用.xlsx", 4)
    codes = next(r for r in raws if "代码" in r.sheet)
    assert codes.reported_columns == 16384
    assert all(len(row) == 4 for _, row in codes.rows)          # only 对应知识点序号 … 药品代码


def test_count_mismatch_rejected_rows_and_curation_name_file_sheet_row(published):
    src, _ = published
    _, _, rec, _ = read_folder(src)
    (m,) = rec.mismatches
    assert (m["file"], m["row"], m["point_no"], m["declared"], m["found"]) == (
        "第五批_药品限医疗机构级别.xlsx", 5, 1, "4", 3)
    reasons = {(r["file"], r["row"]): r["reason"] for r in rec.rejected}
    assert reasons[("第四批_药品限就医方式.xlsx", 11)] == "序号 '注' is not a whole number"
    assert "no such knowledge point" in reasons[("第六批_药品限支付疗程.xlsx", 16)]
    assert reasons[("第六批_药品限支付疗程.xlsx", 17)] == "药品代码 blank"
    unread = [c for c in rec.curation if c["batch"] == "5"]
    assert [c["text"] for c in unread] == ["限具有相应资质的医疗机构使用"] * 2
    assert all("hosp_level: text not understood" in c["reason"] for c in unread)
    rare = [c for c in rec.curation if c["batch"] == "12"]
    assert rare and "indication without ICD-10 codes" in rare[0]["reason"]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gb18030"])
def test_the_same_sheets_as_csv_import_the_same(tmp_path, encoding):
    expected = write_batches(tmp_path, scale=0, as_csv=True, encoding=encoding)
    _, knowledge, rec, _ = read_folder(tmp_path)
    _check_exact(rec, expected)
    xlsx = tmp_path / "x"
    write_batches(xlsx, scale=0)
    _, k2, _, _ = read_folder(xlsx)
    strip = lambda ks: sorted((p["batch"], p["point_no"], p["params"], p["status"]) for k in ks for p in k.points)  # noqa: E731
    assert strip(knowledge) == strip(k2)


def test_release_writes_kb_tables_with_parameters_and_sources(published, tmp_path):
    src, expected = published
    lake = Lake(tmp_path / "lake")
    res = import_release(src, lake, effective=dt.date(2025, 7, 1), now=dt.datetime(2025, 7, 2))
    assert res.written and res.in_force
    hil = {r["hilist_code"]: r for r in lake.read("silver/kb_hilist").to_pylist()}
    by_batch = {e.batch: e for e in expected}
    lvl = hil[by_batch["5"].planted[0]["code"]]               # 限二级及以上医疗机构
    assert lvl["hosp_lv_min"] == "2" and lvl["kb_release"] == res.release_id
    assert lvl["kb_source"].startswith("第5批 ") and "序号" in lvl["kb_source"]
    assert hil[by_batch["1-4"].planted[1]["code"]]["age_max"] == 12     # 限12岁以下
    assert hil[by_batch["3-1"].planted[0]["code"]]["insutype_only"] == "410"
    assert hil[by_batch["3-2"].planted[0]["code"]]["insutype_only"] == "510"
    assert hil[by_batch["4"].planted[1]["code"]]["med_type_only"] == "14"    # 限门诊慢特病
    assert hil[by_batch["6"].planted[1]["code"]]["pay_days_per_year"] == 30
    assert hil[by_batch["8-4"].planted[0]["code"]]["period_days"] > 0
    assert hil[by_batch["11-2"].planted[0]["code"]]["herbal_not_alone"] == "1"
    assert hil[by_batch["12"].planted[0]["code"]]["lmt_diag"] == "B180|B181"
    unread = [p for p in lake.read(io.POINT_TABLE).to_pylist() if p["status"] == "needs_curation"]
    assert all(p["reason"] for p in unread) and len(unread) == sum(e.points_curation for e in expected)
    pairs = lake.read("silver/kb_item_pair").to_pylist()
    assert {p["window"] for p in pairs} == {"day", "visit"} and all(p["relation"] == "includes" for p in pairs)
    rel = io.releases(lake)[0]
    assert rel["effective_date"] == dt.date(2025, 7, 1) and rel["points_curation"] == len(unread)
    sources = json.loads(rel["sources"])
    assert len(sources) == 26 and all(len(s["sha256"]) == 64 for s in sources)
    report = json.loads((lake.root / "_reports" / "kb" / f"{res.release_id}.json").read_text())
    assert len(report["count_mismatches"]) == 1
