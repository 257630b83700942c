"""Pack integer vectors into stream payload bytes and back.

Element ``j`` of a payload sits at bits ``j*width +: width`` (``data.ArrayLayout``), so a
payload is one little-endian integer of ``n*width`` bits. Rows are stored as ``uint8`` arrays
of ``ceil(n*width/8)`` bytes, which numpy reads and writes in bulk and the testbench turns into
one Python integer per vector.
"""

import numpy as np

__all__ = ["pack", "unpack"]


def pack(values, width):
    """Pack int64 ``values`` (N, n), each fitting ``width`` bits two's complement or unsigned,
    into uint8 rows (N, ceil(n*width/8))."""
    values = np.asarray(values, dtype=np.int64)
    count, n = values.shape
    raw = values.astype(np.uint64) & np.uint64((1 << width) - 1)
    bits = (raw[:, :, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)
    return np.packbits(bits.astype(np.uint8).reshape(count, n * width), axis=1,
                       bitorder="little")


def unpack(rows, n, width, signed):
    """Inverse of :func:`pack`: uint8 rows (N, bytes) to int64 (N, n)."""
    rows = np.asarray(rows, dtype=np.uint8)
    bits = np.unpackbits(rows, axis=1, bitorder="little")[:, :n * width]
    bits = bits.reshape(len(rows), n, width).astype(np.int64)
    values = (bits << np.arange(width, dtype=np.int64)).sum(axis=2)
    if signed:
        values -= bits[:, :, -1] << width
    return values
