"""pipelines.app.maintenance: retention plans that keep what `reproduce` needs, optimize and vacuum."""
import datetime as dt
import json

from pipelines.app import maintenance as maint

UTC = dt.timezone.utc


def test_referenced_versions_takes_the_oldest():
    rows = ['{"silver/fee_list_net": 5, "silver/psn": 2}', '{"silver/fee_list_net": 3, "silver/psn": 4}', None,
            {"silver/diag": 7}]
    assert maint.referenced_versions(rows) == {"silver/fee_list_net": 3, "silver/psn": 2, "silver/diag": 7}


def test_plan_retention_never_drops_a_referenced_version():
    now = dt.datetime(2024, 6, 30, 12, tzinfo=UTC)
    times = {"silver/fee_list_net": {3: now - dt.timedelta(days=30, minutes=10)},   # older than conf retention
             "silver/psn": {2: now - dt.timedelta(hours=5)}}                       # inside conf retention
    plans = {p.table: p for p in maint.plan_retention(
        ["silver/fee_list_net", "silver/psn", "silver/diag", "bronze/psn"], conf_hours=168,
        referenced={"silver/fee_list_net": 3, "silver/psn": 2, "silver/diag": 1}, version_times=times, now=now)}
    assert plans["silver/fee_list_net"].retention_hours == 30 * 24 + 1 + 1 and plans["silver/fee_list_net"].vacuum
    assert "raised from 168 h" in plans["silver/fee_list_net"].reason
    assert plans["silver/psn"].retention_hours == 168 and plans["silver/psn"].vacuum
    assert not plans["silver/diag"].vacuum                      # commit time unknown: refuse to vacuum
    assert plans["bronze/psn"].retention_hours == 168           # not referenced: conf retention


def test_retention_plan_keeps_time_travel_on_a_real_lake(tmp_path):
    """Vacuum with the planned retention right after an overwrite keeps the referenced version readable."""
    import pyarrow as pa

    from pipelines.storage import Lake, utcnow

    lake = Lake(tmp_path)
    lake.append("silver/psn", pa.table({"psn_no": ["P1"]}))                      # v0, referenced below
    lake.overwrite("silver/psn", pa.table({"psn_no": ["P2"]}))                   # v1 tombstones v0's file
    lake.append("gold/suspects", pa.table({"input_versions": [json.dumps({"silver/psn": 0})]}))
    plans = {p["table"]: p for p in maint.plan_lake_retention(tmp_path, 0, now=utcnow())}
    assert plans["silver/psn"]["retention_hours"] >= 1 and plans["silver/psn"]["vacuum"]
    assert lake.vacuum("silver/psn", plans["silver/psn"]["retention_hours"]) == []
    assert lake.read("silver/psn", version=0).column("psn_no").to_pylist() == ["P1"]
    assert len(lake.vacuum("silver/psn", 0, dry_run=True)) == 1                 # what a 0 h retention would lose
