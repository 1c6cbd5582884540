"""The gate's report (gate.html): the verdict first in plain words, each failed check with the rows it
rejected, passed checks collapsed, a relative link to the Data Docs, and nothing fetched from anywhere."""
from __future__ import annotations

import json
import re
from decimal import Decimal
from types import SimpleNamespace

import pyarrow as pa

from fg_lakes import clean_rows, gate_catalog, suspect, table
from fg_offline import external_references, page_urls

from pipelines.quality import gx as qgx
from pipelines.quality import report as qreport
from pipelines.quality.gate import REPORT_FILE, GateScope, run_gate
from pipelines.screen.pipeline import scope_table

ORPHAN = "silver/fee_list_net (mdtrt_id, feedetl_sn) = (M9, 99)"


def check(name, *, success, rows=None, columns=(), messages=(), severity="failure", description=None):
    """An outcome of one check, as gx.run_suite gives it (the expectation stands in for a GX one)."""
    expectation = SimpleNamespace(description=description or f"描述 {name} / description of {name}", column=None)
    c = qgx.Check(name, "suspects", expectation, describe=lambda: list(messages), severity=severity,
                  rows=(lambda: rows) if rows is not None else None, columns=tuple(columns))
    return qgx.CheckOutcome(c, success, None if rows is None else len(rows))


def suite_run(*outcomes) -> qgx.SuiteRun:
    return qgx.SuiteRun(all(o.success for o in outcomes if o.check.severity == "failure"), list(outcomes), None)


def suspects(n=3, run_id="R9") -> pa.Table:
    return pa.table({"suspect_id": [f"s{i}" for i in range(n)], "fixmedins_code": ["H2", "H1", "H1"][:n],
                     "period": ["2023-03", "2023-03", "2023-04"][:n], "run_id": [run_id] * n,
                     "amount": pa.array([Decimal("10.50"), Decimal("0.25"), Decimal("100.00")][:n],
                                        pa.decimal128(18, 2))})


