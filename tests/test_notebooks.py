"""Notebooks run top to bottom against a tiny lake, on the venv's own Python kernel."""
from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal
from pathlib import Path

import nbformat
import pyarrow as pa
import pytest
from nbclient import NotebookClient

from pipelines.contract import SUSPECT_SCHEMA
from pipelines.storage import Lake

pytestmark = pytest.mark.slow        # starts a Jupyter kernel and runs the notebook top to bottom

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def tiny_lake(root: Path) -> Lake:
    lake = Lake(root)
    rows = []
    for i, (inst, period, category, amount) in enumerate([
        ("H001", "2023-01", "超量收费", "120.00"),       # two institutions, three months, three categories
        ("H001", "2023-02", "超量收费", "30.50"),
        ("H001", "2023-02", "重复收费", "15.00"),
        ("H002", "2023-01", "超医保支付范围", "800.00"),
        ("H002", "2023-03", "重复收费", "45.25"),
    ]):
        y, m = map(int, period.split("-"))
        rows.append({
            "suspect_id": f"s{i}", "rule_id": f"rule_{i % 2}", "rule_version": 1, "family": "daily_cap",
            "category": category, "severity": "violation" if i % 2 else "suspicious", "fixmedins_code": inst,
            "period": period, "psn_no": f"P{i}", "mdtrt_id": f"M{i}", "setl_id": None, "feedetl_sn": f"F{i}",
            "hilist_code": "X1", "event_time": dt.datetime(y, m, 5, 10), "amount": Decimal(amount),
            "evidence": "同日计费超限", "run_id": "run-1", "rule_set_fingerprint": "fp",
            "input_versions": "{}", "published_at": dt.datetime(2023, 4, 1, tzinfo=dt.timezone.utc)})
    lake.append("gold/suspects", pa.Table.from_pylist(rows, schema=SUSPECT_SCHEMA),
                partition_by=["fixmedins_code", "period"])
    lake.append("silver/fee_list", pa.table({
        "feedetl_sn": ["F0", "F1"], "mdtrt_id": ["M0", "M1"], "fixmedins_code": ["H001", "H001"],
        "hilist_code": ["X1", "X1"], "cnt": [2.0, 1.0], "period": ["2023-01", "2023-02"]}),
        partition_by=["fixmedins_code", "period"])
    lake.append("silver/fixmedins", pa.table({"fixmedins_code": ["H001", "H002"],
                                              "fixmedins_name": ["第一医院", "第二医院"]}))
    return lake


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A `python3` kernel spec pointing at this interpreter (the venv's), found first on JUPYTER_PATH."""
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    prefix = tmp_path / "jupyter"
    install(kernel_name="python3", prefix=str(prefix))
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve()
    return "python3"


def test_analyst_overview_runs_and_draws(tmp_path, monkeypatch, venv_kernel):
    lake = tiny_lake(tmp_path / "lake")
    monkeypatch.setenv("FUNDGUARD_LAKE", str(lake.root))
    nb = nbformat.read(NOTEBOOKS / "analyst_overview.ipynb", as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "pipelines" not in source, "the analyst notebook opens the lake without FundGuard's code"
    NotebookClient(nb, timeout=300, kernel_name=venv_kernel,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if o.output_type == "display_data" and "image/png" in o.get("data", {})]
    assert len(images) >= 3, "category, institution and month charts"
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert str(lake.root) in text and "H001" in text and "H002" in text
    assert "silver/fee_list" in text and "silver/fixmedins" in text
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"
                and "Glyph" in o.text], "no missing-glyph boxes in charts"
