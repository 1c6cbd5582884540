"""(5) psn_name / certno never leave bronze in clear."""
from __future__ import annotations

import hashlib
import hmac

import pyarrow as pa

from . import drops
from .conftest import SALT

CLEAR = ["张三", "李四", "110101198001011234", "11010119900202567X"]


def test_no_clear_pii_after_bronze(tmp_path, lake, load):
    psn = drops.PSN + [["P3", "王五", "BAD-CERT", "9", "1990-01-01", "", "", "", ""]]  # gend 9: quarantined
    load(drops.write_canonical_drop(tmp_path / "d", {"psn": psn}))
    assert "psn_name" not in lake.schema("silver/psn").names and "certno" not in lake.schema("silver/psn").names
    for name in [*lake.tables("silver"), "quarantine", *lake.tables("_meta")]:
        t = lake.read(name)
        for col in t.column_names:
            if pa.types.is_string(t.schema.field(col).type):
                text = "\n".join(v for v in t.column(col).to_pylist() if v)
                for s in CLEAR + ["王五", "BAD-CERT"]:
                    assert s not in text, (name, col, s)
    bronze = lake.read("bronze/psn").column("psn_name").to_pylist()
    assert "张三" in bronze                  # bronze is the one place it is kept
    p1 = next(r for r in lake.read("silver/psn").to_pylist() if r["psn_no"] == "P1")
    assert p1["psn_name_hash"] == hmac.new(SALT.encode(), "张三".encode(), hashlib.sha256).hexdigest()   # keyed
