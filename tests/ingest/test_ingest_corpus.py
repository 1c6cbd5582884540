"""Every kind of bad input in `corpus.py`: refused naming the file with nothing written, or loaded with rows
read = loaded + quarantined against the independent count, and every surviving amount exactly as sent."""
from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.ingest.inspection import IngestError, inspect_file

from . import corpus

KINDS = corpus.kinds()


def test_the_corpus_has_at_least_sixty_kinds():
    assert len(KINDS) >= 60 and len({k.name for k in KINDS}) == len(KINDS)


@pytest.mark.parametrize("kind", KINDS, ids=[k.name for k in KINDS])
def test_no_silent_loss_no_silent_change(tmp_path, load, lake, kind):
    d = tmp_path / "d"
    for name, data in kind.files.items():
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_bytes(data)
    if kind.refuse:
        with pytest.raises(IngestError, match=kind.refuse):
            load(d)
        assert not lake.exists("bronze/fee_list") and not lake.exists("silver/fee_list")
        return
    rep = load(d)
    for fr in rep.files:
        if fr.status != "loaded":
            assert fr.status == "skipped" and fr.note
            continue
        p = d / fr.file
        independent = inspect_file(p, fr.file).census.records      # census.py, every data sheet
        assert fr.rows_read == fr.rows_loaded + fr.rows_quarantined == independent, fr
    assert rep.rows_quarantined == kind.quarantined, [(f.file, f.rows_quarantined) for f in rep.files]
    got = {}
    if lake.exists("silver/fee_list"):
        t = lake.read("silver/fee_list", columns=["feedetl_sn", "det_item_fee_sumamt"])
        got = dict(zip(*(t.column(c).to_pylist() for c in t.column_names)))
    assert got == {sn: Decimal(a) for sn, a in kind.amounts.items()}
