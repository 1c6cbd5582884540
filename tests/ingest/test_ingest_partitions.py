"""Silver layout: partitioned by institution and period (the year), `period` (YYYY-MM) kept as a column,
one Delta partition folder per (institution, year) whatever the number of months."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines import contract

from . import drops


def test_silver_is_partitioned_by_institution_and_year(tmp_path, lake, load):
    load(drops.write_canonical_drop(tmp_path / "d1"))
    for entity in ("fee_list", "mdtrt", "setl"):
        name = f"silver/{entity}"
        assert lake.delta(name).metadata().partition_columns == ["fixmedins_code", contract.PERIOD_YEAR]
        t = lake.read(name)
        assert t.num_rows
        for r in t.to_pylist():
            assert r["period"][:4] == r[contract.PERIOD_YEAR] and len(r["period"]) == 7
        folders = {Path(p).parent.as_posix() for p in
                   pa.table(lake.delta(name).get_add_actions()).column("path").to_pylist()}
        assert folders == {f"fixmedins_code={r['fixmedins_code']}/{contract.PERIOD_YEAR}={r[contract.PERIOD_YEAR]}"
                           for r in t.to_pylist()}
        # the months come from the data, not the folders
        assert lake.distinct_values(name, "period") == set(t.column("period").to_pylist())
        assert lake.distinct_values(name, contract.PERIOD_YEAR) == set(t.column(contract.PERIOD_YEAR).to_pylist())
    assert lake.delta("silver/fee_list_net").metadata().partition_columns == ["fixmedins_code", contract.PERIOD_YEAR]
    assert lake.delta("silver/psn").metadata().partition_columns == []
