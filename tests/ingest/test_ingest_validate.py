"""(6) The validation hook: a failing validator restores every table the load wrote."""
from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pipelines.ingest import IngestError

from . import drops


@dataclass
class Result:
    success: bool
    failures: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def test_failing_validation_restores_silver(tmp_path, lake, load):
    load(drops.write_canonical_drop(tmp_path / "d1", {"psn": drops.PSN, "fixmedins": drops.FIXMEDINS}))
    before = {t: lake.version(t) for t in lake.tables("silver")}
    content = {t: lake.read(t) for t in before}
    seen = {}

    def refuse(lk, before_versions, load_id):
        seen.update(before_versions)
        assert lk.read("silver/psn").num_rows == 3     # the hook sees the new data
        return Result(False, ["psn: too many new people"])

    psn = drops.PSN + [["P3", "王五", "", "1", "1970-01-01", "", "", "", ""]]   # a new person
    d2 = drops.write_canonical_drop(tmp_path / "d2", {"psn": psn, "diag": drops.DIAG})
    with pytest.raises(IngestError, match="too many new people"):
        load(d2, validate=refuse)
    assert seen == {"silver/psn": before["silver/psn"], "silver/diag": None}
    assert lake.tables("silver") == sorted(before)
    for t in before:                                  # restored: a RESTORE commit back to the old snapshot
        assert lake.read(t).equals(content[t]), t
    assert lake.history("silver/psn")[0]["operation"] == "RESTORE"
    assert not lake.exists("silver/diag")             # did not exist before: gone again
    assert lake.read("silver/psn").num_rows == 2
    # nothing recorded in the ledger: the same drop loads once the validator agrees
    ok = load(d2, validate=lambda lk, b, i: Result(True, warnings=["fine"]))
    assert ok.status == "loaded" and "fine" in ok.warnings
    assert lake.read("silver/psn").num_rows == 3
