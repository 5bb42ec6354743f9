"""A float64 array kept in fewer bytes when that loses nothing: float32, or integer codes of decimals.

A numeric reference keeps 2,000 sorted values per feature (and up to 512 cut points); with
1,000 models of 20 features that is 320 MB as float64. Most features a model sees have few
significant digits (ages, counts, prices in cents, values rounded to 3 decimals), and their
values are exactly ``(offset + code) / 10**decimals`` for small integer codes. :func:`compact`
tries, in order of size, 16-bit codes, float32, 32-bit codes, and keeps the first whose decoding
gives back every value bit for bit; else the float64 array itself. The statistics computed from
:meth:`CompactArray.values` are therefore the ones computed from the original array.

>>> a = compact(np.array([12.345, 12.5, 99.001]))
>>> a.data.dtype.name, a.decimals, a.values().tolist()
('uint32', 3, [12.345, 12.5, 99.001])
>>> compact(np.arange(5.0)).data.dtype.name, compact(np.array([0.5, 2.0**100])).data.dtype.name
('uint16', 'float32')
>>> compact(np.array([0.1, np.pi])).data.dtype.name  # pi has all its digits: float64
'float64'
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_DECIMALS = 6


@dataclass(frozen=True)
class CompactArray:
    """``data`` (float32/float64 values, or unsigned codes) and how to decode it to float64."""

    data: np.ndarray
    decimals: int | None = None  # codes: value = (offset + code) / 10**decimals
    offset: float = 0.0

    def values(self) -> np.ndarray:
        """The float64 values, exactly those given to :func:`compact`."""
        if self.decimals is not None:
            return _decode(self.data, self.offset, self.decimals)
        return self.data if self.data.dtype == np.float64 else self.data.astype(np.float64)

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def nbytes(self) -> int:
        return int(self.data.nbytes)


def _decode(codes: np.ndarray, offset: float, decimals: int) -> np.ndarray:
    return (codes.astype(np.float64) + offset) / 10.0**decimals


def _codes(values: np.ndarray) -> CompactArray | None:
    """Unsigned integer codes of decimals (the fewest decimals that hold every value), or None."""
    if not np.isfinite(values).all():
        return None
    for decimals in range(MAX_DECIMALS + 1):
        scaled = np.rint(values * 10.0**decimals)
        if np.abs(scaled).max(initial=0.0) >= 2**52:
            return None
        if not np.array_equal(scaled / 10.0**decimals, values):
            continue
        low = float(scaled.min(initial=0.0))
        span = float(scaled.max(initial=0.0)) - low
        dtype = np.uint16 if span < 2**16 else np.uint32 if span < 2**32 else None
        if dtype is None:
            return None
        codes = (scaled - low).astype(dtype)
        if np.array_equal(_decode(codes, low, decimals), values):
            return CompactArray(codes, decimals, low)
        return None
    return None


def compact(values: np.ndarray) -> CompactArray:
    """The smallest exact representation of the float64 ``values`` (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    candidates = []
    coded = _codes(values)
    if coded is not None:
        candidates.append(coded)
    narrow = values.astype(np.float32)
    if np.array_equal(narrow.astype(np.float64), values, equal_nan=True):
        candidates.append(CompactArray(narrow))
    candidates.append(CompactArray(values))
    return min(candidates, key=lambda c: c.data.dtype.itemsize)  # first of the smallest: codes, then float32
