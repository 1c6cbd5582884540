"""Personal data (contract §2: `psn_name`, `certno`) never leaves bronze in clear: silver, the quarantine and
every check compare a keyed hash, HMAC-SHA256 with the lake's PII key (conf `pii_key`, from
`FUNDGUARD_PII_KEY`). The same hash in Python (`pii_hash`) and in DuckDB SQL (`pii_hash_sql`, for typing a
whole column at once); a test keeps the two equal.
"""
from __future__ import annotations

import hashlib
import hmac

_BLOCK = 64     # SHA-256's block size: HMAC pads (or first hashes) the key to it


def pii_hash(key: str, value: str) -> str:
    """HMAC-SHA256 of `value` under `key`, as 64 hex digits."""
    return hmac.new(key.encode("utf-8"), value.encode("utf-8"), hashlib.sha256).hexdigest()


def pii_hash_sql(key: str, expr: str) -> str:
    """A DuckDB expression computing `pii_hash(key, <expr>)` (NULL stays NULL): HMAC written out as
    sha256((K ⊕ opad) ‖ sha256((K ⊕ ipad) ‖ message)), with the padded key parts as BLOB literals."""
    k = key.encode("utf-8")
    k = (hashlib.sha256(k).digest() if len(k) > _BLOCK else k).ljust(_BLOCK, b"\0")
    ipad, opad = bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)
    return (f"sha256(from_hex('{opad.hex()}') || unhex(sha256(from_hex('{ipad.hex()}') || "
            f"encode(CAST({expr} AS VARCHAR)))))")
