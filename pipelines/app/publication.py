"""Gate a suspect list against the scope its screening recorded, and publish it when the gate passes:
exactly that scope of gold/suspects is replaced; gold is left as it was otherwise."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipelines import config
from pipelines.app.checks import require_lake
from pipelines.contract import STAGING_SUSPECTS, UsageError, check_institutions, period_months
from pipelines.storage import Lake, utcnow
from pipelines.storage.lock import holds_lease


@dataclass
class Outcome:
    gate: object                    # GateResult
    version: int | None             # gold version written, None when blocked
    scope: pa.Table | None = None   # the (institution, month) pairs gated (and replaced when published)
    only_rules: list[str] | None = None   # the rules whose findings were replaced there (None: every rule's)

    def scope_text(self) -> str:
        return scope_text(self.scope)


def scope_text(scope: pa.Table | None) -> str:
    """`2 家机构 × 12 个月 / 2 institutions × 12 months`: what publishing replaces."""
    if scope is None:
        return "未记录范围 / no recorded scope"
    insts = len(set(scope.column("fixmedins_code").to_pylist()))
    months = len(set(scope.column("period").to_pylist()))
    return f"{insts} 家机构 × {months} 个月 / {insts} institutions × {months} months"


def report_dir_for(lake: Lake, run_id: str | None) -> Path:
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in (run_id or "unknown"))
    return lake.folder("reports", "gate", safe)


def gate_settings(conf: dict, scope: pa.Table | None, staging_version: int | None, accept_drop: bool,
                  only_rules: list[str] | None = None):
    """The gate's scope and settings (conf `gate`, `pii_key`) for a list."""
    from pipelines.quality.gate import GateScope

    g = conf.get("gate") or {}
    return GateScope(scope, staging_version, accept_drop=accept_drop, drop_ratio=float(g.get("drop_ratio", 0.5)),
                     drop_min_rows=int(g.get("drop_min_rows", 10)), pii_key=config.pii_key(conf),
                     only_rules=only_rules)


def replaced_rules(catalog, rules) -> list[str] | None:
    """The rules whose findings a list of `rules` replaces: None (every rule's, retired ones included) when
    they are the whole active library, else their ids (a `--family`/`--rule`/`--tags` screening must not
    remove the other rules' published findings)."""
    ran = {r.id for r in rules}
    return None if {r.id for r in catalog.select()} <= ran else sorted(ran)


def recorded_rules(catalog, scope: pa.Table | None, include_draft: bool):
    """The rules the screening of a staging list ran, as its scope recorded them (the library's selection when
    the scope records none); UsageError when one is no longer in the catalog."""
    recorded = scope.column("rule_ids").drop_null().unique().to_pylist() \
        if scope is not None and "rule_ids" in scope.column_names else []
    if len(recorded) != 1:
        return catalog.select(include_draft=include_draft)
    ids = json.loads(recorded[0])
    unknown = sorted(set(ids) - set(catalog.by_id))
    if unknown:
        raise UsageError(f"暂存区的疑点清单由规则库中已没有的规则筛出 / the staging list was screened with rules the "
                         f"library no longer has ({', '.join(unknown[:5])}): screen again before publishing")
    return [catalog.by_id[i] for i in ids]


def gate_and_publish(lake: Lake, suspects: pa.Table, *, scope: pa.Table | None, staging_version: int | None,
                     catalog, rules, conf: dict, accept_drop: bool = False, published_at=None,
                     report_dir: Path | None = None, publish_when_passed: bool = True, **lineage) -> Outcome:
    """Gate `suspects` against `scope` (staging/scope as the screening recorded it, None when none is) and
    publish them, replacing exactly that scope, only when the gate passed."""
    from pipelines.publish.publisher import publish
    from pipelines.quality.gate import run_gate

    gate_conf = conf.get("gate") or {}
    runs = suspects.column("run_id").drop_null().unique().to_pylist() \
        if suspects.num_rows and "run_id" in suspects.column_names else []
    run_id = lineage.get("run_id") or (runs[0] if len(runs) == 1 else None)
    only = replaced_rules(catalog, rules)
    result = run_gate(lake, suspects, catalog=catalog, rules=rules,
                      report_dir=report_dir or report_dir_for(lake, run_id),
                      scope=gate_settings(conf, scope, staging_version, accept_drop, only),
                      band=float(gate_conf.get("hit_rate_band", 10.0)),
                      min_hits=int(gate_conf.get("hit_rate_min_hits", 20)))
    if not result.success or not publish_when_passed:
        return Outcome(result, None, scope)
    version = publish(lake, suspects, scope=scope, published_at=published_at or utcnow(),
                      rule_ids=[r.id for r in rules], only_rules=only, **lineage)
    return Outcome(result, version, scope, only)


def check_selection(scope: pa.Table | None, periods: list[str] | None, institutions: list[str] | None) -> None:
    """UsageError when `--period`/`--institution` name another scope than the one staging recorded."""
    if scope is None or not (periods or institutions):
        return
    months = sorted(set(scope.column("period").drop_null().to_pylist()))
    insts = sorted(set(scope.column("fixmedins_code").drop_null().to_pylist()))
    asked_months = sorted({m for p in periods or () for m in period_months(p)})
    asked_insts = sorted(set(check_institutions(institutions) or ()))

    def said(values: list[str]) -> str:
        return ", ".join(values[:6]) + (f" … (+{len(values) - 6})" if len(values) > 6 else "")
    if (periods and asked_months != months) or (institutions and asked_insts != insts):
        raise UsageError(
            f"暂存区的筛查范围是 {said(insts)} × {said(months)}，与命令行所给不同 / staging holds the screening of "
            f"{said(insts)} × {said(months)}, not of {said(asked_insts) or 'these institutions'} × "
            f"{said(asked_months) or 'these months'}: publish what was screened (without --period/--institution) "
            "or screen that scope first")


@holds_lease("fundguard publish", when=lambda kwargs: kwargs.get("publish"))
def gate_staging(lake: Lake, *, conf: dict, periods: list[str] | None = None, institutions: list[str] | None = None,
                 include_draft: bool = False, publish: bool = False,
                 accept_drop: bool = False) -> tuple[pa.Table, Outcome]:
    """Gate `staging/suspects` as the last screening wrote it against the scope it recorded
    (`staging/scope`), and publish it when `publish` and it passes. `periods`/`institutions`, when given,
    must be that scope (UsageError otherwise), as must a staging list exist."""
    from pipelines.catalog import load_catalog
    from pipelines.screen.pipeline import STAGING_SCOPE

    require_lake(lake)
    if not lake.exists(STAGING_SUSPECTS):
        raise UsageError(f"没有待检查的疑点清单 / no staging list at {lake.uri(STAGING_SUSPECTS)}: "
                         "run `fundguard screen` first")
    staging_version = lake.version(STAGING_SUSPECTS)
    suspects = lake.read(STAGING_SUSPECTS, staging_version)
    scope = lake.read(STAGING_SCOPE) if lake.exists(STAGING_SCOPE) else None
    check_selection(scope, periods, institutions)
    rules_dir = conf.get("rules_dir")
    catalog = load_catalog(Path(rules_dir) if rules_dir and Path(rules_dir).is_absolute() else None)
    rules = recorded_rules(catalog, scope, include_draft)
    return suspects, gate_and_publish(lake, suspects, scope=scope, staging_version=staging_version,
                                      catalog=catalog, rules=rules, conf=conf, accept_drop=accept_drop,
                                      publish_when_passed=publish)
