"""A real headless browser, offline: the gate's report (gate.html) and an export package's summary.html
render as readable pages without the network.

Chromium (Debian's `chromium`) opens each page with every fetch bound to fail (`--proxy-server=127.0.0.1:9`,
`--host-resolver-rules=MAP * ~NOTFOUND`) and writes a screenshot, the DOM after load and a net log. Each
page must give a screenshot that is not blank and shows what its CSS and images draw (the verdict banner's
colour, the charts' colours), a DOM holding the verdict and the rows the page is about, no URL in its HTML
that leaves its folder, and no request of its own in the net log (requests the browser makes for itself have
no initiator and are not the page's). The Data Docs beside the gate report are the control: the same net log
shows their CDN requests. Skipped only when no Chromium binary is installed; `make browser-check` installs
Debian's chromium (and a font that draws Chinese) and runs this module.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from PIL import Image, ImageStat

from fg_lakes import clean_rows, gate_catalog, suspect, table
from fg_offline import external_references

from pipelines.contract import SUSPECT_SCHEMA
from pipelines.quality.gate import GateScope, run_gate
from pipelines.screen.pipeline import scope_table
from pipelines.storage import Lake

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                None)
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium binary: `make browser-check` installs it")]
OFFLINE = ["--headless", "--no-sandbox", "--disable-gpu", "--proxy-server=127.0.0.1:9",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--disable-background-networking", "--no-first-run",
           "--hide-scrollbars", "--window-size=1200,1600"]
RED, GREEN = (180, 35, 24), (26, 127, 55)          # the gate report's verdict banner (#b42318, #1a7f37)
BLUE, ORANGE = (68, 114, 196), (237, 125, 49)       # the summary's charts (#4472C4, #ED7D31)


@dataclass
class Visit:
    png: Image.Image
    dom: str
    requests: list[str]   # URLs the page itself asked the network for


def _chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def page_requests(netlog: Path) -> list[str]:
    """The network URLs a page's own loading started (an initiator: its origin, "null" for a file), from
    Chromium's net log; the browser's own requests (updates, accounts) have none."""
    log = json.loads(netlog.read_text(encoding="utf-8"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return sorted({e["params"]["url"] for e in log["events"]
                   if e["type"] == start and re.match(r"(https?|wss?|ftp)://", e["params"].get("url", ""))
                   and e["params"].get("initiator", "not an origin") != "not an origin"})


def visit(page: Path, work: Path) -> Visit:
    """Open `page` offline: its screenshot (with the net log of that load) and its DOM after load."""
    work.mkdir(parents=True, exist_ok=True)
    png, netlog = work / "page.png", work / "netlog.json"
    _chromium([f"--screenshot={png}", f"--log-net-log={netlog}", page.as_uri()], work / "profile-shot")
    dom = _chromium(["--dump-dom", page.as_uri()], work / "profile-dom").stdout
    return Visit(Image.open(png).convert("RGB"), dom, page_requests(netlog))


def share(img: Image.Image, colour: tuple[int, int, int], box: tuple[int, int, int, int] | None = None) -> float:
    """The share of the pixels (of `box`) within a small distance of `colour`."""
    part = img.crop(box) if box else img
    near = sum(n for n, rgb in part.getcolors(part.width * part.height)
               if sum(abs(a - b) for a, b in zip(rgb, colour)) <= 30)
    return near / (part.width * part.height)


def assert_not_blank(img: Image.Image) -> None:
    grey = img.convert("L")
    assert img.size == (1200, 1600)
    assert ImageStat.Stat(grey).stddev[0] > 15, "the screenshot is (nearly) one colour"
    assert 0.02 < 1 - share(img, (255, 255, 255)) < 0.95, "the screenshot shows (nearly) nothing"


def dom_text(dom: str) -> str:
    dom = re.sub(r"<(style|script|title)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom))


# ------------------------------------------------------------------------------------ the gate report

def _gate(lake, rows, report_dir, versions):
    catalog = gate_catalog()
    scope = scope_table({("H1", "2023-01"): 1, ("H1", "2023-03"): 4, ("H1", "2023-04"): 3, ("H2", "2023-03"): 3},
                        run_id="R2", fingerprint="fp1", input_versions=json.dumps(versions))
    return run_gate(lake, table(rows), catalog=catalog, rules=catalog.select(), report_dir=report_dir,
                    scope=GateScope(scope), previous={}, band=10.0, min_hits=20)


def test_a_failed_gate_report_reads_offline(silver_lake, tmp_path):
    lk, versions = silver_lake
    orphan = suspect("daily_cap_item", "daily_cap", "H1", "2023-03", mdtrt="M9", sn="99", versions=versions)
    res = _gate(lk, clean_rows(versions) + [orphan], tmp_path / "report", versions)
    assert not res.success
    html = res.summary_path.read_text(encoding="utf-8")
    assert external_references(html) == []
    seen = visit(res.summary_path, tmp_path / "gate")
    assert_not_blank(seen.png)
    assert share(seen.png, RED, (0, 0, 1200, 160)) > 0.25, "no red verdict banner at the top"
    text = dom_text(seen.dom)
    assert text.lstrip().startswith("不得发布：1 项检查未通过 / Do not publish: 1 check failed")
    assert orphan["suspect_id"] in text and "silver/fee_list_net (mdtrt_id, feedetl_sn) = (M9, 99)" in text
    assert seen.requests == []
    # the control: the Data Docs beside it ask CDNs for their scripts and styles, and the net log shows it
    docs = visit(res.report_path / "index.html", tmp_path / "docs")
    assert any("cdn" in u or "unpkg" in u for u in docs.requests), docs.requests


def test_a_passed_gate_report_reads_offline(silver_lake, tmp_path):
    lk, versions = silver_lake
    res = _gate(lk, clean_rows(versions), tmp_path / "report", versions)
    assert res.success
    seen = visit(res.summary_path, tmp_path / "gate")
    assert_not_blank(seen.png)
    assert share(seen.png, GREEN, (0, 0, 1200, 160)) > 0.25, "no green verdict banner at the top"
    assert share(seen.png, RED) < 0.001
    assert dom_text(seen.dom).lstrip().startswith("可以发布 / Safe to publish")
    assert seen.requests == []


# ------------------------------------------------------------------------------------ an export summary

def _suspect(sid: str, rule: str, amount: str, day: int) -> dict:
    return {"suspect_id": sid, "rule_id": rule, "rule_version": 1, "family": rule.rsplit("_", 1)[0],
            "category": "超量收费", "severity": "violation", "fixmedins_code": "H001", "period": "2023-03",
            "psn_no": f"P{sid}", "mdtrt_id": f"M-{sid}", "setl_id": f"S-{sid}", "feedetl_sn": f"F-{sid}",
            "hilist_code": "001109000010000", "event_time": dt.datetime(2023, 3, day, 9, 30),
            "amount": Decimal(amount), "evidence": f"{sid}：同日床位费计 2 次，限 1 次", "run_id": "run-0303",
            "rule_set_fingerprint": "fp0123456789abcd", "input_versions": '{"silver/fee_list": 3}',
            "published_at": dt.datetime(2023, 4, 2, 8, 0, tzinfo=dt.timezone.utc)}


def test_an_export_summary_reads_offline(tmp_path):
    from pipelines.commands.export import add_arguments, run

    lake = Lake(tmp_path / "lake")
    rows = [_suspect("s01", "daily_cap_item", "120.50", 3), _suspect("s02", "daily_cap_item", "80.00", 9),
            _suspect("s03", "duplicate_charge_same_day", "1500.00", 20)]
    lake.append("gold/suspects", pa.Table.from_pylist(rows, schema=SUSPECT_SCHEMA),
                partition_by=["fixmedins_code", "period"])
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = ["--lake", str(lake.root), "--institution", "H001", "--period", "2023-03", "--out", str(tmp_path / "out")]
    assert run(p.parse_args(args)) == 0
    page = tmp_path / "out" / "H001_2023-03" / "summary.html"
    assert external_references(page.read_text(encoding="utf-8")) == []
    seen = visit(page, tmp_path / "summary")
    assert_not_blank(seen.png)
    assert share(seen.png, BLUE) > 0.002 and share(seen.png, ORANGE) > 0.002, "the charts are not drawn"
    text = dom_text(seen.dom)
    assert "疑点汇总" in text and "Suspect summary" in text and "H001" in text and "2023-03" in text
    assert "1,700.50" in text and "daily_cap_item" in text and "duplicate_charge_same_day" in text
    assert seen.requests == []
