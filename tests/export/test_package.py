"""The audit package of one institution: built from a tiny gold/suspects, opened back and checked."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from pipelines import contract
from pipelines.contract import SUSPECT_COLUMNS
from pipelines.export import package as pkg
from pipelines.commands.export import add_arguments, run
from pipelines.catalog import CATEGORIES, CATEGORY_EN
from pipelines.contract import SUSPECT_SCHEMA
from pipelines.storage import Lake

PUBLISHED = dt.datetime(2023, 5, 2, 8, 0, tzinfo=dt.timezone.utc)


def suspect(sid, inst, period, amount, *, rule="daily_cap_item", category="超量收费", severity="violation",
            day=10, evidence=None, psn="P1"):
    y, m = map(int, period.split("-"))
    return {
        "suspect_id": sid, "rule_id": rule, "rule_version": 1, "family": rule.rsplit("_", 1)[0],
        "category": category, "severity": severity, "fixmedins_code": inst, "period": period,
        "psn_no": psn, "mdtrt_id": f"M-{sid}", "setl_id": f"S-{sid}", "feedetl_sn": f"F-{sid}",
        "hilist_code": "001109000010000", "event_time": dt.datetime(y, m, day, 9, 30),
        "amount": Decimal(amount), "evidence": evidence or f"{sid}：同日床位费计 2 次，限 1 次",
        "run_id": f"run-{period}", "rule_set_fingerprint": "fp0123456789abcd",
        "input_versions": '{"silver/fee_list": 3}', "published_at": PUBLISHED,
    }


ROWS = [
    suspect("s01", "H001", "2023-03", "120.50"),                        # H001 March: exported
    suspect("s02", "H001", "2023-03", "80.00", rule="gender_restricted_drug", category="超医保支付范围",
            severity="suspicious", day=3, psn="P2"),                     # H001 March, second rule
    suspect("s03", "H001", "2023-03", "1500.00", day=20,
            evidence="=HYPERLINK(\"http://x\")患者当日计费"),             # text that looks like a formula
    suspect("s04", "H001", "2023-04", "55.55"),                         # H001 April: other month
    suspect("s05", "H002", "2023-03", "999.99"),                        # other institution, same month
    suspect("s06", "H002", "2023-04", "10.00"),                         # other institution, other month
    suspect("s07", "H001", "2022-03", "7.00"),                          # H001, other year
]


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.append("gold/suspects", pa.Table.from_pylist(ROWS, schema=SUSPECT_SCHEMA),
                partition_by=["fixmedins_code", "period"])
    return lake


def export(lake, out, institution, period):
    import argparse
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--lake", str(lake.root), "--institution", institution, "--period", period,
                         "--out", str(out)])
    return run(args)


def verify(path):
    import argparse
    p = argparse.ArgumentParser()
    add_arguments(p)
    return run(p.parse_args(["--verify", str(path)]))


def test_export_one_institution_month(lake, tmp_path):
    out = tmp_path / "out"
    assert export(lake, out, "H001", "2023-03") == 0
    d = out / "H001_2023-03"
    assert sorted(p.name for p in d.iterdir()) == sorted([*pkg.PACKAGE_FILES, pkg.MANIFEST])

    wb = load_workbook(d / "suspects.xlsx")
    ws = wb["疑点清单"]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["疑点编号", "规则编号", "规则名称"]
    assert "涉及金额(元)" in header and "严重程度" in header
    assert header == [label for _, label in pkg.LIST_COLUMNS]
    assert len(header) == len(SUSPECT_COLUMNS) + 1
    assert ws.freeze_panes == "A2"
    rows = [dict(zip(header, [c.value for c in r])) for r in ws.iter_rows(min_row=2)]
    assert {r["疑点编号"]: r["涉及金额(元)"] for r in rows} == {"s01": 120.50, "s02": 80.00, "s03": 1500.00}
    amount_col = header.index("涉及金额(元)")
    assert all(r[amount_col].data_type == "n" and r[amount_col].number_format == "#,##0.00"
               for r in ws.iter_rows(min_row=2))                              # numbers, not text
    assert {r["定点医药机构编号"] for r in rows} == {"H001"} and {r["期间"] for r in rows} == {"2023-03"}
    assert {r["疑点编号"]: r["严重程度"] for r in rows} == {"s01": "明确违规", "s02": "可疑", "s03": "明确违规"}
    assert {r["规则名称"] for r in rows} == {"项目/药品超每日限量", "药品限性别"}
    assert [r["疑点编号"] for r in rows] == ["s02", "s01", "s03"]            # by event time
    evid = next(c for c in ws[4] if isinstance(c.value, str) and "HYPERLINK" in c.value)
    assert evid.data_type == "s" and evid.value == "'" + ROWS[2]["evidence"]  # never a formula (OWASP quote)

    raw = (d / "suspects.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    recs = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert list(recs[0]) == [c for c, _ in pkg.LIST_COLUMNS]
    assert [(r["suspect_id"], r["amount"], r["severity"]) for r in recs] == [
        ("s02", "80.00", "suspicious"), ("s01", "120.50", "violation"), ("s03", "1500.00", "violation")]
    assert [r["疑点编号"] for r in rows] == [r["suspect_id"] for r in recs]
    assert recs[1]["event_time"] == "2023-03-10 09:30:00"

    doc = json.loads((d / "violations.json").read_text(encoding="utf-8"))
    assert len(doc) == 3
    for o in doc:
        assert set(pkg.NATIONAL_KEYS) <= set(o)
    o = next(o for o in doc if o["jr_id"] == "s01")
    assert o["vola_amt"] == 120.5 and o["sev_deg"] == "明确违规" and o["patn_id"] == "P1"
    assert o["task_id"] == "run-2023-03" and o["vola_bhvr_type"] == "超量收费"
    assert o["vola_evid"].startswith("《医疗保障基金使用监督管理条例》")
    assert o["vola_cont"] == ROWS[0]["evidence"] and o["rule_name"] == "项目/药品超每日限量"

    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert (m["institution"], m["period"], m["row_count"], m["total_amount"]) == ("H001", "2023-03", 3, "1700.50")
    assert m["run_ids"] == ["run-2023-03"] and m["rule_set_fingerprint"] == "fp0123456789abcd"
    assert not m["empty"] and m["source"]["delta_version"] == 0
    assert {f["name"] for f in m["files"]} == set(pkg.PACKAGE_FILES)
    assert pkg.verify_manifest(d) == []
    assert verify(d) == 0

    html = (d / "summary.html").read_text(encoding="utf-8")
    assert "疑点汇总" in html and "Suspect summary" in html and html.count("data:image/png;base64,") == 2

    fb = load_workbook(d / "feedback.xlsx")["feedback"]
    assert [c.value for c in fb[1]][:5] == [contract.FEEDBACK_FORM[c][0] for c in pkg.FEEDBACK_COLUMNS]
    assert [c.value for c in fb[2]][:5] == list(pkg.FEEDBACK_COLUMNS)        # English names under them
    assert fb.freeze_panes == "A3"
    assert [r[0].value for r in fb.iter_rows(min_row=3)] == ["s02", "s01", "s03"]
    dvs = fb.data_validations.dataValidation
    answer = next(dv for dv in dvs if dv.type == "list")
    assert answer.formula1 == '"确认,申诉"' and "B3:B5" in str(answer.sqref)


def test_export_year_collects_every_month_of_the_institution(lake, tmp_path):
    assert export(lake, tmp_path / "out", "H001", "2023") == 0
    d = tmp_path / "out" / "H001_2023"
    recs = list(csv.DictReader(io.StringIO((d / "suspects.csv").read_text(encoding="utf-8-sig"))))
    assert sorted(r["suspect_id"] for r in recs) == ["s01", "s02", "s03", "s04"]
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert m["total_amount"] == "1756.05" and sorted(m["run_ids"]) == ["run-2023-03", "run-2023-04"]


def test_tampered_or_extra_file_fails_verification(lake, tmp_path):
    export(lake, tmp_path / "out", "H001", "2023-03")
    d = tmp_path / "out" / "H001_2023-03"
    p = d / "suspects.csv"
    p.write_bytes(p.read_bytes().replace(b"120.50", b"12.50"))
    problems = pkg.verify_manifest(d)
    assert any("suspects.csv" in x and "SHA-256" in x for x in problems)
    assert verify(d) == 1
    export(lake, tmp_path / "out", "H001", "2023-03")                       # a re-export replaces the package
    assert pkg.verify_manifest(d) == []
    (d / "notes.txt").write_text("x")
    assert any("notes.txt" in x for x in pkg.verify_manifest(d))
    (d / "notes.txt").unlink()
    (d / "feedback.xlsx").unlink()
    assert any("feedback.xlsx: missing" in x for x in pkg.verify_manifest(d))
    assert pkg.verify_manifest(tmp_path / "nowhere")


def test_institution_without_suspects_gets_an_empty_package(lake, tmp_path, capsys):
    assert export(lake, tmp_path / "out", "H003", "2023-03") == 0
    assert "no suspects" in capsys.readouterr().out
    d = tmp_path / "out" / "H003_2023-03"
    m = json.loads((d / "manifest.json").read_text(encoding="utf-8"))
    assert m["empty"] and m["row_count"] == 0 and m["total_amount"] == "0.00"
    assert pkg.verify_manifest(d) == []
    ws = load_workbook(d / "suspects.xlsx")["疑点清单"]
    assert ws.max_row == 1 and ws["A1"].value == "疑点编号"
    assert "无疑点" in load_workbook(d / "suspects.xlsx")["说明 About"]["B1"].value
    assert json.loads((d / "violations.json").read_text(encoding="utf-8")) == []
    assert "本期该机构无疑点" in (d / "summary.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("code", ["../x", "a/b", "", "H001,H002", "H 1", "x" * 33, "..", "H1\n"])
def test_institution_code_that_is_not_plain_is_refused(lake, tmp_path, code, capsys):
    assert export(lake, tmp_path / "out", code, "2023-03") == 2
    assert "refused" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(pkg.ExportError):
        pkg.build_package(pa.Table.from_pylist(ROWS, schema=SUSPECT_SCHEMA), code, "2023-03", rules={},
                          generated_at=PUBLISHED)


@pytest.mark.parametrize("period", ["2023-13", "23", "2023-3", "2023/03", "../2023"])
def test_bad_period_is_refused(lake, tmp_path, period):
    assert export(lake, tmp_path / "out", "H001", period) == 2


def test_missing_table_is_an_error(tmp_path):
    assert export(Lake(tmp_path / "empty"), tmp_path / "out", "H001", "2023") == 1


def test_builders_are_pure_and_keep_only_the_institution(tmp_path):
    rows = pa.Table.from_pylist(ROWS, schema=SUSPECT_SCHEMA)
    files = pkg.build_package(rows, "H002", "2023-03", rules={}, generated_at=PUBLISHED, font=None)
    doc = json.loads(files[pkg.JSON])
    assert [o["jr_id"] for o in doc] == ["s05"] and doc[0]["rule_name"] == "daily_cap_item"  # unknown rule: id
    m = json.loads(files[pkg.MANIFEST])
    assert m["charts"]["labels"].startswith("en")
    assert {f["name"]: f["sha256"] for f in m["files"]} == {n: pkg.sha256(files[n]) for n in pkg.PACKAGE_FILES}


def test_every_catalog_category_has_an_english_chart_label():
    assert set(CATEGORIES) <= set(CATEGORY_EN)


def test_cjk_font_detection_never_picks_a_placeholder_font():
    font = pkg.find_cjk_font()
    assert font is None or "last resort" not in font.lower()


def test_feedback_template_is_read_by_the_feedback_ingester(lake, tmp_path):
    """The template round-trips through the workflow's reader (the step that ingests the answers)."""
    from pipelines.workflow import feedback, sheets

    export(lake, tmp_path / "out", "H001", "2023-03")
    wb = load_workbook(tmp_path / "out" / "H001_2023-03" / "feedback.xlsx")
    ws = wb["feedback"]
    ws["B3"], ws["C3"] = "确认", 80                                           # s02 confirmed, refund 80
    ws["B4"], ws["D4"], ws["E4"] = "申诉", "有医嘱", "附件1"                    # s01 disputed; s03 unanswered
    wb.save(tmp_path / "filled.xlsx")
    form = sheets.read_form(tmp_path / "filled.xlsx", feedback.FIELDS, "suspect_id")
    parsed = feedback.parse_feedback(form, institution="H001", received_at=PUBLISHED)
    assert [(d.suspect_id, d.status, d.amount) for d in parsed.decisions] == [
        ("s02", "confirmed", Decimal("80.00")), ("s01", "disputed", None)]
    assert not parsed.rejects and len(parsed.unanswered) == 1
    assert {a for a, spellings in contract.FEEDBACK_ANSWERS.items() if set(spellings) & set(pkg.FEEDBACK_CHOICES)} == {
        "confirmed", "disputed"}
