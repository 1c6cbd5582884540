"""(5) psn_name / certno never leave bronze in clear."""
from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa

from . import drops
from .conftest import SALT

CLEAR = ["张三", "李四", "110101198001011234", "11010119900202567X"]


def test_no_clear_pii_after_bronze(tmp_path, lake, load):
    psn = drops.PSN + [["P3", "王五", "BAD-CERT", "9", "1990-01-01", "", "", "", ""]]  # gend 9: quarantined
    load(drops.write_canonical_drop(tmp_path / "d", {"psn": psn}))
    assert "psn_name" not in lake.schema("silver/psn").names and "certno" not in lake.schema("silver/psn").names
    for name in [*lake.tables("silver"), "quarantine", *lake.tables("_meta")]:
        t = lake.read(name)
        for col in t.column_names:
            if pa.types.is_string(t.schema.field(col).type):
                text = "\n".join(v for v in t.column(col).to_pylist() if v)
                for s in CLEAR + ["王五", "BAD-CERT"]:
                    assert s not in text, (name, col, s)
    bronze = lake.read("bronze/psn").column("psn_name").to_pylist()
    assert "张三" in bronze                  # bronze is the one place it is kept
    p1 = next(r for r in lake.read("silver/psn").to_pylist() if r["psn_no"] == "P1")
    assert p1["psn_name_hash"] == hmac.new(SALT.encode(), "张三".encode(), hashlib.sha256).hexdigest()   # keyed


def _quarantine_text(lake) -> str:
    return "\n".join(r["raw_row"] for r in lake.read("quarantine").to_pylist())


import pytest  # noqa: E402


@pytest.mark.parametrize("fast", [True, False])
def test_every_quarantine_path_hashes_personal_columns(tmp_path, lake, load, monkeypatch, fast):
    """Rows of the wrong width (fast path and batched reader), rows failing typing and conflicting keys: the
    quarantine keeps no name or identity number in clear."""
    if not fast:
        from pipelines.ingest import fastpath
        monkeypatch.setattr(fastpath, "stage_fast", lambda *a: False)
    psn = drops.PSN + [
        ["P3", "王五", "110101197001011111", "1"],                                  # truncated row
        ["P4", "赵六", "110101197001012222", "1", "1970-01-01", "", "", "", "", "x"],  # one field too many
        ["P5", "孙七", "110101197001013333", "9", "1970-01-01", "", "", "", ""],     # gend 9: fails typing
        ["P1", "周八", "110101197001014444", "2", "1980-01-01", "310", "1101", "110101", ""],  # P1 again, different
    ]
    load(drops.write_canonical_drop(tmp_path / "d", {"psn": psn}))
    assert len(lake.read("quarantine")) == 5          # both copies of the conflicting P1
    text = _quarantine_text(lake)
    for clear in ("王五", "赵六", "孙七", "周八", "张三", "110101197001011111", "110101197001012222",
                  "110101197001013333", "110101197001014444", "110101198001011234"):
        assert clear not in text, clear
    h = hmac.new(SALT.encode(), "孙七".encode(), hashlib.sha256).hexdigest()
    assert h in text                                     # the hash is kept: a row can still be matched


def test_jsonl_and_xlsx_quarantine_hash_personal_columns(tmp_path, lake, load):
    import json

    import openpyxl
    d = tmp_path / "d"
    d.mkdir()
    (d / "psn.jsonl").write_text(json.dumps({"psn_no": "P9", "psn_name": "吴九", "gend": "1", "brdy": "1970-01-01"},
                                            ensure_ascii=False) + "\n" + '{"psn_no": "P8", "psn_name": "郑十", oops\n',
                                 encoding="utf-8")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["psn_no", "psn_name", "certno", "gend", "brdy"])
    ws.append(["P7", "钱一", "110101197001015555", "=1+0", "1970-01-01"])   # a formula without a cached value
    wb.save(d / "psn-2.xlsx")
    load(d)
    text = _quarantine_text(lake)
    assert len(lake.read("quarantine")) == 2
    for clear in ("郑十", "钱一", "110101197001015555"):
        assert clear not in text, clear


def test_an_unsplittable_line_of_a_file_with_columns_beyond_the_entity_is_hashed():
    """mdtrt names no personal field, but an agency's export may carry psn_name and certno beside the visit: a
    truncated line of such a file used to reach the quarantine in clear; a file of the entity's columns only
    keeps its text."""
    import json

    from pipelines.ingest.nodes import raw_text_json

    headers = ["mdtrt_id", "psn_no", "fixmedins_code", "psn_name", "certno"]
    mapping = {0: "mdtrt_id", 1: "psn_no", 2: "fixmedins_code"}
    text = "MD1,P1,H1,张三丰,330106194207215139"[:-3]
    raw = raw_text_json("mdtrt", text, "salt", mapping, ",", headers)
    assert "张三丰" not in raw and "3301061942072151" not in raw
    assert len(json.loads(raw)["_fields_hash"]) == 5
    assert json.loads(raw_text_json("mdtrt", "MD1,P1", "salt", mapping, ",", headers[:3])) == {"_text": "MD1,P1"}
