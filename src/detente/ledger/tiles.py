"""Where the ledger keeps each hash and entry: tiles of complete subtrees, bundles of entries.

The storage layout of :class:`~detente.ledger.Ledger`, in the spirit of C2SP tlog-tiles but
keeping *every* node hash, so that a proof never recomputes a subtree:

* The tree's heights are cut into *strata* of ``T`` heights (``T`` = the tile height, 6 by
  default). A *tile* of stratum ``s`` holds the complete nodes of heights ``sT .. sT+T-1``
  under one node of height ``sT+T`` (its root, which belongs to the stratum above): at most
  ``2^T`` nodes at the base height, ``2^(T-1)`` above them, …, 2 at the top, so
  ``2^(T+1) - 2`` hashes (126 for T = 6: 4,032 bytes, one SQLite page without overflow).
* Inside a tile the hashes are in *post-order*, which is the order in which appends complete
  them: a partially filled tile is always a prefix of the full one, so an append only ever
  adds bytes at the end of at most one partial tile per stratum (and whole new tiles).
* A tile is one row keyed by ``stratum · 2^48 + index``; a proof for a tree of ``n`` leaves
  reads at most two tiles per stratum, ``⌈log2(n) / T⌉`` strata (4 at ten million leaves),
  in one ``SELECT … WHERE tile IN (…)``.
* Entries go to *bundles* of ``2^T`` consecutive leaves (bundle ``n`` holds leaves
  ``[n·2^T, (n+1)·2^T)``), as the big-endian ``uint16`` sizes of the entries followed by
  their bytes; the partial last bundle grows at its end like a partial tile.

Hand-written because no library stores a Merkle tree in SQL tables: this module is the index
arithmetic and :func:`grow`, which hashes a batch into tile contents (pure functions,
property-tested against a naive enumeration and a naive tree), and
:mod:`detente.ledger.ledger` does the I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from functools import lru_cache

from detente.ledger.errors import LedgerStoreError
from detente.ledger.hashing import HASH_SIZE

__all__ = [
    "KEY_SHIFT",
    "MAX_ENTRY",
    "TILE_HEIGHT",
    "bottom_slots",
    "bundle_pieces",
    "grow",
    "locate",
    "split_bundle",
    "tile_key",
    "tile_slots",
]

TILE_HEIGHT = 6
"""Heights per stratum for new ledgers (stored in the ledger's head, so it never changes)."""

KEY_SHIFT = 48
"""A tile's key is ``stratum << KEY_SHIFT | index`` (2^48 tiles per stratum)."""

MAX_ENTRY = 0xFFFF
"""The largest entry a bundle can hold (its size is a ``uint16``)."""


def tile_key(stratum: int, index: int) -> int:
    return stratum << KEY_SHIFT | index


def tile_slots(tile_height: int) -> int:
    """How many hashes a full tile holds: ``2^(T+1) - 2``."""
    return (2 << tile_height) - 2


def locate(height: int, index: int, tile_height: int) -> tuple[int, int]:
    """The tile key and byte offset of the complete subtree ``(height, index)``.

    (1) the stratum and the height relative to its base; (2) the last base-height node under
    the subtree, which completes it; (3) within its tile, the nodes completed before that base
    node are ``2j - popcount(j)`` (``j`` its position in the tile), and the subtree comes
    ``relative height`` slots after the base node itself.
    """
    stratum, rel = divmod(height, tile_height)  # (1)
    last = ((index + 1) << rel) - 1  # (2)
    j = last & ((1 << tile_height) - 1)
    slot = 2 * j - j.bit_count() + rel  # (3)
    return tile_key(stratum, last >> tile_height), slot * HASH_SIZE


def bottom_slots(leaves: int, tile_height: int) -> int:
    """How many hashes the bottom stratum holds for a tree of ``leaves`` leaves.

    ``2^(T+1) - 2`` per full tile, and ``2j - popcount(j)`` in a last tile of ``j`` leaves.
    """
    j = leaves & ((1 << tile_height) - 1)
    return (leaves >> tile_height) * tile_slots(tile_height) + 2 * j - j.bit_count()


def bundle_pieces(start: int, end: int, tile_height: int) -> Iterator[tuple[int, int, int]]:
    """Split leaves ``[start, end)`` at bundle boundaries: ``(bundle, first, stop)``."""
    width = 1 << tile_height
    while start < end:
        stop = min(end, (start | (width - 1)) + 1)
        yield start >> tile_height, start, stop
        start = stop


def split_bundle(sizes: bytes, data: bytes) -> list[bytes]:
    """The entries of a bundle row, checked to add up exactly."""
    count, rest = divmod(len(sizes), 2)
    if rest:
        raise LedgerStoreError("ledger bundle has a torn size table")
    out, at = [], 0
    for k in range(count):
        n = sizes[2 * k] << 8 | sizes[2 * k + 1]
        out.append(data[at : at + n])
        at += n
    if at != len(data):
        raise LedgerStoreError("ledger bundle sizes do not add up to its bytes")
    return out


@lru_cache(maxsize=8)
def _post_order(tile_height: int) -> tuple[tuple[int, int], ...]:
    """The slots of a full tile in order, as (relative height, index within the tile)."""
    out = []
    for j in range(1 << tile_height):
        out.append((0, j))
        rel = 0
        while (j >> rel) & 1 and rel + 1 < tile_height:
            rel += 1
            out.append((rel, j >> rel))
    return tuple(out)


def grow(
    leaves: list[bytes], start: int, frontier: list[bytes], tile_height: int
) -> tuple[list[tuple[int, bytes]], list[bytes]]:
    """Hash leaves ``[start, start + len(leaves))`` onto a tree of ``start`` leaves.

    ``frontier`` holds the complete subtrees of the old tree, largest first (one per set bit
    of ``start``). Returns the bytes to add to each tile (whole tiles, or the new end of a
    partial one, keyed by :func:`tile_key`) and the new frontier.

    (1) The tree is hashed level by level: the new nodes of a level are its indices
    ``[start >> h, end >> h)``; when the first is odd its left sibling is the old frontier's
    subtree of that height, and an odd last one is the new frontier's. (2) Each stratum's
    nodes go to their tiles in post-order: a tile made only of new nodes through one fixed
    permutation, the (at most two) tiles at the ends of the batch node by node.
    """
    end = start + len(leaves)
    sha = hashlib.sha256
    old = dict(
        zip(
            [h for h in range(start.bit_length() - 1, -1, -1) if start >> h & 1],
            frontier,
            strict=True,
        )
    )
    levels: list[list[bytes]] = []
    front: list[bytes] = []
    row, h = leaves, 0
    while end >> h:  # (1)
        levels.append(row)
        if start >> h & 1:
            row = [old[h], *row]
        if end >> h & 1:
            front.append(row[-1])
        pairs = zip(row[0::2], row[1::2], strict=False)  # an odd last node waits
        row = [sha(b"\x01" + a + b).digest() for a, b in pairs]
        h += 1
    tiles: list[tuple[int, bytes]] = []
    width = 1 << tile_height
    for base in range(0, len(levels), tile_height):  # (2)
        first, stop = start >> base, end >> base  # new nodes of the stratum's base height
        if first == stop:
            break
        rels = range(min(tile_height, len(levels) - base))
        for t in range(first >> tile_height, ((stop - 1) >> tile_height) + 1):
            key = tile_key(base // tile_height, t)
            if first <= t * width and (t + 1) * width <= stop:
                at = [(t << (tile_height - r)) - (start >> (base + r)) for r in rels]
                order = _post_order(tile_height)
                tiles.append((key, b"".join([levels[base + r][at[r] + k] for r, k in order])))
                continue
            slotted = []
            for r in rels:
                h = base + r
                lo = max(start >> h, t << (tile_height - r))
                hi = min(end >> h, (t + 1) << (tile_height - r))
                for i in range(lo, hi):
                    last = ((i + 1) << r) - 1
                    j = last & (width - 1)
                    slotted.append((2 * j - j.bit_count() + r, levels[h][i - (start >> h)]))
            slotted.sort()
            tiles.append((key, b"".join([value for _, value in slotted])))
    return tiles, front[::-1]
