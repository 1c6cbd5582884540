"""Claim-time check latency: `fundguard serve` on 127.0.0.1 over a large lake, single-claim POST /v1/check
requests sent at a fixed rate (open loop: a late answer never delays the next request), bounded in count and
time; prints throughput, p50/p95/p99/max latency (of every request, and of those checked: a claim that
waited past `serve.max_wait_ms` is answered 503), the CPU time the server and the load generator spent per
request (on 2 shared cores these two decide the latency) and the server's peak RSS.

    .venv/bin/python benchmarks/serve.py [--scale 170] [--rate 100] [--count 3000] [--seconds 60]
                                         [--data data/bench | --lake DIR] [--port 8765]
                                         [--engine sqlite|duckdb] [--processes auto]

Builds (or reuses) `<data>/lake` as benchmarks/screen.py does (scale 170 ≈ 10 M fee lines), or reads an
existing lake given by `--lake` (only read; the server log goes to a temporary file). Latency is measured from
each request's scheduled send time to its answer; the load average is sampled during the run. Figures are of
this run only.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402

from pipelines.serve.replay import lake_claims  # noqa: E402
from pipelines.storage import Lake  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def build_lake(data: Path, scale: float, seed: int) -> Lake:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from screen import build_lake as build   # the screening benchmark's lake (same data, same place)
    return build(data, scale, seed)


def sample_claims(lake: Lake, n: int, seed: int) -> list[dict]:
    ids = lake.read("silver/mdtrt", columns=["mdtrt_id"]).column("mdtrt_id").to_pylist()
    random.Random(seed).shuffle(ids)
    return [c for c in lake_claims(lake, visits=ids[:n]) if c["fee_list"]]


def start_server(lake: Lake, port: int, token: str, log: Path, engine: str, processes: str) -> subprocess.Popen:
    """The service as `fundguard serve` runs it (`serve.engine` = `engine`, `serve.processes` = `processes`); its
    JSON log lines go to `log`."""
    env = {**os.environ, "FUNDGUARD_SERVE_TOKEN": token, "FUNDGUARD_SERVE_ENGINE": engine,
           "FUNDGUARD_SERVE_PROCESSES": str(processes)}
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--lake", str(lake.root), "--host",
                             "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("w"))


def wait_ready(base: str, server: subprocess.Popen, limit: float = 1800) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:     # ready on 10 fresh connections in a row: with several processes, any may answer
            if all(httpx.get(f"{base}/readyz", timeout=2).status_code == 200 for _ in range(10)):
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the server did not get ready in time")


async def load(base: str, token: str, claims: list[dict], rate: float, count: int, seconds: float,
               timeout: float = 30, in_flight: int = 256) -> dict:
    """Open-loop load with aiohttp, the bodies encoded once: the generator must cost little next to the server
    on a 2-core machine (httpx's connection pool spent most of a core choosing connections at 100/s)."""
    import aiohttp

    latencies, checked, statuses, violations = [], [], {}, 0
    bodies = [json.dumps(c, ensure_ascii=False).encode() for c in claims]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # requests in flight: beyond `in_flight` the backlog waits here, in the load generator; a higher limit leaves
    # more of it to the server, which sheds past serve.max_wait_ms
    connector = aiohttp.TCPConnector(limit=in_flight)
    async with aiohttp.ClientSession(base, connector=connector, headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as client:
        async def one(i: int, due: float):
            nonlocal violations
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            try:
                async with client.post("/v1/check", data=bodies[i % len(bodies)]) as r:
                    payload = await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:   # counted, with its latency
                latencies.append(time.perf_counter() - due)
                kind = "timeout" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
                statuses[kind] = statuses.get(kind, 0) + 1
                return
            latencies.append(time.perf_counter() - due)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                checked.append(latencies[-1])
                violations += len(json.loads(payload)["violations"])
        t0 = time.perf_counter() + 0.5
        n = min(count, int(seconds * rate))
        await asyncio.gather(*(one(i, t0 + i / rate) for i in range(n)))
        wall = time.perf_counter() - t0
    answered = statuses.get(200, 0)
    return {"sent": n, "wall_s": wall, "throughput": answered / wall, "statuses": statuses, "violations": violations,
            "all": quantiles_ms(latencies), "checked": quantiles_ms(checked)}


def quantiles_ms(latencies: list[float]) -> dict:
    """p50/p95/p99/max of `latencies` (seconds) in ms; NaN when there are none."""
    xs = sorted(latencies)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))] * 1000 if xs else float("nan")  # noqa: E731
    return {"p50": q(0.50), "p95": q(0.95), "p99": q(0.99), "max": q(1.0)}


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) spent so far by the process `pid` and its live child processes, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(c)) for c in children)


