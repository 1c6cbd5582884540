"""Screening in bounded memory: the rules of institution-partitioned families run on batches of whole
institutions (each batch reads only its institutions' files), those of person-partitioned families on
buckets of persons (a stable hash of `psn_no`); batch sizes come from a memory budget (`plan.plan`).
Each batch's suspects are written to `staging/suspects` as it finishes (uncommitted files, committed
together at the end in one Delta commit), so no list of every suspect is built while screening. A batch
that fails is retried once, alone; progress (batches done / to do, ETA) shows on a terminal.

The same plan runs on both engines: an engine provides `register_part`, `bucket_expr` and `stage`.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from pipelines import contract
from pipelines.catalog import Catalog, Rule
from pipelines.screen import plan as planning
from pipelines.screen.pipeline import (INPUT_TABLES, STAGING, VIEWED_INPUTS, ScreenResult, build_views,
                                       needed_views, scoped_query, sort_suspects, view_name)
from pipelines.screen.sql import input_versions_json, referenced_columns, referenced_tables, rule_query, view_query
from pipelines.storage import CopiedFiles, Lake

PARTITION_COLUMN = "fixmedins_code"
#: person jobs from which their inputs are first copied split by bucket (`person_layout`). Measured on the
#: scale-170 (10 M lines) and scale-680 (41 M) districts: the copy costs about 0.9 s per million rows, and
#: saves each job reading and hashing every row (views 11.1 s → 2.0 s per job at 41 M lines, 13 jobs); with
#: 3 jobs (10 M lines, 4GB) it cost 5 s more than it saved.
BUCKET_COPY_MIN_JOBS = 5


class BatchError(RuntimeError):
    """A batch failed twice (once in the run, once retried alone)."""


@dataclass
class Layout:
    """Where the rows of each partitioned input sit: files per institution, and the rows of every input."""
    versions: dict[str, int]
    sizes: planning.Sizes = field(default_factory=planning.Sizes)
    files: dict[str, dict[str | None, list[str]]] = field(default_factory=dict)   # table -> inst -> files
    native: dict[str, bool] = field(default_factory=dict)


def lake_layout(lake: Lake, versions: dict[str, int] | None) -> Layout:
    """The versions screened (`versions` when pinned, else current) and each input's rows and files from the
    Delta log (no data file is read)."""
    used: dict[str, int] = {}
    for table in INPUT_TABLES.values():
        if lake.exists(table) and (versions is None or table in versions):
            used[table] = versions[table] if versions is not None else lake.version(table)
    out = Layout(used)
    for table, version in used.items():
        if table in planning.PARTITIONED:
            snap = lake.native_files(table, version)
            actions = pa.table(lake.delta(table, version).get_add_actions(flatten=True))
            if f"partition.{PARTITION_COLUMN}" not in actions.column_names:
                # written by another writer, not partitioned by institution: its files cannot be split by
                # institution, so the rows of each are counted from the column and batches select by value
                out.native[table] = False
                counts = lake.dataset(table, version).to_table(columns=[PARTITION_COLUMN]) \
                    .column(PARTITION_COLUMN).value_counts().to_pylist()
                for c in counts:
                    out.sizes.add(table, c["values"], f"{PARTITION_COLUMN}={c['values']}", int(c["counts"]))
                continue
            out.native[table] = snap is not None
            insts = actions.column(f"partition.{PARTITION_COLUMN}").to_pylist()
            years = actions.column("partition.period_year").to_pylist() if \
                "partition.period_year" in actions.column_names else [None] * len(insts)
            rows = actions.column("num_records").to_pylist()
            for inst, year, n in zip(insts, years, rows):
                out.sizes.add(table, inst, f"{PARTITION_COLUMN}={inst}/period_year={year}", int(n or 0))
            per: dict[str | None, list[str]] = {}
            if snap is not None:
                for f, v in zip(snap.files, snap.values or []):
                    per.setdefault(v.get(PARTITION_COLUMN), []).append(f)
            out.files[table] = per
        else:
            rows = pa.table(lake.delta(table, version).get_add_actions(flatten=True)).column("num_records")
            out.sizes.totals[table] = int(sum(n or 0 for n in rows.to_pylist()))
    return out


def tables_read(catalog: Catalog, rules: list[Rule]) -> set[str]:
    """The input views (`fee_list`, `mdtrt`, ...) these rules read, directly or through shared views."""
    views = {view_name(s): view_query(sql) for s, sql in catalog.views.items()}
    sqls = [rule_query(catalog, r) for r in rules] + [views[v] for v in needed_views(catalog, rules)]
    return {t for q in sqls for t in referenced_tables(q)} & set(INPUT_TABLES)


@dataclass
class Job:
    kind: str                       # "institution" | "person"
    institutions: list | None = None
    buckets: list[int] | None = None          # person buckets (of plan.BUCKETS)
    persons: list[str] | None = None          # or these persons only (incremental screening)

    def describe(self) -> str:
        if self.kind == "person" and self.persons is not None:
            return f"{len(self.persons)} persons"
        if self.kind == "person":
            return f"person buckets {self.buckets[0]}–{self.buckets[-1]} ({len(self.buckets)} of {planning.BUCKETS})"
        shown = ", ".join(str(i) for i in self.institutions[:4])
        return f"institutions {shown}{' …' if len(self.institutions) > 4 else ''} ({len(self.institutions)})"


def register_shared(engine, lake: Lake, layout: Layout, columns: set[str]) -> None:
    """Inputs every batch reads whole (persons, diagnoses, institutions, knowledge base), once per run; an
    input the lake lacks is an empty table of the contract schema."""
    for view, table in INPUT_TABLES.items():
        if table not in layout.versions:
            engine.register_arrow(view, contract.arrow_schema(view).empty_table())
        elif table not in planning.PARTITIONED:
            engine.register_table(view, lake, table, layout.versions[table], materialize=True,
                                  columns=_keep(lake, table, layout, columns))


def _keep(lake: Lake, table: str, layout: Layout, columns: set[str]) -> list[str] | None:
    names = lake.delta(table, layout.versions[table]).schema().to_arrow().names
    return [c for c in names if c.lower() in columns] or None


def register_batch(engine, lake: Lake, layout: Layout, job: Job, reads: set[str], columns: set[str],
                   bucketed: dict[str, dict[int, list[str]]] | None = None) -> None:
    """The partitioned inputs of one batch: an institution batch's files, or a person bucket's rows (the
    bucket's files of the run's `bucketed` copy where there is one)."""
    for view, table in INPUT_TABLES.items():
        if table not in layout.versions or table not in planning.PARTITIONED:
            continue
        keep = _keep(lake, table, layout, columns)
        files, where = None, None
        if view in reads and job.kind == "person" and job.persons is None and bucketed and table in bucketed:
            schema = pa.schema(lake.delta(table, layout.versions[table]).schema().to_arrow())
            engine.register_files(view, [f for b in job.buckets for f in bucketed[table].get(b, [])],
                                  pa.schema([schema.field(c) for c in keep]) if keep else schema,
                                  materialize=view not in VIEWED_INPUTS)
            continue
        if view not in reads:
            files = []
        elif job.kind == "institution":
            if layout.native[table]:
                files = [f for i in job.institutions for f in layout.files[table].get(i, [])]
            else:
                where = _in_list(job.institutions)
        else:
            if "psn_no" not in (keep or []):
                raise ValueError(f"person-partitioned rules read {table}, which has no psn_no")
            if job.persons is not None:
                from pipelines.screen.sql import spark_literal
                where = f"psn_no IN {spark_literal(job.persons)}" if job.persons else "FALSE"
            elif len(job.buckets) < planning.BUCKETS:
                where = f"{engine.bucket_expr('psn_no', planning.BUCKETS)} IN ({', '.join(map(str, job.buckets))})"
        engine.register_part(view, lake, table, layout.versions[table], files=files, where=where,
                             materialize=view not in VIEWED_INPUTS, columns=keep)


def _in_list(institutions: list) -> str:
    from pipelines.screen.sql import spark_literal as literal
    named = [i for i in institutions if i is not None]
    conds = [f"{PARTITION_COLUMN} IN {literal(named)}"] if named else []
    if None in institutions:
        conds.append(f"{PARTITION_COLUMN} IS NULL")
    return "(" + " OR ".join(conds) + ")"


class Progress:
    """`batches done/to do, ETA` on a terminal (one line, rewritten); nothing otherwise."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done, self.t0 = total, 0, time.perf_counter()

    def step(self, what: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        spent = time.perf_counter() - self.t0
        eta = spent / self.done * (self.total - self.done)
        self.stream.write(f"\r  分批筛查 batches {self.done}/{self.total}  {what:<48} ETA {eta:5.0f}s ")
        if self.done == self.total:
            self.stream.write("\n")
        self.stream.flush()


def jobs_of(p: planning.Plan) -> list[Job]:
    jobs = [Job("institution", institutions=b) for b in p.institution_batches]
    jobs += [Job("person", buckets=b) for b in p.person_jobs]
    return jobs


def split_rules(catalog: Catalog, rules: list[Rule]) -> dict[str, list[Rule]]:
    groups: dict[str, list[Rule]] = {"institution": [], "person": []}
    for r in rules:
        groups[catalog.families[r.family].partition].append(r)
    return groups


def screen_batched(lake: Lake, engine, catalog: Catalog, rules: list[Rule], *, run_id: str, budget: int | None,
                   period: str | None = None, institutions: list[str] | None = None,
                   versions: dict[str, int] | None = None, write_staging: bool = True, progress: bool = True,
                   force: bool = False, layout: Layout | None = None, only: list[Job] | None = None
                   ) -> ScreenResult | None:
    """Screen in batches that fit `budget` (bytes). None when the whole lake fits the budget at once (the
    caller then screens it whole) unless `force`. `only` runs just those jobs (incremental screening)."""
    layout = layout or lake_layout(lake, versions)
    if institutions:
        wanted = set(institutions)
        layout.sizes.by_institution = {k: v for k, v in layout.sizes.by_institution.items() if k in wanted}
    groups = split_rules(catalog, rules)
    p = planning.plan(layout.sizes, budget, institution_families=bool(groups["institution"]),
                      person_families=bool(groups["person"]))
    if not (p.partitioned or force or only is not None):
        return None
    jobs = only if only is not None else jobs_of(p)
    if hasattr(engine, "set_memory") and budget:
        engine.set_memory(budget)
    fingerprint = catalog.fingerprint(rules)
    vjson = input_versions_json(layout.versions)
    t0 = time.perf_counter()
    register_shared(engine, lake, layout, referenced_columns(catalog, rules))
    phases = {"inputs": time.perf_counter() - t0, "rules": 0.0}
    meta = {kind: (rs, tables_read(catalog, rs), referenced_columns(catalog, rs)) for kind, rs in groups.items() if rs}
    copies, kept, timings = _run_jobs(engine, lake, catalog, layout, jobs, meta, rules, budget, progress,
                                      lambda r: scoped_query(catalog, r, run_id=run_id, fingerprint=fingerprint,
                                                             versions_json=vjson, period=period,
                                                             institutions=institutions), phases)
    t0 = time.perf_counter()
    combined = CopiedFiles.combine(STAGING, copies, contract.SUSPECT_SCHEMA, list(contract.SUSPECT_PARTITION_BY))
    engine.end_run()
    rows = None if any(r is None for r in kept) else kept
    suspects, staging_version = _finish(lake, combined, write_staging, rows)
    phases["finish"] = time.perf_counter() - t0
    rows_in = {t: layout.sizes.totals.get(t, 0) for t in layout.versions}
    result = ScreenResult(run_id, engine.name, fingerprint, dict(layout.versions), rules, suspects, staging_version,
                          timings, rows_in, seconds_per_phase=phases)
    result.plan = p
    result.jobs = len(jobs)
    return result


def _run_jobs(engine, lake: Lake, catalog: Catalog, layout: Layout, jobs: list[Job], meta: dict, rules: list[Rule],
              budget: int | None, progress: bool, query_of, phases: dict[str, float]
              ) -> tuple[list[CopiedFiles], list[pa.Table | None], dict[str, float]]:
    """Run every job in turn (person buckets first copied when there are enough of them); on failure the
    files already staged are discarded. Returns each job's staged files and rows and the seconds per rule;
    adds the seconds of the inputs and of the rules to `phases`."""
    copies: list[CopiedFiles] = []
    kept: list[pa.Table | None] = []
    timings: dict[str, float] = {r.id: 0.0 for r in rules}
    bar = Progress(len(jobs), progress)
    scratch = None
    try:
        bucketed = None
        if sum(1 for j in jobs if j.kind == "person" and j.persons is None) >= BUCKET_COPY_MIN_JOBS \
                and hasattr(engine, "bucket_copy"):
            scratch = tempfile.mkdtemp(prefix="fundguard-buckets-")
            t0 = time.perf_counter()
            bucketed = person_layout(engine, lake, layout, meta["person"][1], meta["person"][2], Path(scratch), budget)
            phases["inputs"] += time.perf_counter() - t0
        for job in jobs:
            rs, reads, cols = meta[job.kind]
            queries = {r.id: query_of(r) for r in rs}
            copied, spent, rows, split = _run_job(engine, lake, catalog, layout, job, rs, reads, cols, queries, bucketed)
            for k, secs in split.items():
                phases[k] += secs
            copies.append(copied)
            kept.append(rows)
            for k, (secs, _) in spent.items():
                timings[k] += secs
            bar.step(job.describe())
    except BaseException:
        for c in copies:
            lake.discard_copied(c)
        raise
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    return copies, kept, timings


def person_layout(engine, lake: Lake, layout: Layout, reads: set[str], columns: set[str], folder: Path,
                  budget: int | None) -> dict[str, dict[int, list[str]]]:
    """The partitioned inputs the person families read, copied once into `folder` split by person bucket
    (`engine.bucket_copy`): silver is partitioned by institution, so without it every person job reads and
    hashes every row of the district, and the cost of a run grows with the square of its size."""
    out = {}
    for view, table in INPUT_TABLES.items():
        if view in reads and table in layout.versions and table in planning.PARTITIONED:
            files = engine.bucket_copy(lake, table, layout.versions[table], _keep(lake, table, layout, columns),
                                       planning.BUCKETS, folder, budget)
            if files is not None:
                out[table] = files
    return out


def _run_job(engine, lake, catalog, layout, job, rules, reads, columns, queries, bucketed=None):
    """One batch: its inputs, the shared views its rules read, its rules into uncommitted staging files.
    A failure is retried once, alone (a transient error, or memory the batch's neighbours held). Returns what
    `engine.stage` does and the seconds of its inputs and of its rules."""
    for attempt in (1, 2):
        try:
            t0 = time.perf_counter()
            register_batch(engine, lake, layout, job, reads, columns, bucketed)
            build_views(engine, catalog, rules)
            t1 = time.perf_counter()
            copied, spent, rows = engine.stage(lake, STAGING, queries, list(contract.SUSPECT_PARTITION_BY),
                                               groups={r.id: r.family for r in rules})
            return copied, spent, rows, {"inputs": t1 - t0, "rules": time.perf_counter() - t1}
        except Exception as exc:  # noqa: BLE001 - retried once, then reported with the batch named
            if attempt == 2:
                raise BatchError(f"batch failed twice ({job.describe()}): {exc}") from exc
            print(f"  batch failed, retrying it alone ({job.describe()}): {exc}", file=sys.stderr)
            if hasattr(engine, "release"):
                engine.release()


def _finish(lake: Lake, combined: CopiedFiles, write_staging: bool,
            rows: list[pa.Table] | None = None) -> tuple[pa.Table, int | None]:
    """Commit the batches' files as the new staging/suspects (one commit), or drop them; the list is `rows`
    (what each batch wrote, when its engine kept it) or else read back from the files."""
    version = lake.commit_copied(combined, mode="overwrite") if write_staging else None
    if rows is not None:
        if not write_staging:
            lake.discard_copied(combined)
        table = pa.concat_tables([r.select(contract.SUSPECT_SCHEMA.names).cast(contract.SUSPECT_SCHEMA) for r in rows]) \
            if rows else contract.SUSPECT_SCHEMA.empty_table()
        return sort_suspects(table), version
    if write_staging:
        return sort_suspects(lake.read(STAGING).select(contract.SUSPECT_SCHEMA.names).cast(contract.SUSPECT_SCHEMA)), version
    try:
        parts = [_read_copied(f, combined.partition_by) for f in combined.files]
    finally:
        lake.discard_copied(combined)
    if not parts:
        return contract.SUSPECT_SCHEMA.empty_table(), None
    return sort_suspects(pa.concat_tables(parts).select(contract.SUSPECT_SCHEMA.names).cast(contract.SUSPECT_SCHEMA)), None


def _read_copied(path, partition_by: list[str]) -> pa.Table:
    """One uncommitted staging file with its partition values (from its Hive folders) as columns."""
    from pathlib import Path
    from urllib.parse import unquote

    import pyarrow.parquet as pq
    from pipelines.storage import HIVE_NULLS

    t = pq.read_table(path)
    values = dict(seg.split("=", 1) for seg in Path(path).parent.parts[-len(partition_by):])
    for c in partition_by:
        v = values.get(c)
        v = None if v in HIVE_NULLS else unquote(v)
        t = t.append_column(c, pa.array([v] * t.num_rows, pa.string()))
    return t
