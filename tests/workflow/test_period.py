"""One period driven through every state with generated answers, worksheets and recoveries; the
report's figures are checked against the case table (and by hand)."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import openpyxl
import pyarrow as pa
import pytest

from pipelines import config
from pipelines.workflow import cases as C
from pipelines.workflow import recheck, report, store, worksheet
from pipelines.workflow.feedback import ingest_feedback
from pipelines.workflow.recovery import ingest_recoveries
from tests.workflow.conftest import INSTITUTIONS, fixmedins_table, write_csv

UTC = dt.timezone.utc
D = Decimal
FB_HEADER = ["suspect_id", "answer", "refund_amount", "reason", "evidence_ref"]
EXTRA = [("H5", "第五医院", "06"), ("H6", "城西卫生院", "09")]          # no findings, not drawn


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=UTC)


def decisions_2022(lake):
    """Last period: H1 confirmed+closed, H2 upheld+closed, H3 dismissed, H4 upheld on site (unanswered)."""
    def d(sid, status, day, amount=None, actor="x", reason=None, ev=None):
        return C.Decision(sid, status, actor, at(day), "history.csv", 0, None if amount is None else D(amount),
                          reason, ev)
    ds = [d("P22-H1-a", "confirmed", "2023-02-01", "300"), d("P22-H1-a", "closed", "2023-03-01", "300"),
          d("P22-H2-a", "disputed", "2023-02-01", reason="r", ev="e"), d("P22-H2-a", "upheld", "2023-03-01", "80"),
          d("P22-H2-a", "closed", "2023-04-01", "80"),
          d("P22-H3-a", "disputed", "2023-02-01", reason="r", ev="e"), d("P22-H3-a", "dismissed", "2023-03-01"),
          d("P22-H4-a", "upheld", "2023-03-01", "20")]
    r = store.record_decisions(lake, ds, [], kind="history", file="history.csv", institution=None,
                               batch_id="h", recorded_at=at("2023-04-02"))
    assert r.loaded == len(ds) and not r.rejected


def fill_worksheet(path, out, *, inspectors, date, answers):
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws["B5"], ws["B6"] = inspectors, date
    header_row = next(r for r in range(1, 20) if ws.cell(r, 2).value == "疑点编号 suspect_id")
    cols = {ws.cell(header_row, c).value.split(" ")[1]: c for c in range(1, ws.max_column + 1)}
    for r in range(header_row + 1, ws.max_row + 1):
        sid = ws.cell(r, cols["suspect_id"]).value
        if sid in answers:
            conclusion, amount, notes = answers[sid]
            ws.cell(r, cols["conclusion"]).value = conclusion
            ws.cell(r, cols["recovered_amount"]).value = amount
            ws.cell(r, cols["notes"]).value = notes
    wb.save(out)
    return out


@pytest.fixture
def period_lake(lake, tmp_path):
    lake.overwrite("silver/fixmedins", fixmedins_table(INSTITUTIONS + EXTRA))
    decisions_2022(lake)
    recv = at("2024-02-20T10:00:00")
    # 1) self-inspection answers (H3 does not answer; H1 leaves S-H1-4 open)
    for inst, rows in {
        "H1": [["S-H1-1", "确认", "1200", "", ""], ["S-H1-2", "申诉", "", "医嘱齐全", "EV-1"],
               ["S-H1-3", "confirmed", "60", "", ""], ["S-H1-4", "", "", "", ""]],
        "H2": [["S-H2-1", "disputed", "", "非重复", "EV-2"], ["S-H2-2", "confirmed", "30.00", "", ""],
               ["S-H2-3", "申诉", "", "两次治疗", "EV-3"]],
        "H4": [["S-H4-1", "确认", "20", "", ""]],
    }.items():
        r = ingest_feedback(lake, write_csv(tmp_path / f"fb_{inst}.csv", FB_HEADER, rows), institution=inst,
                            received_at=recv, recorded_at=recv, batch_id=f"fb-{inst}")
        assert r.rejected == 0 and r.reconciles
    # 2) the draw: H1, H2, H3 are inspected on site
    draws = pa.table({"draw_id": ["d1"] * 3, "period": ["2023"] * 3, "seed": [7] * 3,
                      "fixmedins_code": ["H1", "H2", "H3"], "fixmedins_name": ["a", "b", "c"],
                      "hosp_lv": ["02", "05", "08"], "stratum": ["三级", "二级", "一级"],
                      "inspector_ids": ["I1|I2"] * 3, "inspector_names": ["张三|李四"] * 3,
                      "drawn_at": [at("2024-01-20")] * 3})
    store.append_draw(lake, draws)
    # 3) worksheets made, filled, ingested
    conf = config.load("workflow")
    cases = store.read_cases(lake, period="2023")
    fills = {
        "H1": {"S-H1-2": ("属实", 100, "无医嘱"), "S-H1-1": ("属实 upheld", 1000, ""), "S-H1-4": ("不属实", None, "")},
        "H2": {"S-H2-1": ("dismissed", None, "确为两次"), "S-H2-3": ("属实", "70.00", "")},
        "H3": {"S-H3-1": ("不属实", None, "")},
    }
    made = {}
    for inst, answers in fills.items():
        items = worksheet.items_to_verify(cases[cases["fixmedins_code"] == inst],
                                          high_amount=D(str(conf["worksheet"]["high_amount"])))
        made[inst] = items["suspect_id"].tolist()
        blank = tmp_path / f"ws_{inst}.xlsx"
        blank.write_bytes(worksheet.build_worksheet(items, institution=inst, institution_name=inst, period="2023",
                                                    inspectors="张三、李四"))
        filled = fill_worksheet(blank, tmp_path / f"ws_{inst}_filled.xlsx", inspectors="张三、李四",
                                date=dt.date(2024, 3, 10), answers=answers)
        r = worksheet.ingest_worksheet(lake, filled, recorded_at=at("2024-03-11"), batch_id=f"ws-{inst}")
        assert r.rejected == 0 and r.loaded == len(answers) and r.reconciles, r.summary()
    # 4) recoveries close cases (one wrong row: a dismissed item cannot recover money)
    rec = write_csv(tmp_path / "recovery.csv", ["suspect_id", "recovered_amount", "closed_on", "handled_by"], [
        ["S-H1-1", "1000", "2024-04-01", "王五"], ["S-H1-3", "60", "2024-04-01", "王五"],
        ["S-H2-3", "70", "2024-04-02", "王五"], ["S-H4-1", "20", "2024-04-02", "王五"],
        ["S-H1-4", "0", "2024-04-02", "王五"], ["S-H2-1", "5", "2024-04-02", "王五"]])
    r = ingest_recoveries(lake, rec, recorded_at=at("2024-04-03"), batch_id="rec")
    assert (r.loaded, r.rejected) == (5, 1) and r.rejects[0].suspect_id == "S-H2-1"
    # 5) a late answer after the verdict is an illegal transition
    late = write_csv(tmp_path / "late.csv", FB_HEADER, [["S-H1-1", "申诉", "", "不服", "EV-9"]])
    r = ingest_feedback(lake, late, institution="H1", received_at=at("2024-04-05"), recorded_at=at("2024-04-05"),
                        batch_id="late")
    assert r.rejected == 1 and "closed → disputed" in r.rejects[0].reason
    return lake, made


def test_worksheet_lists_disputed_then_high_amount_first(period_lake):
    _, made = period_lake
    assert made["H1"] == ["S-H1-2", "S-H1-1", "S-H1-3", "S-H1-4"]   # disputed, ≥1000, then by amount
    assert made["H2"] == ["S-H2-1", "S-H2-3", "S-H2-2"]


def test_every_state_and_history(period_lake):
    lake, _ = period_lake
    cur = store.read_cases(lake, period="2023").set_index("suspect_id")
    assert cur["status"].to_dict() == {
        "S-H1-1": "closed", "S-H1-2": "upheld", "S-H1-3": "closed", "S-H1-4": "closed", "S-H2-1": "dismissed",
        "S-H2-2": "confirmed", "S-H2-3": "closed", "S-H3-1": "dismissed", "S-H4-1": "closed"}
    ev = store.read_events(lake)
    seen = set(ev["status"]) | {"published"}
    assert seen == set(C.STATES)
    assert ev["seq"].is_unique and ev["event_id"].is_unique
    hist = C.history(store.read_suspects(lake, ids={"S-H1-1"}).iloc[0].to_dict(), ev)
    assert [h["status"] for h in hist] == ["published", "confirmed", "upheld", "closed"]
    assert hist[2]["actor"] == "张三、李四" and hist[2]["decided_at"].date() == dt.date(2024, 3, 10)
    assert hist[3]["amount"] == D("1000.00")


def test_report_figures_match_the_case_table(period_lake):
    lake, _ = period_lake
    wconf = config.load("workflow")
    wconf["precision"]["min_decided"] = 2
    cases = store.read_cases(lake, period="2023")
    f = report.period_figures(cases, period="2023", institutions=store.read_fixmedins(lake),
                              draws=store.read_draws(lake, "2023"), previous_cases=store.read_cases(lake, period="2022"),
                              conf=wconf, strata=wconf["sampling"]["strata"])
    # amounts, by hand and from the case table / the event log
    assert f["amounts"] == {"flagged": D("4040.50"), "confirmed": D("1280.00"), "recovered": D("1150.00")}
    ev = store.read_events(lake, period="2023")
    assert f["amounts"]["recovered"] == sum(ev.loc[ev["status"] == "closed", "amount"])
    assert f["amounts"]["flagged"] == sum(cases["amount"])
    assert f["findings"] == {"total": 9, "institutions": 4}
    assert f["status_counts"] == {"published": 0, "confirmed": 1, "disputed": 0, "upheld": 1, "dismissed": 2,
                                  "closed": 5}
    assert f["status_counts"] == cases["status"].value_counts().reindex(C.STATES, fill_value=0).to_dict()
    assert f["outcome_counts"] == {"positive": 6, "negative": 3, "pending": 0, "unanswered": 0}
    # coverage by level: draws H1 H2 H3 of six institutions
    cov = {r["stratum"]: (r["institutions"], r["inspected"], r["coverage_rate"]) for r in f["coverage"]}
    assert cov == {"三级": (1, 1, 1.0), "二级": (2, 1, 0.5), "一级": (2, 1, 0.5), "无等级": (1, 0, 0.0)}
    assert f["institutions"] == {"total": 6, "inspected": 3, "coverage_rate": 0.5}
    # by category
    cats = {r["category"]: r for r in f["by_category"]}
    assert cats["重复收费"]["findings"] == 4 and cats["重复收费"]["amount"] == D("2645.00")
    assert cats["超量收费"]["confirmed_amount"] == D("1130.00") and cats["超量收费"]["recovered_amount"] == D("1000.00")
    assert sum(r["findings"] for r in f["by_category"]) == len(cases)
    # on site: H1, H2, H3 verified; problems upheld at H1 and H2
    assert f["onsite"] == {"institutions_inspected": 3, "institutions_verified": 3, "institutions_with_problems": 2,
                           "discovery_rate": pytest.approx(2 / 3), "items_verified": 6, "items_upheld": 3,
                           "item_upheld_rate": 0.5}
    # precision per rule; duplicate_x (2 of 4) is below 0.6 with ≥2 decided
    prec = {r["rule_id"]: (r["positive"], r["decided"], r["precision"]) for r in f["precision"]}
    assert prec == {"daily_cap_x": (3, 3, 1.0), "duplicate_x": (2, 4, 0.5), "price_cap_x": (0, 1, 0.0),
                    "gender_x": (1, 1, 1.0)}
    assert f["rules_to_review"] == ["duplicate_x"]
    # 回头看: H1 daily_cap_x and H4 gender_x fire again; H2 price_cap_x does not; H3's was dismissed
    assert f["not_rectified"] == ["H1", "H4"]
    rows = {(r["fixmedins_code"], r["rule_id"]): (r["hits_now"], r["rectified"]) for r in f["recheck"]}
    assert rows == {("H1", "daily_cap_x"): (2, False), ("H2", "price_cap_x"): (0, True),
                    ("H4", "gender_x"): (1, False)}


def test_recheck_function_and_command(period_lake, capsys):
    lake, _ = period_lake
    res = recheck.recheck(store.read_cases(lake, period="2022"), store.read_suspects(lake, period="2023"))
    assert recheck.not_rectified(res) == ["H1", "H4"]
    from pipelines.cli import main
    assert main(["recheck", "--lake", str(lake.root), "--period", "2023"]) == 0
    assert "H1, H4" in capsys.readouterr().out


def test_report_command_writes_html_and_tracks_precision(period_lake, tmp_path):
    from mlflow import MlflowClient

    from pipelines.cli import main
    from pipelines.tracking import tracking_uri
    lake, _ = period_lake
    out = tmp_path / "report.html"
    assert main(["report", "--lake", str(lake.root), "--period", "2023", "--out", str(out),
                 "--json", str(tmp_path / "f.json")]) == 0
    html = out.read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 4
    for text in ("检查覆盖", "Institutions covered", "4,040.50", "1,150.00", "未整改", "H4"):
        assert text in html
    client = MlflowClient(tracking_uri(lake, config.load())[0])
    exp = client.get_experiment_by_name(config.load()["mlflow"]["experiment"] or "fundguard")
    (run,) = client.search_runs([exp.experiment_id], "tags.kind = 'rule_precision'")
    assert run.data.metrics["precision.rule.duplicate_x"] == 0.5
    hist = client.get_metric_history(run.info.run_id, "precision.rule.daily_cap_x")
    assert [(m.step, m.value) for m in hist] == [(2023, 1.0)]


def test_worksheet_without_team_rejects_rows_and_counts_reconcile(lake, tmp_path):
    cases = store.read_cases(lake, period="2023", institution="H1")
    items = worksheet.items_to_verify(cases, high_amount=D("1000"))
    blank = tmp_path / "ws.xlsx"
    blank.write_bytes(worksheet.build_worksheet(items, institution="H1", institution_name="", period="2023"))
    filled = fill_worksheet(blank, tmp_path / "ws_filled.xlsx", inspectors=None, date=None,
                            answers={"S-H1-1": ("属实", 100, ""), "S-H1-2": ("不属实", None, "")})
    r = worksheet.ingest_worksheet(lake, filled, recorded_at=at("2024-03-11"), batch_id="w")
    assert (r.rows, r.loaded, r.rejected, r.not_answered) == (4, 0, 2, 2)
    assert {x.field for x in r.rejects} == {"inspectors"}
    filled = fill_worksheet(blank, tmp_path / "ws_filled2.xlsx", inspectors="张三", date="2024-03-10", answers={
        "S-H1-1": ("属实", "1,2x", ""),        # malformed amount
        "S-H1-2": ("也许", None, ""),          # unknown conclusion
        "S-H1-3": ("属实", 61, ""),            # above the suspect's 60.00
        "S-H1-4": ("不属实", None, "ok")})     # loaded
    r = worksheet.ingest_worksheet(lake, filled, recorded_at=at("2024-03-11"), batch_id="w2")
    assert (r.rows, r.loaded, r.rejected) == (4, 1, 3) and r.reconciles
    assert {x.suspect_id: x.field for x in r.rejects} == {"S-H1-1": "recovered_amount", "S-H1-2": "conclusion",
                                                          "S-H1-3": "amount"}
    assert len(store.read_rejects(lake, "w2")) == 3


def test_worksheet_of_another_institution_is_refused(lake, tmp_path):
    from pipelines.workflow.sheets import FormError
    items = worksheet.items_to_verify(store.read_cases(lake, period="2023", institution="H2"), high_amount=D("1000"))
    f = tmp_path / "ws.xlsx"
    f.write_bytes(worksheet.build_worksheet(items, institution="H2", institution_name="", period="2023"))
    with pytest.raises(FormError, match="not H1"):
        worksheet.ingest_worksheet(lake, f, recorded_at=at("2024-03-11"), batch_id="w", institution="H1")
