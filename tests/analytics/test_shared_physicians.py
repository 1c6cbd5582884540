"""The shared-physician indicators on a hand-made lake: a physician (atddr_no) attending visits at two
institutions in a period is shared there, one attending at a single institution is not, a visit without a
physician counts for neither; without any atddr_no the indicators are null and `absent_inputs` says so."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from fg_lakes import typed
from pipelines.analytics import io
from pipelines.app import analyze
from pipelines.storage import Lake

#: (visit, person, institution, physician, begin): D1 attends at H1 and H2 in March, D2 at H1 only, D3 at H3 in
#: March and at H1 in April (shared in the year, not in either month); M5 at H2 has no physician recorded
VISITS = [
    ("M1", "P1", "H1", "D1", "2023-03-01 09:00:00"),
    ("M2", "P2", "H1", "D2", "2023-03-02 09:00:00"),
    ("M3", "P3", "H1", "D2", "2023-03-03 09:00:00"),
    ("M4", "P1", "H2", "D1", "2023-03-04 09:00:00"),
    ("M5", "P4", "H2", None, "2023-03-05 09:00:00"),
    ("M6", "P5", "H3", "D3", "2023-03-06 09:00:00"),
    ("M7", "P6", "H3", "D3", "2023-03-07 09:00:00"),
    ("M8", "P7", "H1", "D3", "2023-04-01 09:00:00"),
]
#: (institution, period) -> (shared_physician_share, shared_physician_visit_share, physicians)
EXPECTED = {
    ("H1", "2023-03"): (1 / 2, 1 / 3, 2),   # D1 shared, D2 not; 1 of its 3 visits by D1
    ("H2", "2023-03"): (1.0, 1.0, 1),       # D1; M5 (no physician) is in neither share
    ("H3", "2023-03"): (0.0, 0.0, 1),       # D3 only here in March
    ("H1", "2023-04"): (0.0, 0.0, 1),       # D3 only here in April
    ("H1", "2023"): (2 / 3, 2 / 4, 3),      # D1 and D3 shared in the year, D2 not; M1 and M8 of 4 visits
    ("H2", "2023"): (1.0, 1.0, 1),
    ("H3", "2023"): (1.0, 1.0, 1),          # D3 also attends at H1 in the year
}


def _lake(root, physicians: str) -> Lake:
    """The visits above with their settlements; `physicians`: "recorded", "null" (every atddr_no null) or
    "no column" (another writer's mdtrt without atddr_no)."""
    mdtrt, setl = [], []
    for mid, psn, inst, doc, begin in VISITS:
        t = dt.datetime.fromisoformat(begin)
        mdtrt.append(dict(mdtrt_id=mid, psn_no=psn, fixmedins_code=inst, med_type="11", begntime=t,
                          atddr_no=doc if physicians == "recorded" else None, period=begin[:7]))
        setl.append(dict(setl_id="S" + mid, mdtrt_id=mid, psn_no=psn, fixmedins_code=inst, setl_time=t,
                         medfee_sumamt=Decimal("100.00"), fund_pay_sumamt=Decimal("60.00"), period=begin[:7]))
    m = typed("mdtrt", mdtrt)
    if physicians == "no column":
        m = m.drop_columns(["atddr_no"])
    lake = Lake(root)
    lake.append("silver/mdtrt", m, partition_by=["fixmedins_code", "period"])
    lake.append("silver/setl", typed("setl", setl), partition_by=["fixmedins_code", "period"])
    return lake


def _indicators(lake: Lake):
    con = io.connect()
    have = io.available(io.register_inputs(con, lake))
    comp = analyze.compute(con, have, "2023", analyze.settings({}, {}))
    return comp, comp.indicators.set_index(["fixmedins_code", "period"])


def test_shared_physicians_per_institution_and_period(tmp_path):
    comp, ind = _indicators(_lake(tmp_path, "recorded"))
    assert set(ind.index) == set(EXPECTED)
    for key, (share, visit_share, physicians) in EXPECTED.items():
        row = ind.loc[key]
        assert row["shared_physician_share"] == pytest.approx(share), key
        assert row["shared_physician_visit_share"] == pytest.approx(visit_share), key
        assert row["physicians"] == physicians, key
    assert "mdtrt.atddr_no" not in comp.absent
    assert not ind["absent_inputs"].fillna("").str.contains("atddr_no").any()
    # the patient-side twin is built the same way: P1 is seen at H1 and H2 in March
    assert ind.loc[("H1", "2023-03"), "shared_patient_share"] == pytest.approx(1 / 3)
    assert ind.loc[("H2", "2023-03"), "shared_patient_share"] == pytest.approx(1 / 2)


@pytest.mark.parametrize("physicians", ["null", "no column"])
def test_without_physicians_the_indicators_are_null_and_said_missing(tmp_path, physicians):
    comp, ind = _indicators(_lake(tmp_path, physicians))
    assert "mdtrt.atddr_no" in comp.absent
    assert ind["absent_inputs"].str.split(",").map(lambda a: "mdtrt.atddr_no" in a).all()
    for c in ("shared_physician_share", "shared_physician_visit_share", "physicians", "visits_per_physician",
              "visits_per_physician_day", "physician_day_p90"):
        assert ind[c].isna().all(), c
    assert ind.loc[("H1", "2023-03"), "shared_patient_share"] == pytest.approx(1 / 3)   # the rest is computed
    assert ind["visits"].notna().all()
