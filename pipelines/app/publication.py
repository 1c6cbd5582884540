"""Gate a suspect list and publish it when the gate passes (gold is left as it was otherwise)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from pipelines.app.checks import require_lake
from pipelines.contract import STAGING_SUSPECTS, UsageError
from pipelines.storage import Lake, utcnow
from pipelines.storage.lock import holds_lease


@dataclass
class Outcome:
    gate: object            # GateResult
    version: int | None     # gold version written, None when blocked


def report_dir_for(lake: Lake, run_id: str | None) -> Path:
    safe = "".join(c if c.isalnum() or c in "_.-" else "_" for c in (run_id or "unknown"))
    return lake.folder("reports", "gate", safe)


def gate_and_publish(lake: Lake, suspects: pa.Table, *, catalog, rules, conf: dict, periods: list[str] | None,
                     institutions: list[str] | None, published_at=None, report_dir: Path | None = None,
                     publish_when_passed: bool = True, **lineage) -> Outcome:
    """Gate `suspects`; publish them only when the gate passed (gold is left as it was otherwise)."""
    from pipelines.publish.publisher import publish
    from pipelines.quality.gate import run_gate

    gate_conf = conf.get("gate") or {}
    run_id = suspects.column("run_id")[0].as_py() if suspects.num_rows and "run_id" in suspects.column_names \
        else lineage.get("run_id")
    result = run_gate(lake, suspects, catalog=catalog, rules=rules,
                      report_dir=report_dir or report_dir_for(lake, run_id),
                      band=float(gate_conf.get("hit_rate_band", 10.0)),
                      min_hits=int(gate_conf.get("hit_rate_min_hits", 20)))
    if not result.success or not publish_when_passed:
        return Outcome(result, None)
    version = publish(lake, suspects, periods=periods, institutions=institutions,
                      published_at=published_at or utcnow(), rule_ids=[r.id for r in rules], **lineage)
    return Outcome(result, version)


@holds_lease("fundguard publish", when=lambda kwargs: kwargs.get("publish"))
def gate_staging(lake: Lake, *, conf: dict, periods: list[str] | None, institutions: list[str] | None,
                 include_draft: bool = False, publish: bool = False) -> tuple[pa.Table, Outcome]:
    """Gate `staging/suspects` as the last screening wrote it, and publish it when `publish` and it passes.
    UsageError when there is no staging list."""
    from pipelines.catalog import load_catalog

    require_lake(lake)
    if not lake.exists(STAGING_SUSPECTS):
        raise UsageError(f"没有待检查的疑点清单 / no staging list at {lake.uri(STAGING_SUSPECTS)}: "
                         "run `fundguard screen` first")
    suspects = lake.read(STAGING_SUSPECTS)
    rules_dir = conf.get("rules_dir")
    catalog = load_catalog(Path(rules_dir) if rules_dir and Path(rules_dir).is_absolute() else None)
    rules = catalog.select(include_draft=include_draft)
    return suspects, gate_and_publish(lake, suspects, catalog=catalog, rules=rules, conf=conf, periods=periods,
                                      institutions=institutions, publish_when_passed=publish)
