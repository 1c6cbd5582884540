"""Number formatting of the drop's text columns (fixed-point integers to decimal strings) and the cent
rounding of line amounts, shared by the background, the cases and the writer.

Integers are in units: cnt in 1/10,000, pric in 1/1,000,000, money in cents.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

I64 = np.int64


def fmt_fixed(values: np.ndarray, scale: int) -> pa.Array:
    """Integers in units of 10**-scale -> decimal strings with exactly `scale` decimals."""
    v = np.asarray(values, dtype=I64)
    a = np.abs(v)
    p = 10 ** scale
    whole = pc.cast(pa.array(a // p), pa.string())
    if scale == 0:
        s = whole
    else:
        frac = pc.utf8_lpad(pc.cast(pa.array(a % p), pa.string()), scale, "0")
        s = pc.binary_join_element_wise(whole, frac, ".")
    neg = v < 0
    if neg.any():
        s = pc.if_else(pa.array(neg), pc.binary_join_element_wise("-", s, ""), s)
    return s


def fmt_cnt(c4: np.ndarray) -> pa.Array:
    """cnt: integers as '3', others with up to 4 decimals ('12.5')."""
    c4 = np.asarray(c4, dtype=I64)
    whole = c4 % 10_000 == 0
    s_int = fmt_fixed(np.where(whole, c4 // 10_000, 0), 0)
    s_dec = pc.utf8_rtrim(fmt_fixed(c4, 4), "0")
    return pc.if_else(pa.array(whole), s_int, s_dec)


def fmt_pric(p6: np.ndarray) -> pa.Array:
    """pric: 2 decimals when exact to the cent, else 6."""
    p6 = np.asarray(p6, dtype=I64)
    cent = p6 % 10_000 == 0
    return pc.if_else(pa.array(cent), fmt_fixed(p6 // 10_000, 2), fmt_fixed(p6, 6))


def by_unique(values: np.ndarray, fmt) -> pa.Array:
    """Format each distinct value once, then gather."""
    u, inv = np.unique(np.asarray(values), return_inverse=True)
    return fmt(u).take(pa.array(inv.astype(I64)))


def round_amount(c4: np.ndarray, p6: np.ndarray) -> np.ndarray:
    """det_item_fee_sumamt in cents = round(cnt*pric, 2), half away from zero."""
    prod = np.abs(c4.astype(I64)) * p6.astype(I64)          # units of 1e-10 yuan
    cents = (prod + 50_000_000) // 100_000_000
    return np.where(c4 < 0, -cents, cents)


def is_tie(c4: np.ndarray, p6: np.ndarray) -> np.ndarray:
    return (np.abs(c4.astype(I64)) * p6.astype(I64)) % 100_000_000 == 50_000_000
