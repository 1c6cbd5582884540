"""`fundguard serve`: the claim-time check (事中审核) as an HTTP service over a lake.

Checks one settlement (POST /v1/check) with the rule library batch screening uses, against the person's
history in the lake; also POST /v1/check:batch, GET /v1/rules, /healthz, /readyz, the OpenAPI schema at
/openapi.json (docs at /docs). The bearer token comes from the configuration (`serve.token`, by default the
environment variable FUNDGUARD_SERVE_TOKEN); without one the service refuses to start, unless it is run with
--insecure-local on a loopback address. SIGTERM/SIGINT stop it gracefully: no new connections, requests in
flight are answered.

Example:
    FUNDGUARD_SERVE_TOKEN=$(openssl rand -hex 32) fundguard serve --lake data/lake --port 8000
    curl -H "Authorization: Bearer $FUNDGUARD_SERVE_TOKEN" -d @claim.json localhost:8000/v1/check

Exit codes: 0 stopped normally, 2 bad usage (no token, --insecure-local off loopback, no lake).
"""
from __future__ import annotations

import argparse
import logging
import sys

from pipelines import config

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def add_arguments(p) -> None:
    p.description = __doc__.split("\n\n")[1]
    p.epilog = __doc__.split("Example:")[1]
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.add_argument("--lake", help="lake root (default: `lake` of the configuration)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--insecure-local", action="store_true",
                   help="run without a bearer token; only on a loopback address (127.0.0.1)")


def settings_from(conf: dict, insecure_local: bool):
    from pipelines.serve.service import Settings

    s = conf.get("serve") or {}
    return Settings(token=(s.get("token") or None), insecure_local=insecure_local,
                    max_body_bytes=int(s.get("max_body_bytes", 2_000_000)), max_batch=int(s.get("max_batch", 50)),
                    max_lines=int(s.get("max_lines", 5000)), workers=int(s.get("workers", 1)),
                    threads=int(s.get("threads", 1)), max_pass=int(s.get("max_pass", 128)),
                    refresh_seconds=float(s.get("refresh_seconds", 30)), salt=config.pii_key(conf),
                    max_wait_seconds=float(s.get("max_wait_ms", 2000)) / 1000,
                    memory_limit=s.get("memory_limit") or None, engine=str(s.get("engine", "sqlite")))


def run(args) -> int:
    from pathlib import Path

    from pipelines.storage import Lake

    conf = config.load()
    settings = settings_from(conf, args.insecure_local)
    lake_dir = args.lake or conf["lake"]
    problem = None
    if args.insecure_local and args.host not in LOOPBACK:
        problem = f"--insecure-local only on a loopback address, not {args.host} / 无令牌模式仅限本机地址"
    elif not settings.token and not args.insecure_local:
        problem = ("no bearer token configured: set FUNDGUARD_SERVE_TOKEN (serve.token) or use --insecure-local on "
                   "127.0.0.1 / 未配置访问令牌")
    elif not (Path(lake_dir) / "silver").is_dir():
        problem = f"{lake_dir} is not a lake (no silver/ tables) / 不是数据湖目录"
    if problem:
        print(f"fundguard serve: {problem}", file=sys.stderr)
        return 2
    import uvicorn

    from pipelines.app.serve import create_app

    access = logging.StreamHandler(sys.stderr)        # the service's JSON lines, one per event, as they are
    access.setFormatter(logging.Formatter("%(message)s"))
    service_log = logging.getLogger("fundguard.serve")
    service_log.addHandler(access)
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
    app = create_app(Lake(lake_dir), settings)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=int((conf.get("serve") or {}).get("graceful_seconds", 30)))
    return 0
