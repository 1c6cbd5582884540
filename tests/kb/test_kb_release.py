"""Releases: versioned with their sources and effective date, compared with `kb diff`, local rows over national."""
from __future__ import annotations

import datetime as dt
import json

from openpyxl import load_workbook

from pipelines import cli
from pipelines.kb import io
from pipelines.kb.pipeline import import_release
from pipelines.storage import Lake
from pipelines.synth.kb_batches import write_batches

LEVEL = "第五批_药品限医疗机构级别.xlsx"
POINTS_SHEET = "“药品限医疗机构级别”规则对应知识点明细"


def test_diff_lists_points_added_removed_and_changed(tmp_path, capsys):
    src = tmp_path / "a"
    write_batches(src, scale=0, only={"5", "6"})
    lake = Lake(tmp_path / "lake")
    a = import_release(src, lake, effective=dt.date(2025, 1, 1)).release_id
    wb = load_workbook(src / LEVEL)
    ws = wb[POINTS_SHEET]
    ws.cell(row=5, column=4, value="限三级医院")               # point 1: 二级及以上 -> 三级
    ws.delete_rows(10)                                        # point 6 removed
    ws.append([7, "新增药品", "新增", "限二级及以上医疗机构", 0])  # point 7 added (no code rows)
    wb.save(src / LEVEL)
    b = import_release(src, lake, effective=dt.date(2025, 7, 1)).release_id
    assert a != b and [r["release_id"] for r in io.releases(lake)] == [a, b]
    assert cli.main(["kb", "diff", a, b, "--lake", str(lake.root), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in d["added"]] == ["新增药品"]
    assert [p["name"] for p in d["removed"]] == ["药品知识点500006"]
    (c,) = d["changed"]
    assert c["changed"] == ["params", "basis"] and '"hosp_lv_min": 1' in c["after"]["params"]
    assert cli.main(["kb", "diff", a, "nope", "--lake", str(lake.root)]) == 2


def test_same_files_again_write_nothing_and_an_older_release_is_in_force_only_before_the_later_one(tmp_path):
    src = tmp_path / "src"
    write_batches(src, scale=0, only={"5"})
    lake = Lake(tmp_path / "lake")
    first = import_release(src, lake, effective=dt.date(2025, 7, 1))
    v = lake.version("silver/kb_hilist")
    again = import_release(src, lake, effective=dt.date(2025, 7, 1))
    assert again.release_id == first.release_id and not again.written and lake.version("silver/kb_hilist") == v
    older = import_release(src, lake, effective=dt.date(2024, 1, 1))
    assert older.written and not older.in_force and "before 2025-07-01" in older.message
    assert len(io.releases(lake)) == 2
    spans = {(r["kb_release"], r["kb_valid_from"], r["kb_valid_to"]) for r in lake.read("silver/kb_hilist").to_pylist()}
    assert spans == {(older.release_id, dt.date(2024, 1, 1), dt.date(2025, 7, 1)),
                     (first.release_id, dt.date(2025, 7, 1), None)}


def test_local_additions_are_merged_over_the_national_release(tmp_path):
    src, local = tmp_path / "src", tmp_path / "local"
    exp = {e.batch: e for e in write_batches(src, scale=0, only={"5", "7"})}
    local.mkdir()
    code = exp["5"].planted[0]["code"]                          # national: hosp_lv_min 2
    (local / "kb_hilist.csv").write_text(
        f"hilist_code,hilist_name,hosp_lv_min,max_cnt_per_day\n{code},本地名称,1,\nLOCAL001,本地项目,,3\n",
        encoding="gb18030")
    (local / "kb_param.csv").write_text("key,value\nreadmit_days,15\n", encoding="utf-8")
    lake = Lake(tmp_path / "lake")
    res = import_release(src, lake, effective=dt.date(2025, 7, 1), local_dir=local)
    hil = {r["hilist_code"]: r for r in lake.read("silver/kb_hilist").to_pylist()}
    assert hil[code]["hosp_lv_min"] == "1" and hil[code]["hilist_name"] == "本地名称"
    assert hil[code]["list_type"] == "101"                      # national value kept where local is blank
    assert hil[code]["kb_source"].startswith("local kb_hilist.csv:2 over 第5批")
    assert hil["LOCAL001"]["max_cnt_per_day"] == 3 and hil["LOCAL001"]["kb_release"] == res.release_id
    assert lake.read("silver/kb_param").to_pylist()[0]["value"] == "15"
    rel = io.releases(lake)[0]
    assert rel["precedence"].startswith("local > national")
    assert {s["file"] for s in json.loads(rel["local_sources"])} == {"kb_hilist.csv", "kb_param.csv"}


def test_cli_import_exit_codes(tmp_path, capsys):
    src = tmp_path / "src"
    write_batches(src, scale=0, only={"3-1"})
    lake = str(tmp_path / "lake")
    assert cli.main(["kb", "import", "--from", str(src), "--lake", lake, "--effective-date", "2025-07-01"]) == 0
    out = capsys.readouterr().out
    assert "第三批-1_药品限工伤保险.xlsx" in out and "written (effective 2025-07-01)" in out
    write_batches(src, scale=0, only={"5"})                     # remarks needing curation, a count mismatch
    assert cli.main(["kb", "import", "--from", str(src), "--lake", lake]) == 1
    (src / "broken.xlsx").write_bytes(b"not a zip")
    assert cli.main(["kb", "import", "--from", str(src), "--lake", lake]) == 2
    assert "broken.xlsx: not a readable .xlsx workbook" in capsys.readouterr().err
    assert cli.main(["kb", "import", "--from", str(tmp_path / "none"), "--lake", lake]) == 2
    assert cli.main(["kb", "releases", "--lake", lake]) == 0
