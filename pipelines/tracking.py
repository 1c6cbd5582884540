"""MLflow tracking of a run: lineage as params, counts and amounts as metrics, reports as artifacts.

`Tracker(lake, conf)` is a context manager around one MLflow run. The tracking URI comes from conf
`mlflow.tracking_uri`; empty means a sqlite store under the lake (`<lake>/_mlflow/mlflow.db`) whose
experiment keeps its artifacts in `<lake>/_mlflow/artifacts`, so nothing lands in the working directory.
It talks to MLflow through an `MlflowClient` (no global fluent state), metrics in batched calls.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Mapping

from pipelines.config import REPO_ROOT
from pipelines.catalog import CATEGORY_KEYS
from pipelines.storage import Lake



def _quiet_sqlalchemy() -> None:
    """The sqlite store emits SADeprecationWarning on every connection: filter it (stack notes)."""
    try:
        from sqlalchemy.exc import SADeprecationWarning
        warnings.filterwarnings("ignore", category=SADeprecationWarning)
    except ImportError:
        pass

_METRIC_OK = re.compile(r"[^A-Za-z0-9_\-./ ]")
BATCH = 1000  # MLflow's limit of metrics per log_batch call
PARAM_MAX = 6000


def metric_key(*parts: object) -> str:
    """A metric/param name MLflow accepts: alphanumerics, `_-./` and spaces; anything else becomes `_`."""
    out = []
    for p in parts:
        s = str(p)
        s = CATEGORY_KEYS.get(s, s)
        out.append(_METRIC_OK.sub("_", s))
    return ".".join(out)


def git_commit(repo: Path = REPO_ROOT) -> str:
    """The code's commit: `FUNDGUARD_GIT_COMMIT` (the Docker image is built with it: no .git there), else
    `git rev-parse HEAD`, else "unknown"."""
    if os.environ.get("FUNDGUARD_GIT_COMMIT"):
        return os.environ["FUNDGUARD_GIT_COMMIT"]
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=5)
        return res.stdout.strip() if res.returncode == 0 and res.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def tracking_uri(lake: Lake, conf: Mapping) -> tuple[str, str | None]:
    """(tracking URI, artifact location for a new experiment or None for the server's default)."""
    uri = ((conf or {}).get("mlflow") or {}).get("tracking_uri") or ""
    if uri:
        return uri, None
    base = lake.folder("mlflow")
    (base / "artifacts").mkdir(exist_ok=True)
    return f"sqlite:///{base / 'mlflow.db'}", f"file:{base / 'artifacts'}"


def client(lake: Lake, conf: Mapping):
    _quiet_sqlalchemy()
    uri, _ = tracking_uri(lake, conf)
    with _store_guard(lake, uri):
        return open_store(uri)


@contextmanager
def _store_guard(lake: Lake, uri: str):
    """One process at a time creates the lake's own sqlite store (concurrent first runs raced on it)."""
    if not uri.startswith("sqlite:///") or not str(lake.root) in uri:
        yield
        return
    import fcntl

    with open(lake.folder("mlflow") / ".store.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def open_store(uri: str):
    """An MlflowClient on `uri`, whose store answers. A sqlite store left half-created (a process killed
    while MLflow created its tables) holds no run: it is moved aside (`mlflow.db.broken-<time>`) and
    created anew, with a note; a store that holds runs and does not open is an error naming it."""
    from mlflow import MlflowClient

    try:
        c = MlflowClient(tracking_uri=uri)
        c.search_experiments(max_results=1)
        return c
    except Exception as exc:                    # noqa: BLE001  (MLflow and SQLAlchemy raise many kinds)
        path = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
        if path is None or not path.exists() or _holds_runs(path):
            raise RuntimeError(f"MLflow store {uri} does not open ({type(exc).__name__}: {exc}); "
                               f"if it is an older schema, run `mlflow db upgrade {uri}`") from exc
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        _forget_engine(uri)
        path.rename(aside)
        print(f"fundguard: MLflow store {path} was half-created (no run in it): moved to {aside.name}, "
              "created anew", file=sys.stderr)
        c = MlflowClient(tracking_uri=uri)
        c.search_experiments(max_results=1)
        return c


def _forget_engine(uri: str) -> None:
    """MLflow keeps one SQLAlchemy engine per store URI for the process; the broken file's must go with it."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)
    if engine is not None:
        engine.dispose()


def _holds_runs(db: Path) -> bool:
    import sqlite3

    try:
        with sqlite3.connect(db) as con:
            return bool(con.execute("SELECT count(*) FROM runs").fetchone()[0])
    except sqlite3.Error:
        return False


class Tracker:
    """One MLflow run. `with Tracker(lake, conf, run_name=run_id) as t: t.log_params({...})`."""

    def __init__(self, lake: Lake, conf: Mapping | None = None, *, run_name: str | None = None,
                 tags: Mapping[str, str] | None = None, reuse: bool = False):
        """`reuse`: continue the latest run carrying the same `tags` instead of starting another (a report
        that is re-run updates its run)."""
        self.lake, self.conf, self.reuse = lake, dict(conf or {}), reuse
        self.run_name, self._tags = run_name, dict(tags or {})
        self.uri, self.artifact_location = tracking_uri(lake, self.conf)
        self.experiment_name = (self.conf.get("mlflow") or {}).get("experiment") or "fundguard"
        self.client = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None

    # ---- lifecycle
    def __enter__(self) -> "Tracker":
        _quiet_sqlalchemy()
        with _store_guard(self.lake, self.uri):
            self.client = open_store(self.uri)
            exp = self.client.get_experiment_by_name(self.experiment_name)
            self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(
                self.experiment_name, artifact_location=self.artifact_location)
        tags = {"git_commit": git_commit(), "lake": str(self.lake.root), **self._tags}
        previous = self._previous_run() if self.reuse else None
        if previous is not None:
            self.run_id = previous
            self.client.update_run(previous, status="RUNNING")
            self.set_tags(tags)
            return self
        run = self.client.create_run(self.experiment_id, run_name=self.run_name,
                                     tags={k: str(v) for k, v in tags.items()})
        self.run_id = run.info.run_id
        return self

    def _previous_run(self) -> str | None:
        query = " and ".join(f"tags.`{k}` = '{str(v).replace(chr(39), '')}'" for k, v in self._tags.items())
        runs = self.client.search_runs([self.experiment_id], filter_string=query, max_results=1,
                                       order_by=["attributes.start_time DESC"])
        return runs[0].info.run_id if runs else None

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.client and self.run_id:
            if exc is not None:
                self.set_tags({"error": f"{exc_type.__name__}: {exc}"[:5000]})
            self.client.set_terminated(self.run_id, "FAILED" if exc is not None else "FINISHED")

    # ---- logging
    def log_params(self, params: Mapping[str, object]) -> None:
        from mlflow.entities import Param
        items = [Param(_METRIC_OK.sub("_", str(k)), str(v)[:PARAM_MAX]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i:i + 100])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """All metrics in one batched call (chunks of 1000, MLflow's limit)."""
        from mlflow.entities import Metric
        now = int(time.time() * 1000)
        items = [Metric(_METRIC_OK.sub("_", k), float(v), now, step) for k, v in metrics.items() if v is not None]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, metrics=items[i:i + BATCH])

    def set_tags(self, tags: Mapping[str, object]) -> None:
        from mlflow.entities import RunTag
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)[:5000]) for k, v in tags.items()])

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.run_id, str(path), artifact_path)

    def log_dict(self, obj: dict, name: str) -> None:
        self.client.log_dict(self.run_id, obj, name)

    def rename(self, name: str) -> None:
        """The run's name, once what ran is known (e.g. `screen 2023 duckdb 510ab691`)."""
        self.client.update_run(self.run_id, name=name)

    def log_input_tables(self, lake: Lake, versions: Mapping[str, int]) -> None:
        """Each input table as an MLflow dataset: a Delta source with the version read (the run's Inputs)."""
        from mlflow.data.delta_dataset_source import DeltaDatasetSource
        from mlflow.data.meta_dataset import MetaDataset
        from mlflow.entities import DatasetInput, InputTag

        inputs = [DatasetInput(MetaDataset(DeltaDatasetSource(path=lake.uri(t), delta_table_version=int(v)),
                                           name=t)._to_mlflow_entity(),
                               [InputTag("mlflow.data.context", "screening")])
                  for t, v in sorted(versions.items())]
        if inputs:
            self.client.log_inputs(self.run_id, datasets=inputs)

    # ---- FundGuard vocabulary
    def log_run_params(self, *, engine: str, periods: Iterable[str] | None, fingerprint: str,
                       input_versions: Mapping[str, int], rule_ids: Iterable[str] | None = None,
                       institutions: Iterable[str] | None = None) -> None:
        """Lineage as params; the inputs as datasets; the run named after what ran."""
        params = {"engine": engine, "periods": ",".join(periods or []) or "all",
                  "rule_set_fingerprint": fingerprint, "git_commit": git_commit(),
                  "institutions": ",".join(institutions or []) or "all"}
        if rule_ids is not None:
            params["rule_count"] = len(list(rule_ids))
        params.update({f"input_version.{t}": v for t, v in sorted(input_versions.items())})
        self.log_params(params)
        self.log_input_tables(self.lake, input_versions)
        step = self._tags.get("step", "screen")
        self.rename(f"{step} {params['periods']} {engine} {fingerprint[:8]}")

    def log_rule_precision(self, precision: Mapping[str, float], step: int = 0) -> None:
        """Hook for the feedback loop: precision of each rule (confirmed / reviewed) once institutions answered."""
        self.log_metrics({metric_key("precision", "rule", r): p for r, p in precision.items()}, step=step)


