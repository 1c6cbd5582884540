"""MLflow tracking of a run: lineage as params, counts and amounts as metrics, reports as artifacts.

`Tracker(lake, conf)` is a context manager around one MLflow run. The tracking URI comes from conf
`mlflow.tracking_uri`; empty means a sqlite store under the lake (`<lake>/_mlflow/mlflow.db`) whose
experiment keeps its artifacts in `<lake>/_mlflow/artifacts`, so nothing lands in the working directory.
It talks to MLflow through an `MlflowClient` (no global fluent state), metrics in batched calls.
"""
from __future__ import annotations

import re
import subprocess
import time
import warnings
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
    from mlflow import MlflowClient
    uri, _ = tracking_uri(lake, conf)
    return MlflowClient(tracking_uri=uri)


class Tracker:
    """One MLflow run. `with Tracker(lake, conf, run_name=run_id) as t: t.log_params({...})`."""

    def __init__(self, lake: Lake, conf: Mapping | None = None, *, run_name: str | None = None,
                 tags: Mapping[str, str] | None = None):
        self.lake, self.conf = lake, dict(conf or {})
        self.run_name, self._tags = run_name, dict(tags or {})
        self.uri, self.artifact_location = tracking_uri(lake, self.conf)
        self.experiment_name = (self.conf.get("mlflow") or {}).get("experiment") or "fundguard"
        self.client = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None

    # ---- lifecycle
    def __enter__(self) -> "Tracker":
        _quiet_sqlalchemy()
        from mlflow import MlflowClient
        self.client = MlflowClient(tracking_uri=self.uri)
        exp = self.client.get_experiment_by_name(self.experiment_name)
        self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(
            self.experiment_name, artifact_location=self.artifact_location)
        tags = {"git_commit": git_commit(), "lake": str(self.lake.root), **self._tags}
        run = self.client.create_run(self.experiment_id, run_name=self.run_name,
                                     tags={k: str(v) for k, v in tags.items()})
        self.run_id = run.info.run_id
        return self

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

    # ---- FundGuard vocabulary
    def log_run_params(self, *, engine: str, periods: Iterable[str] | None, fingerprint: str,
                       input_versions: Mapping[str, int], rule_ids: Iterable[str] | None = None,
                       institutions: Iterable[str] | None = None) -> None:
        params = {"engine": engine, "periods": ",".join(periods or []) or "all",
                  "rule_set_fingerprint": fingerprint, "git_commit": git_commit(),
                  "institutions": ",".join(institutions or []) or "all"}
        if rule_ids is not None:
            params["rule_count"] = len(list(rule_ids))
        params.update({f"input_version.{t}": v for t, v in sorted(input_versions.items())})
        self.log_params(params)

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
