"""RFC 9162 §2.1.1 tree hashing and the index arithmetic of complete subtrees.

Hand-written because it is a dozen lines over :mod:`hashlib`, and because the storage layout
(one row per leaf holding the hashes of the subtrees that leaf completes) needs the same
arithmetic: a complete subtree of height ``h`` and index ``i`` covers leaves
``[i·2^h, (i+1)·2^h)`` and is completed, hence stored, by leaf ``(i+1)·2^h − 1``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence

__all__ = [
    "HASH_SIZE",
    "fold_right",
    "leaf_hash",
    "node_hash",
    "split_point",
    "subtrees",
]

HASH_SIZE = 32
_sha256 = hashlib.sha256


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(start: int, end: int) -> Iterator[tuple[int, int]]:
    """Decompose leaves ``[start, end)`` into maximal aligned complete subtrees.

    Yields ``(height, index)`` left to right. For the ranges RFC 9162 hashes (``start`` a
    multiple of a power of two at least ``end - start``) the heights strictly decrease, and
    the range's hash is :func:`fold_right` of the subtree hashes.
    """
    while start < end:
        height = (end - start).bit_length() - 1
        if start:
            height = min(height, (start & -start).bit_length() - 1)
        yield height, start >> height
        start += 1 << height


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine subtree hashes of decreasing size, right to left, into one range hash."""
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc
