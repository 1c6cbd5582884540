"""`fundguard serve`: refusals (exit 2 with the reason), and a real server on 127.0.0.1 that answers, logs JSON
lines and stops gracefully on SIGTERM."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipelines import cli
from pipelines.serve import claim_time, sizing
from pipelines.serve.replay import lake_claims

ROOT = Path(__file__).resolve().parents[2]


def test_every_family_has_a_claim_time_decision():
    from pipelines.catalog import load_catalog

    assert set(load_catalog().families) == set(claim_time.FAMILIES)
    assert {"inventory_shortfall", "daily_cap"} <= {f["family"] for f in claim_time.undecidable_families()}


@pytest.mark.parametrize("argv, says", [
    (["--insecure-local", "--host", "0.0.0.0"], "loopback"),
    ([], "token"),
])
def test_refuses_to_start_without_a_token_or_off_loopback(sample_lake, monkeypatch, capsys, argv, says):
    monkeypatch.delenv("FUNDGUARD_SERVE_TOKEN", raising=False)
    assert cli.main(["serve", "--lake", str(sample_lake.root), *argv]) == 2
    assert says in capsys.readouterr().err


def test_refuses_a_folder_that_is_not_a_lake(tmp_path, capsys):
    assert cli.main(["serve", "--lake", str(tmp_path), "--insecure-local"]) == 2
    assert "not a lake" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_refuses_a_process_count_that_is_not_one(sample_lake):
    env = {**os.environ, "FUNDGUARD_SERVE_PROCESSES": "two", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "pipelines.cli", "serve", "--lake", str(sample_lake.root),
                           "--insecure-local"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "serve.processes" in done.stderr


@pytest.mark.parametrize("processes", ["1", "auto"])
def test_serves_on_loopback_and_stops_gracefully(sample_lake, processes):
    port, token = _free_port(), "command-test-token"
    env = {**os.environ, "FUNDGUARD_SERVE_TOKEN": token, "PYTHONPATH": str(ROOT),
           "FUNDGUARD_SERVE_PROCESSES": str(processes)}
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--lake", str(sample_lake.root),
                             "--port", str(port)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        claim = lake_claims(sample_lake, limit=1)[0]
        while True:        # with 2 processes, the one answering may still be loading (503 + Retry-After)
            r = httpx.post(f"{base}/v1/check", json=claim, headers={"Authorization": f"Bearer {token}"}, timeout=60)
            if r.status_code != 503 or time.time() > deadline:
                break
            time.sleep(0.5)
        assert r.status_code == 200 and "violations" in r.json()
        assert httpx.post(f"{base}/v1/check", json=claim, timeout=60).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    chosen = re.search(r"fundguard serve: (\d+) process", err)       # auto: one a core on this small lake
    assert chosen and int(chosen[1]) == (1 if processes == "1" else sizing.cores())
    started = [e["process"] for e in events if e["event"] == "start"]
    assert len(set(started)) == len(started) == int(chosen[1])
    for pid in started:        # each process logged its start, then its stop
        assert [e["event"] for e in events if e.get("process") == pid] == ["start", "stop"]
    access = [e for e in events if e["event"] == "access" and e["path"] == "/v1/check"]
    statuses = [e["status"] for e in access]
    loading = statuses.index(200)          # 503s only from a second process still loading, only before the answer
    assert statuses[loading:] == [200, 401] and set(statuses[:loading]) <= ({503} if len(started) > 1 else set())
    assert all(e["request_id"] for e in access)
    assert claim["mdtrt"]["psn_no"] not in err
