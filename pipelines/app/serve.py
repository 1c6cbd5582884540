"""The claim-time service (事中审核) composed from the stages: the screening's rule queries and shared views,
ingestion's typing and refund netting, and the serve stage's warm lake and HTTP layer.

`create_app(lake, settings)` makes the application; `served_app()` is what each process of `fundguard serve`
runs (the lake and --insecure-local from the environment the command sets, the rest from the configuration);
`rule_program(catalog, salt)` is the SQL the service runs, taken from the very functions batch screening and
ingestion use, so the two never disagree.
"""
from __future__ import annotations

import logging
import os
import sys
from functools import partial

from pipelines import config
from pipelines.catalog import Catalog, load_catalog
from pipelines.ingest import nodes
from pipelines.screen.pipeline import needed_views, view_name
from pipelines.screen.sql import referenced_columns, rule_query, to_duckdb, view_query
from pipelines.serve import claim_time
from pipelines.serve.evaluate import RuleProgram, RuleSQL, Typing
from pipelines.serve.passes import REQUEST_INPUTS
from pipelines.serve.gates import rule_gate
from pipelines.serve.history import KB_INPUTS, SOURCES
from pipelines.serve.service import ClaimService, Settings
from pipelines.storage import Lake


def _typing_sql(salt: str, entity: str, source: str) -> str:
    return nodes.typing_sql(entity, source, salt, "serve", "request", 0, per_field=True)


def _net_sql(source: str) -> str:
    return nodes.net_sql(source, "net")


def _decidable_rules(catalog: Catalog) -> list:
    return [r for r in catalog.select() if claim_time.decidable(r.family)]


def _warm_columns(catalog: Catalog, rules: list) -> dict[str, set[str]]:
    """The columns a warm lake holds of each source: every column the shared views and `rules` name."""
    cols = referenced_columns(catalog, rules)
    return {s: cols for s in SOURCES}


def rule_program(catalog: Catalog, salt: str) -> RuleProgram:
    """The active rules of the claim-time decidable families, the shared views they read, as DuckDB SQL."""
    rules = _decidable_rules(catalog)
    need = needed_views(catalog, rules)
    views = tuple((view_name(stem), to_duckdb(view_query(sql))) for stem, sql in sorted(catalog.views.items())
                  if view_name(stem) in need)
    tables = {*REQUEST_INPUTS, *KB_INPUTS, *(name for name, _ in views)}     # what a pass's gates may read
    sqls = [(r, to_duckdb(rule_query(catalog, r))) for r in rules]
    return RuleProgram(
        rules=tuple(RuleSQL(r.id, r.family, sql, rule_gate(sql, tables)) for r, sql in sqls),
        views=views,
        fingerprint=catalog.fingerprint(catalog.select()),
        typing=Typing(partial(_typing_sql, salt), _net_sql),
        columns=_warm_columns(catalog, rules),
    )


def claim_service(lake: Lake, settings: Settings, catalog: Catalog | None = None) -> ClaimService:
    catalog = catalog or load_catalog()
    return ClaimService(lake, catalog, rule_program(catalog, settings.salt), settings)


def create_app(lake: Lake, settings: Settings, catalog: Catalog | None = None):
    """The FastAPI application checking claims against `lake` (see pipelines.serve.api)."""
    from pipelines.serve.api import build_app
    return build_app(claim_service(lake, settings, catalog), settings)


#: set by `fundguard serve` for its processes: the lake's root, and "1" when run with --insecure-local
LAKE_ENV, INSECURE_ENV = "FUNDGUARD_SERVE_LAKE", "FUNDGUARD_SERVE_INSECURE_LOCAL"


def settings_from(conf: dict, insecure_local: bool) -> Settings:
    s = conf.get("serve") or {}
    return Settings(token=(s.get("token") or None), insecure_local=insecure_local,
                    max_body_bytes=int(s.get("max_body_bytes", 2_000_000)), max_batch=int(s.get("max_batch", 50)),
                    max_lines=int(s.get("max_lines", 5000)), workers=int(s.get("workers", 1)),
                    threads=int(s.get("threads", 1)), max_pass=int(s.get("max_pass", 128)),
                    refresh_seconds=float(s.get("refresh_seconds", 30)), salt=config.pii_key(conf),
                    max_wait_seconds=float(s.get("max_wait_ms", 2000)) / 1000,
                    memory_limit=s.get("memory_limit") or None, engine=str(s.get("engine", "sqlite")))


def serve_processes(conf: dict, lake: Lake) -> tuple[int, str]:
    """The processes `fundguard serve` runs: `serve.processes` as a number, or with `auto` one a core as far as
    memory holds each one's warm lake twice (its refresh; `pipelines.serve.sizing`), and why, for the operator.
    config.ConfigError (exit 2) when the setting is neither."""
    from pipelines.serve import sizing

    given = str((conf.get("serve") or {}).get("processes", "auto")).strip().lower()
    if given != "auto":
        if not given.isdigit() or int(given) < 1:
            raise config.ConfigError(f"serve.processes must be a whole number from 1 or auto, not {given!r} "
                                     "(FUNDGUARD_SERVE_PROCESSES) / 服务进程数须为正整数或 auto")
        return int(given), f"{given} process(es): serve.processes / 服务进程数"
    catalog = load_catalog()       # the columns the rules read, without translating them (rule_program)
    found = sizing.size(lake, _warm_columns(catalog, _decidable_rules(catalog)))
    return found.processes, found.describe()


def served_app():
    """The application of one `fundguard serve` process, its JSON log lines to stderr as they are."""
    access = logging.StreamHandler(sys.stderr)
    access.setFormatter(logging.Formatter("%(message)s"))
    service_log = logging.getLogger("fundguard.serve")
    service_log.handlers[:] = [access]
    service_log.setLevel(logging.INFO)
    service_log.propagate = False
    conf = config.load()
    return create_app(Lake(os.environ[LAKE_ENV]), settings_from(conf, os.environ.get(INSECURE_ENV) == "1"))