def suspect_metrics(suspects, rows_in: Mapping[str, int] | None = None, rules: Iterable | None = None) -> dict:
    """Rows in; hits and amounts per rule, family, category, severity and institution (sanitised keys)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    out: dict[str, float] = {metric_key("rows_in", t): n for t, n in (rows_in or {}).items()}
    out["hits.total"] = suspects.num_rows
    for r in rules or ():
        out[metric_key("hits", "rule", r.id)] = 0
        out[metric_key("amount", "rule", r.id)] = 0.0
    if not suspects.num_rows:
        out["amount.total"] = 0.0
        return out
    t = suspects.select(["rule_id", "family", "category", "severity", "fixmedins_code", "amount"])
    t = t.set_column(5, "amount", t.column("amount").cast(pa.float64()))
    out["amount.total"] = float(t.column("amount").to_numpy(zero_copy_only=False).sum())
    for col, label in (("rule_id", "rule"), ("family", "family"), ("category", "category"),
                       ("severity", "severity"), ("fixmedins_code", "institution")):
        for row in t.group_by(col).aggregate([("rule_id", "count", pc.CountOptions(mode="all")),
                                              ("amount", "sum")]).to_pylist():
            out[metric_key("hits", label, row[col])] = row["rule_id_count"]
            out[metric_key("amount", label, row[col])] = round(row["amount_sum"] or 0.0, 2)
    return out


def log_rule_precision(lake: Lake, conf: Mapping, run_id: str, precision: Mapping[str, float]) -> None:
    """Add rule precision to an existing (finished) MLflow run, e.g. when feedback arrives later."""
    from mlflow.entities import Metric
    now = int(time.time() * 1000)
    c = client(lake, conf)
    metrics = [Metric(metric_key("precision", "rule", r), float(p), now, 0) for r, p in precision.items()]
    for i in range(0, len(metrics), BATCH):
        c.log_batch(run_id, metrics=metrics[i:i + BATCH])