def peak_rss_gb(pid: int) -> float:
    """The peak RSS of the process `pid` plus those of its child processes (serve.processes > 1), each read
    from /proc."""
    total = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            total += int(line.split()[1]) / 1024 ** 2
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return total + sum(peak_rss_gb(int(c)) for c in children)


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=170)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=str(ROOT / "data" / "bench"))
    ap.add_argument("--lake", help="an existing lake to read (never written); overrides --data/--scale")
    ap.add_argument("--rate", type=float, default=100, help="requests per second")
    ap.add_argument("--count", type=int, default=3000, help="at most this many requests")
    ap.add_argument("--seconds", type=float, default=60, help="at most this long")
    ap.add_argument("--claims", type=int, default=2000, help="distinct visits sampled from the lake")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--timeout", type=float, default=30, help="a request unanswered this long counts as timeout")
    ap.add_argument("--engine", default="sqlite", choices=("sqlite", "duckdb"), help="serve.engine of the server")
    ap.add_argument("--processes", default="auto", help="serve.processes of the server (a number or auto)")
    ap.add_argument("--in-flight", type=int, default=256, help="requests the load generator keeps open at most")
    return ap.parse_args()


def main() -> int:
    args = arguments()
    lake = Lake(Path(args.lake)) if args.lake else build_lake(Path(args.data), args.scale, args.seed)
    lines = lake.read("silver/fee_list_net", columns=["mdtrt_id"]).num_rows
    claims = sample_claims(lake, args.claims, args.seed)
    token, base = secrets.token_hex(16), f"http://127.0.0.1:{args.port}"
    log = Path(tempfile.mkdtemp(prefix="fundguard-serve-")) / "serve.log" if args.lake else Path(args.data) / "serve.log"
    server = start_server(lake, args.port, token, log, args.engine, args.processes)
    try:
        ready = wait_ready(base, server)
        asyncio.run(load(base, token, claims, rate=5, count=50, seconds=10))          # warm-up
        loads: list[float] = []
        sampling = asyncio.Event()

        async def sample_load():
            while not sampling.is_set():
                loads.append(os.getloadavg()[0])
                await asyncio.sleep(1)

        async def measured():
            sampler = asyncio.create_task(sample_load())
            try:
                return await load(base, token, claims, args.rate, args.count, args.seconds, args.timeout,
                                  args.in_flight)
            finally:
                sampling.set()
                await sampler
        cpu0, own0 = cpu_seconds(server.pid), time.process_time()
        res = asyncio.run(measured())
        cpu = (cpu_seconds(server.pid) - cpu0, time.process_time() - own0) if server.poll() is None else None
        rss = peak_rss_gb(server.pid) if server.poll() is None else float("nan")
        if server.poll() is not None:
            print(f"the server died during the run (exit {server.returncode}); its log: {log}")
    finally:
        server.terminate()
        server.wait(timeout=60)
    chosen = re.search(r"fundguard serve: (\d+) process\(es\)[^\n]*", log.read_text(errors="replace"))
    print(f"engine {args.engine}, serve.processes {args.processes}: {chosen[0] if chosen else '?'}; "
          f"lake: {lines:,} netted fee lines "
          f"({args.lake or f'scale {args.scale}'}); service ready in {ready:.1f}s; {len(claims)} distinct claims")
    print(f"{res['sent']} single-claim checks at {args.rate:g}/s offered: {res['throughput']:.1f} answered/s, "
          f"statuses {res['statuses']}, {res['violations']} violations")
    for label, key in (("every request", "all"), ("checked (200)", "checked")):
        lat = res[key]
        print(f"latency ms, {label}: p50 {lat['p50']:.1f}  p95 {lat['p95']:.1f}  p99 {lat['p99']:.1f}  "
              f"max {lat['max']:.1f}")
    if cpu and res["sent"]:
        print(f"CPU per request: server {cpu[0] * 1000 / res['sent']:.1f} ms, load generator "
              f"{cpu[1] * 1000 / res['sent']:.1f} ms (user + system, from /proc and the process clock)")
    print(f"load average (1 min) during the run: {min(loads):.2f}–{max(loads):.2f} (2 cores, shared)")
    print(f"server peak RSS {rss:.2f} GB (all its processes); stopped by SIGTERM (exit status {server.returncode}: "
          "a single process re-raises the signal after its graceful shutdown)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
