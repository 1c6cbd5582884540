"""Lines or diagnoses sharing a key within a claim (pipelines.serve.claim.repeated): identical copies count
once, different values under one key are refused; claims of one pass are judged apart."""
from __future__ import annotations

from pipelines.serve.claim import repeated

NAMES = ["mdtrt_id", "feedetl_sn", "cnt", "period", "_line", "_file"]


def test_an_identical_copy_is_dropped_and_a_different_one_is_a_clash():
    rows = [("V1", "1", 2.0, "2024-01", 0, "a"), ("V1", "1", 2.0, "2024-02", 1, "b"),   # same values: a copy
            ("V1", "1", 3.0, "2024-01", 2, "a")]                                       # other cnt: a clash
    clashes, copies = repeated("fee_list", NAMES, rows, lambda line: 0)
    assert copies == [1]
    assert [line for line, _ in clashes] == [2] and "('V1', '1')" in clashes[0][1] and "同一主键内容不同" in clashes[0][1]


def test_claims_are_judged_apart():
    rows = [("V1", "1", 2.0, None, 0, ""), ("V1", "1", 3.0, None, 1, ""), ("V1", "1", 3.0, None, 2, "")]
    # lines 0 and 1 of one claim, line 2 of another: line 1 clashes, line 2 is the other claim's first
    clashes, copies = repeated("fee_list", NAMES, rows, lambda line: 0 if line < 2 else 1)
    assert [line for line, _ in clashes] == [1] and copies == []


def test_a_copy_of_a_clashing_row_is_dropped_and_still_a_clash():
    rows = [("V1", "1", 2.0, None, 0, ""), ("V1", "1", 3.0, None, 1, ""), ("V1", "1", 3.0, None, 2, "")]
    clashes, copies = repeated("fee_list", NAMES, rows, lambda line: 0)
    assert [line for line, _ in clashes] == [1, 2] and copies == [2]
