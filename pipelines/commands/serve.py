"""`fundguard serve`: the claim-time check (事中审核) as an HTTP service over a lake.

Checks one settlement (POST /v1/check) with the rule library batch screening uses, against the person's
history in the lake; also POST /v1/check:batch, GET /v1/rules, /healthz, /readyz, the OpenAPI schema at
/openapi.json (docs at /docs). The bearer token comes from the configuration (`serve.token`, by default the
environment variable FUNDGUARD_SERVE_TOKEN); without one the service refuses to start, unless it is run with
--insecure-local on a loopback address. SIGTERM/SIGINT stop it gracefully: no new connections, requests in
flight are answered. `serve.processes` processes each load the lake and answer (uvicorn's workers sharing
the port): checks are Python-bound, one process uses one core. With `auto` (the default), one a core as far
as the memory holds each one's warm lake twice (while it refreshes); the choice is printed at start.

Example:
    FUNDGUARD_SERVE_TOKEN=$(openssl rand -hex 32) fundguard serve --lake data/lake --port 8000
    curl -H "Authorization: Bearer $FUNDGUARD_SERVE_TOKEN" -d @claim.json localhost:8000/v1/check

Exit codes: 0 stopped normally, 2 bad usage (no token, --insecure-local off loopback, no lake, bad
serve.processes).
"""
from __future__ import annotations

import argparse
import os
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


def run(args) -> int:
    from pathlib import Path

    from pipelines.app.serve import serve_processes, settings_from
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
    processes, why = serve_processes(conf, Lake(lake_dir))     # a bad serve.processes: ConfigError, exit 2
    print(f"fundguard serve: {why}", file=sys.stderr)
    import uvicorn

    from pipelines.app import serve

    os.environ[serve.LAKE_ENV] = str(Path(lake_dir).resolve())     # what each process's app is made from
    os.environ[serve.INSECURE_ENV] = "1" if args.insecure_local else ""
    uvicorn.run("pipelines.app.serve:served_app", factory=True, workers=processes if processes > 1 else None,
                host=args.host, port=args.port, access_log=False, log_level="warning",
                timeout_graceful_shutdown=int((conf.get("serve") or {}).get("graceful_seconds", 30)))
    return 0