def text(html: str) -> str:
    """The page's visible text: no style, no tags, spaces collapsed."""
    html = re.sub(r"<(style|title)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def rendered(*outcomes, sus=None, scope=None, **kwargs) -> str:
    return qreport.render(qreport.gate_report(suite_run(*outcomes), suspects() if sus is None else sus, scope,
                                              **kwargs))


ROW_COLUMNS = ("suspect_id", "rule_id", "orphan")
FAILED = check("refers_to_silver", success=False, columns=ROW_COLUMNS,
               rows=[{"suspect_id": f"id{i:02d}", "rule_id": "daily_cap_item", "orphan": f"mdtrt M{i}",
                      "amount": 1.0} for i in range(25)],
               messages=["规则 daily_cap_item 有 25 条疑点在 silver 中找不到对应记录 / rule daily_cap_item: 25 suspects "
                         "refer to no existing silver record"])
ONCE = check("scope_recorded", success=False, messages=["暂存区没有记录筛查范围 / staging records no screened scope"])
PASSED = check("amount_not_null", success=True, description="涉及金额非空 / amount is not null")
WARNED = check("looks_odd", success=False, severity="warning", rows=[{"rule_id": "r1"}], columns=("rule_id",),
               messages=["看起来奇怪 / looks odd"])


def test_a_failed_gate_says_do_not_publish_first_with_the_number_of_failed_checks():
    html = rendered(FAILED, ONCE, PASSED, WARNED)
    body = text(html.split("<body>", 1)[1])
    assert body.startswith("不得发布：2 项检查未通过 / Do not publish: 2 checks failed")
    assert "<title>不得发布：2 项检查未通过 / Do not publish: 2 checks failed" in html
    # a warning is shown but neither counts as failed nor blocks
    assert "看起来奇怪 / looks odd" in body and "Warnings, which do not block publishing (1)" in body


def test_each_failed_check_gives_its_messages_and_the_rows_it_names_capped():
    html = rendered(FAILED, ONCE, PASSED)
    block = html.split('id="check-refers_to_silver"', 1)[1].split('<div class="check', 1)[0]
    assert "25 条疑点在 silver 中找不到对应记录" in block
    assert re.findall(r"<th>([^<]+)</th>", block) == list(ROW_COLUMNS)   # amount is not one of its columns
    shown = re.findall(r"<td>(id\d\d)</td>", block)
    assert shown == [f"id{i:02d}" for i in range(qreport.ROW_LIMIT)]
    assert "另有 5 行未列出 / and 5 more" in block
    # a check on the whole staging frame names no rows: its message alone
    once = html.split('id="check-scope_recorded"', 1)[1].split("</div>", 1)[0]
    assert "暂存区没有记录筛查范围" in once and "<table>" not in once


def test_passed_checks_are_collapsed_and_the_data_docs_linked_relatively():
    html = rendered(FAILED, PASSED)
    details = html.split('<details id="passed">', 1)[1].split("</details>", 1)[0]
    assert "涉及金额非空 / amount is not null" in details and "amount_not_null" in details
    assert "refers_to_silver" not in details
    assert '<a href="index.html">' in html
    assert "index.html" not in rendered(PASSED, data_docs=None)


def test_a_passing_gate_says_safe_to_publish():
    html = rendered(PASSED, check("period_format", success=True))
    assert text(html.split("<body>", 1)[1]).startswith("可以发布 / Safe to publish")
    assert "不得发布" not in html and "Failed checks" not in html
    assert "Passed checks (2)" in text(html)


def test_the_page_is_self_contained():
    html = rendered(FAILED, ONCE, PASSED, WARNED)
    urls, tags = page_urls(html)
    assert external_references(html) == []
    assert urls == ["index.html"]                 # the one link: the Data Docs beside it
    assert {"script", "link", "img", "iframe", "object"}.isdisjoint(tags)
    assert "@font-face" not in html and "@import" not in html


def test_the_offline_check_sees_what_a_page_would_fetch():
    page = ('<link rel="stylesheet" href="https://cdn.example/x.css"><script src="//cdn.example/a.js"></script>'
            '<style>body { background: url("http://img.example/b.png") }</style>'
            '<img src="data:image/png;base64,AAAA"><a href="#top">top</a><a href="index.html">docs</a>'
            '<div style="background-image:url(/abs.png)"></div>')
    assert external_references(page) == ["https://cdn.example/x.css", "//cdn.example/a.js",
                                         "http://img.example/b.png", "/abs.png"]


def test_values_are_escaped_and_cells_readable():
    evil = check("evil", success=False, columns=("evidence",), rows=[{"evidence": "<script>alert(1)</script>"}],
                 messages=["<b>x</b>"])
    html = rendered(evil)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert qreport.cell(None) == "—" and qreport.cell(1234.5) == "1,234.50" and qreport.cell(3.0) == "3"
    assert qreport.cell(True) == "true" and qreport.cell("x" * 200) == "x" * 79 + "…"


def test_scope_counts_and_run_come_from_the_recorded_scope_else_from_the_list():
    sus = suspects()
    scope = scope_table({("H1", "2023-03"): 4, ("H3", "2023-05"): 6}, run_id="R7", fingerprint="fp",
                        input_versions="{}")
    r = qreport.gate_report(suite_run(PASSED), sus, scope)
    assert (r.run_ids, r.institutions, r.periods, r.input_rows) == (("R7",), ("H1", "H3"), ("2023-03", "2023-05"), 10)
    assert r.scope_recorded and r.suspects == 3 and r.amount == Decimal("110.75")
    r = qreport.gate_report(suite_run(PASSED), sus, None)
    assert (r.run_ids, r.institutions, r.periods, r.input_rows) == (("R9",), ("H1", "H2"), ("2023-03", "2023-04"), None)
    assert not r.scope_recorded
    html = qreport.render(r)
    assert "H1, H2" in html and "110.75" in html and "R9" in html
    empty = qreport.gate_report(suite_run(PASSED), sus.schema.empty_table(), None)
    assert empty.amount is None and empty.run_ids == ()
    assert qreport.capped([str(i) for i in range(45)], 40).endswith("39 … (+5)")


# ------------------------------------------------------------------------------------ written by the gate

def _gate(lake, rows, tmp_path, versions):
    scope = scope_table({("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H2", "2023-03"): 3},
                        run_id="R2", fingerprint="fp1", input_versions=json.dumps(versions))
    return run_gate(lake, table(rows), catalog=CATALOG, rules=CATALOG.select(), report_dir=tmp_path / "report",
                    scope=GateScope(scope), previous={}, band=10.0, min_hits=20)


CATALOG = gate_catalog()


def test_the_gate_writes_its_report_beside_the_data_docs(silver_lake, tmp_path):
    lk, versions = silver_lake
    orphan = suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M9", sn="99", versions=versions)
    res = _gate(lk, clean_rows(versions) + [orphan], tmp_path, versions)
    assert not res.success
    assert res.summary_path == res.report_path / REPORT_FILE and (res.report_path / "index.html").exists()
    html = res.summary_path.read_text(encoding="utf-8")
    body = text(html.split("<body>", 1)[1])
    assert body.startswith("不得发布：1 项检查未通过 / Do not publish: 1 check failed")
    assert "运行编号 Run id R2" in body and "H1, H2" in body and "2023-01, 2023-03, 2023-04" in body
    block = html.split('id="check-refers_to_silver"', 1)[1].split('<div class="check', 1)[0]
    assert re.findall(r"<th>([^<]+)</th>", block) == ["suspect_id", "rule_id", "fixmedins_code", "period", "orphan"]
    assert f"<td>{orphan['suspect_id']}</td>" in block and f'<td class="text">{ORPHAN}</td>' in block
    assert external_references(html) == []
    # the Data Docs name the validations by the screening's run and each frame as the data asset
    page = next((res.report_path / "validations" / "gate" / "suspects" / "R2").rglob("*.html")).read_text()
    assert "Data asset: suspects" in page and "Run Name" in page
    assert re.search(r"Run Name</div></td><td[^>]*><div[^>]*>R2</div>", page)


def test_a_clean_list_gets_a_safe_to_publish_report(silver_lake, tmp_path):
    lk, versions = silver_lake
    res = _gate(lk, clean_rows(versions), tmp_path, versions)
    assert res.success
    body = text(res.summary_path.read_text(encoding="utf-8").split("<body>", 1)[1])
    assert body.startswith("可以发布 / Safe to publish")
    assert f"Passed checks ({res.results['gate_expectations']})" in body
