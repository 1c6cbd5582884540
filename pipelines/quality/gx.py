"""Great Expectations plumbing shared by the quality suites: an ephemeral context per validation, pandas
batches (from Arrow), one Checkpoint that validates every frame and writes Data Docs to a folder.

Checks GX cannot express (references across tables, per-rule growth) are computed beforehand with DuckDB
into per-row columns (a problem description, NULL when the row is fine; or a flag), so every check is
an expectation and shows in the Data Docs report. GX is imported lazily: it takes seconds to import.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pyarrow as pa

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

SITE_NAME = "fundguard_docs"  # `local_site` is taken in an ephemeral context


@dataclass
class Check:
    """One expectation on one frame, and how to say in plain words what failed."""

    name: str
    frame: str
    expectation: object
    describe: Callable[[], list[str]] | None = None
    severity: str = "failure"  # failure | warning
    rows: Callable[[], list[dict] | None] | None = None  # the rows it rejected (None: about the whole frame)
    columns: tuple[str, ...] = ()  # the columns that show what is wrong with one of those rows


@dataclass
class CheckOutcome:
    check: Check
    success: bool
    unexpected_count: int | None
    observed: object = None


@dataclass
class SuiteRun:
    success: bool
    outcomes: list[CheckOutcome]
    report_path: Path | None
    stats: dict = field(default_factory=dict)


def gx():
    """The `great_expectations` module, imported quietly."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import great_expectations
    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return great_expectations


def expectations():
    gx()
    import great_expectations.expectations as gxe
    return gxe


def to_pandas(table: pa.Table):
    """An Arrow table as a pandas frame GX can validate (decimals as float, strings as objects)."""
    cols = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_decimal(col.type):
            col = col.cast(pa.float64())
        elif pa.types.is_date(col.type):
            col = col.cast(pa.timestamp("us"))
        cols[name] = col
    import pandas as pd
    df = pa.table(cols).to_pandas(types_mapper=None) if cols else pd.DataFrame(index=range(table.num_rows))
    for name in df.columns:
        if str(df[name].dtype) in ("str", "string"):
            df[name] = df[name].astype(object)
    return df


def _name_asset(ctx, suite_name: str, run_id, asset: str) -> None:
    """Put the frame's name where a validation page's header reads its "Data asset" (`batch_spec`): GX 1.x
    fills it for legacy batches only (a fluent dataframe asset's name is in `active_batch_definition`,
    which only the index page reads), so the stored result is completed and stored again."""
    store = ctx.validation_results_store
    for key in store.list_keys():
        if key.expectation_suite_identifier.name == suite_name and key.run_id == run_id:
            result = store.get(key)
            result.meta["batch_spec"] = {**(result.meta.get("batch_spec") or {}), "data_asset_name": asset}
            store.set(key, result)


def run_suite(suite_name: str, frames: dict[str, pa.Table], checks: list[Check],
              report_dir: Path | None, run_name: str | None = None) -> SuiteRun:
    """Validate each frame against its checks (one ValidationDefinition per frame); Data Docs go to
    `report_dir` (its index.html), each validation named `run_name` (the suite's name when None) with
    its frame as the data asset."""
    g = gx()
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = g.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    if report_dir is not None:
        report_dir = Path(report_dir)
        report_dir.mkdir(parents=True, exist_ok=True)
        ctx.add_data_docs_site(SITE_NAME, {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(report_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        })
    source = ctx.data_sources.add_pandas("fundguard")
    by_frame: dict[str, list[Check]] = {}
    for c in checks:
        by_frame.setdefault(c.frame, []).append(c)
    vds, params = [], {}
    for frame, frame_checks in by_frame.items():
        asset = source.add_dataframe_asset(frame)
        bd = asset.add_batch_definition_whole_dataframe(frame)
        suite = ctx.suites.add(g.ExpectationSuite(name=f"{suite_name}.{frame}"))
        for c in frame_checks:
            c.expectation.meta = dict(c.expectation.meta or {}, check=c.name, severity=c.severity)
            suite.add_expectation(c.expectation)
        vds.append((frame, ctx.validation_definitions.add(g.ValidationDefinition(
            name=f"{suite_name}.{frame}", data=bd, suite=suite))))
        params[frame] = to_pandas(frames[frame])
    outcomes: list[CheckOutcome] = []
    by_name = {c.name: c for c in checks}
    # each frame is its own batch (a dataframe batch parameter); results are stored in the context,
    # then the Data Docs site is built once from all of them
    run_id = RunIdentifier(run_name=run_name or suite_name, run_time=datetime.now(timezone.utc))
    for frame, vd in vds:
        result = vd.run(batch_parameters={"dataframe": params[frame]}, result_format={"result_format": "SUMMARY"},
                        run_id=run_id)
        if report_dir is not None:
            _name_asset(ctx, vd.suite.name, run_id, frame)
        for er in result.results:
            check = by_name[er.expectation_config.meta["check"]]
            res = er.result or {}
            outcomes.append(CheckOutcome(check, bool(er.success), res.get("unexpected_count"),
                                         res.get("observed_value")))
    if report_dir is not None:
        ctx.build_data_docs(site_names=[SITE_NAME])
    success = all(o.success for o in outcomes if o.check.severity == "failure")
    return SuiteRun(success, outcomes, report_dir, {
        "expectations": len(outcomes),
        "failed": sum(1 for o in outcomes if not o.success and o.check.severity == "failure"),
        "warned": sum(1 for o in outcomes if not o.success and o.check.severity == "warning"),
    })


def outcome_messages(o: CheckOutcome) -> list[str]:
    """Plain-words messages of one failed check (its record's message, else what GX says of it)."""
    described = o.check.describe() if o.check.describe else []
    if described:
        return described
    e = o.check.expectation
    col = getattr(e, "column", None)
    return [f"检查 {o.check.name} 未通过 / check {o.check.name} failed "
            f"({type(e).__name__}{' on ' + col if col else ''}, "
            f"{o.unexpected_count if o.unexpected_count is not None else '?'} unexpected)"]


def messages(run: SuiteRun, severity: str = "failure") -> list[str]:
    """Plain-words messages of the failed checks of one severity."""
    return [m for o in run.outcomes if not o.success and o.check.severity == severity for m in outcome_messages(o)]
