"""Refuse to screen, gate or publish what is not there (pipelines/app/checks.py), through the commands."""
from __future__ import annotations

import pyarrow as pa
import pytest

from pipelines.app.checks import require_inputs
from pipelines.cli import main
from pipelines.contract import UsageError
from pipelines.storage import Lake


def visits_lake(root) -> Lake:
    """A lake whose silver/mdtrt holds H1's visits of 2023-03 and 2023-04 (partitioned as ingestion does)."""
    lake = Lake(root)
    lake.append("silver/mdtrt", pa.table({"mdtrt_id": ["M1", "M2"], "fixmedins_code": ["H1", "H1"],
                                          "period": ["2023-03", "2023-04"], "period_year": ["2023", "2023"]}),
                partition_by=["fixmedins_code", "period_year"])
    return lake


@pytest.mark.parametrize("command", [["screen"], ["gate"], ["publish"]])
def test_a_path_that_is_not_a_lake_is_refused_and_not_created(tmp_path, capsys, command):
    missing = tmp_path / "nolake"
    assert main([*command, "--lake", str(missing)]) == 2
    assert "not a lake" in capsys.readouterr().err
    assert not missing.exists()


def test_an_empty_folder_is_not_a_lake(tmp_path, capsys):
    assert main(["gate", "--lake", str(tmp_path)]) == 2
    assert "holds no table" in capsys.readouterr().err


def test_a_lake_without_claims_is_refused(tmp_path):
    lake = Lake(tmp_path)
    lake.append("silver/kb_param", pa.table({"key": ["readmit_days"], "value": ["15"]}))
    with pytest.raises(UsageError, match="no claims to screen"):
        require_inputs(lake)


@pytest.mark.parametrize("period, ok", [("2023", True), ("2023-03", True), ("2023-05", False), ("2024", False),
                                        (None, True)])
def test_a_period_without_data_is_refused_naming_what_the_lake_holds(tmp_path, period, ok):
    lake = visits_lake(tmp_path)
    if ok:
        require_inputs(lake, period)
        return
    with pytest.raises(UsageError) as err:
        require_inputs(lake, period)
    assert f"no claims in period {period}" in str(err.value) and "2023" in str(err.value)


def test_an_institution_without_data_is_refused(tmp_path):
    lake = visits_lake(tmp_path)
    require_inputs(lake, institutions=["H1"])
    with pytest.raises(UsageError, match="H9"):
        require_inputs(lake, institutions=["H1", "H9"])


def test_screen_of_a_period_without_data_exits_2_and_writes_nothing(tmp_path, capsys):
    lake = visits_lake(tmp_path)
    assert main(["screen", "--lake", str(lake.root), "--period", "2024", "--quiet"]) == 2
    assert "no claims in period 2024" in capsys.readouterr().err
    assert not lake.exists("staging/suspects")


def test_kb_param_gaps_name_the_fallbacks_and_the_rules_left_unevaluated(tmp_path):
    """A lake whose kb_param lacks keys the rules read: the shipped value stands in for a key the shipped
    knowledge base has (said, not silent); a key it lacks too names the rules that evaluate nothing."""
    from pipelines.app.checks import kb_param_gaps
    from pipelines.catalog import load_catalog

    catalog = load_catalog()
    rules = [catalog.by_id[i] for i in ("bed_hanging_stay", "split_admission_same_diag", "second_line_drug")]
    lake = Lake(tmp_path / "lake")
    lake.append("silver/kb_param", pa.table({"key": ["readmit_days"], "value": ["20"]}))
    fallbacks, unevaluated = kb_param_gaps(lake, catalog, rules)
    assert fallbacks == {"bed_hanging_min_days": "3"}
    assert unevaluated == {"second_line_window_days": ["second_line_drug"]}
    lake.append("silver/kb_param", pa.table({"key": ["bed_hanging_min_days", "second_line_window_days"],
                                             "value": ["4", "30"]}))
    assert kb_param_gaps(lake, catalog, rules) == ({}, {})
