"""Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4): plans and verification.

Verification is pure and follows the RFC's iterative algorithms step by step, so a reviewer
can hold the code against the text; the numbered comments are the RFC's step numbers.
Generation is split in two: a pure *plan* (which leaf ranges the proof hashes, from the RFC's
recursive definitions of PATH and SUBPROOF) and :func:`assemble`, which turns the ranges
into hashes using a lookup of complete-subtree hashes, so the storage layer only ever reads
O(log n) stored hashes by primary key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from detente.ledger.errors import ConsistencyProofError, InclusionProofError, ProofError
from detente.ledger.hashing import HASH_SIZE, fold_right, node_hash, split_point, subtrees

__all__ = [
    "Node",
    "assemble",
    "consistency_ranges",
    "inclusion_ranges",
    "verify_consistency",
    "verify_inclusion",
]

Node = tuple[int, int]
"""A complete subtree as ``(height, index)``."""

Range = tuple[int, int]


def _check_hash(value: object, what: str, error: type[ProofError]) -> bytes:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise error(f"{what} is not a {HASH_SIZE}-byte hash")
    return value


def _check_size(value: object, what: str, error: type[ProofError]) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise error(f"{what} is not a non-negative integer: {value!r}")
    return value


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    Returns ``None`` on success; raises :class:`InclusionProofError` naming what failed.
    """
    err = InclusionProofError
    _check_hash(leaf_hash, "leaf hash", err)
    _check_hash(root, "root hash", err)
    _check_size(index, "leaf index", err)
    _check_size(size, "tree size", err)
    path = [_check_hash(p, f"proof element {i}", err) for i, p in enumerate(proof)]
    # (1) the index must lie inside the tree
    if index >= size:
        raise err(f"leaf index {index} is outside a tree of size {size}")
    # (2) fn, sn; (3) r
    fn, sn, r = index, size - 1, leaf_hash
    # (4) fold the path
    for p in path:
        if sn == 0:  # (4a)
            raise err(f"proof is too long for leaf {index} in a tree of size {size}")
        if fn & 1 or fn == sn:  # (4b)
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1  # (4c)
    # (5) the whole path was used and the root matches
    if sn != 0:
        raise err(f"proof is too short for leaf {index} in a tree of size {size}")
    if r != root:
        raise err(f"leaf {index} does not recompute the root of the tree of size {size}")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``old_size`` is a prefix of the tree of ``new_size``.

    Returns ``None`` on success; raises :class:`ConsistencyProofError` naming what failed.
    """
    err = ConsistencyProofError
    _check_size(old_size, "old size", err)
    _check_size(new_size, "new size", err)
    _check_hash(old_root, "old root", err)
    _check_hash(new_root, "new root", err)
    path = [_check_hash(p, f"proof element {i}", err) for i, p in enumerate(proof)]
    if old_size > new_size:
        raise err(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size or old_size == 0:
        if path:
            raise err(f"a proof from size {old_size} to {new_size} must be empty")
        if old_size == new_size and old_root != new_root:
            raise err(f"two different roots for the same size {old_size}")
        return
    # (1) a proof between different non-empty sizes is never empty
    if not path:
        raise err(f"empty proof from size {old_size} to {new_size}")
    # (2) a power-of-two old tree is itself a node of the new one
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # (3) fn, sn; (4) skip the levels where the old tree is a right child
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # (5) fr, sr
    fr = sr = path[0]
    # (6) fold the rest of the path
    for c in path[1:]:
        if sn == 0:  # (6a)
            raise err(f"proof is too long from size {old_size} to {new_size}")
        if fn & 1 or fn == sn:  # (6b)
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1  # (6c)
    # (7) both roots recomputed and the whole path used
    if sn != 0:
        raise err(f"proof is too short from size {old_size} to {new_size}")
    if fr != old_root:
        raise err(f"proof does not recompute the old root (size {old_size})")
    if sr != new_root:
        raise err(f"proof does not recompute the new root (size {new_size})")


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]), in proof order."""
    ranges: list[Range] = []
    start, end, m = 0, size, index
    while end - start > 1:
        k = 1 << (end - start - 1).bit_length() - 1  # split_point, inlined
        if m < k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m = start + k, m - k
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The leaf ranges whose hashes form PROOF(old_size, D[0:new_size]), in proof order."""
    ranges: list[Range] = []
    if old_size in (0, new_size):
        return ranges
    start, end, m, whole = 0, new_size, old_size, True
    while True:
        if m == end - start:
            if not whole:
                ranges.append((start, end))
            break
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, whole = start + k, m - k, False
    ranges.reverse()
    return ranges


def assemble(
    ranges: Iterable[Range], lookup: Callable[[list[Node]], Sequence[bytes]]
) -> list[bytes]:
    """Hash each range from its complete subtrees, all fetched in one ``lookup`` call.

    ``lookup`` gets the subtrees as a list and returns their hashes in the same order.
    """
    nodes: list[Node] = []
    counts: list[int] = []
    for a, b in ranges:
        width = b - a
        if width & (width - 1) == 0 and a & (width - 1) == 0:  # one complete subtree
            height = width.bit_length() - 1
            nodes.append((height, a >> height))
            counts.append(1)
        else:
            parts = list(subtrees(a, b))
            nodes.extend(parts)
            counts.append(len(parts))
    found = lookup(nodes)
    if len(found) != len(nodes):
        raise ProofError(f"lookup returned {len(found)} hashes for {len(nodes)} subtrees")
    out, at = [], 0
    for n in counts:
        out.append(found[at] if n == 1 else fold_right(found[at : at + n]))
        at += n
    return out
