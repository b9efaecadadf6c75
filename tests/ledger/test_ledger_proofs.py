"""Proof generation and verification against published vectors and a naive reference."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.ledger.ledger_reference import (
    CT_CONSISTENCY,
    CT_EMPTY_ROOT,
    CT_INCLUSION,
    CT_LEAVES,
    CT_ROOTS,
    RefTree,
)

from detente.ledger import (
    ConsistencyProofError,
    InclusionProofError,
    verify_consistency,
    verify_inclusion,
)
from detente.ledger.hashing import fold_right, leaf_hash, subtrees
from detente.ledger.proofs import assemble, consistency_ranges, inclusion_ranges

CT = RefTree(CT_LEAVES)


def hexes(items: list[bytes]) -> list[str]:
    return [h.hex() for h in items]


def gen_inclusion(ref: RefTree, index: int, size: int) -> list[bytes]:
    return assemble(inclusion_ranges(index, size), lambda ns: [ref.node(*n) for n in ns])


def gen_consistency(ref: RefTree, old: int, new: int) -> list[bytes]:
    return assemble(consistency_ranges(old, new), lambda ns: [ref.node(*n) for n in ns])


def leaves(n: int) -> list[bytes]:
    return [i.to_bytes(4, "big") for i in range(n)]


BIG = RefTree(leaves(5000))


# -- published vectors ---------------------------------------------------------------------


def test_roots_match_the_published_vectors() -> None:
    assert hashlib.sha256(b"").hexdigest() == CT_EMPTY_ROOT
    for size, expected in enumerate(CT_ROOTS, start=1):
        assert CT.root(size).hex() == expected
        nodes = list(subtrees(0, size))
        assert fold_right([CT.node(*n) for n in nodes]).hex() == expected


def test_leaf_hash_is_the_rfc_leaf_hash() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert leaf_hash(CT_LEAVES[0]).hex() == CT_ROOTS[0]


@pytest.mark.parametrize(("index", "size"), sorted(CT_INCLUSION))
def test_inclusion_matches_published_paths(index: int, size: int) -> None:
    expected = CT_INCLUSION[(index, size)]
    assert hexes(gen_inclusion(CT, index, size)) == expected
    root = bytes.fromhex(CT_ROOTS[size - 1])
    proof = [bytes.fromhex(h) for h in expected]
    verify_inclusion(leaf_hash(CT_LEAVES[index]), index, size, proof, root)


@pytest.mark.parametrize(("old", "new"), sorted(CT_CONSISTENCY))
def test_consistency_matches_published_proofs(old: int, new: int) -> None:
    expected = CT_CONSISTENCY[(old, new)]
    assert hexes(gen_consistency(CT, old, new)) == expected
    old_root, new_root = (bytes.fromhex(CT_ROOTS[s - 1]) for s in (old, new))
    verify_consistency(old, new, old_root, new_root, [bytes.fromhex(h) for h in expected])


# -- every pair, exhaustively for small trees, sampled for large ones ----------------------


def test_every_inclusion_and_consistency_pair_up_to_64() -> None:
    ref = RefTree(leaves(64))
    for size in range(1, 65):
        root = ref.root(size)
        for index in range(size):
            proof = gen_inclusion(ref, index, size)
            assert proof == ref.inclusion(index, size)
            verify_inclusion(leaf_hash(ref.leaves[index]), index, size, proof, root)
        for old in range(0, size + 1):
            proof = gen_consistency(ref, old, size)
            assert proof == ref.consistency(old, size)
            verify_consistency(old, size, ref.root(old), root, proof)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_verifies_for_sampled_sizes(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 5000), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = gen_inclusion(BIG, index, size)
    assert proof == BIG.inclusion(index, size)
    verify_inclusion(leaf_hash(BIG.leaves[index]), index, size, proof, BIG.root(size))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_verifies_for_sampled_sizes(data: st.DataObject) -> None:
    new = data.draw(st.integers(1, 5000), label="new")
    old = data.draw(st.integers(0, new), label="old")
    proof = gen_consistency(BIG, old, new)
    assert proof == BIG.consistency(old, new)
    verify_consistency(old, new, BIG.root(old), BIG.root(new), proof)


# -- tampering -----------------------------------------------------------------------------


def flip(h: bytes, bit: int) -> bytes:
    return h[: bit // 8] + bytes([h[bit // 8] ^ (1 << (bit % 8))]) + h[bit // 8 + 1 :]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_an_inclusion_proof_is_refused(data: st.DataObject) -> None:
    size = data.draw(st.integers(2, 5000))
    index = data.draw(st.integers(0, size - 1))
    proof = gen_inclusion(BIG, index, size)
    at = data.draw(st.integers(0, len(proof) - 1))
    proof[at] = flip(proof[at], data.draw(st.integers(0, 255)))
    with pytest.raises(InclusionProofError, match="does not recompute the root"):
        verify_inclusion(leaf_hash(BIG.leaves[index]), index, size, proof, BIG.root(size))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_flipped_bit_in_a_consistency_proof_is_refused(data: st.DataObject) -> None:
    new = data.draw(st.integers(3, 5000))
    old = data.draw(st.integers(1, new - 1))
    proof = gen_consistency(BIG, old, new)
    at = data.draw(st.integers(0, len(proof) - 1))
    proof[at] = flip(proof[at], data.draw(st.integers(0, 255)))
    with pytest.raises(ConsistencyProofError, match="does not recompute"):
        verify_consistency(old, new, BIG.root(old), BIG.root(new), proof)


def test_inclusion_refuses_wrong_index_size_leaf_and_length() -> None:
    ref = RefTree(leaves(13))
    root, proof, lh = ref.root(13), ref.inclusion(6, 13), leaf_hash(ref.leaves[6])
    verify_inclusion(lh, 6, 13, proof, root)
    with pytest.raises(InclusionProofError, match="does not recompute"):
        verify_inclusion(lh, 7, 13, proof, root)
    with pytest.raises(InclusionProofError, match="does not recompute"):
        verify_inclusion(leaf_hash(b"other"), 6, 13, proof, root)
    with pytest.raises(InclusionProofError, match="outside a tree"):
        verify_inclusion(lh, 13, 13, proof, root)
    with pytest.raises(InclusionProofError, match="too short"):
        verify_inclusion(lh, 6, 13, proof[:-1], root)
    with pytest.raises(InclusionProofError, match="too long"):
        verify_inclusion(lh, 6, 13, [*proof, proof[0]], root)
    with pytest.raises(InclusionProofError, match="proof element 1"):
        verify_inclusion(lh, 6, 13, [proof[0], b"short"], root)
    with pytest.raises(InclusionProofError, match="root hash"):
        verify_inclusion(lh, 6, 13, proof, "not bytes")  # type: ignore[arg-type]
    with pytest.raises(InclusionProofError, match="leaf index"):
        verify_inclusion(lh, -1, 13, proof, root)


def test_consistency_refuses_wrong_sizes_roots_and_lengths() -> None:
    ref = RefTree(leaves(20))
    old_root, new_root, proof = ref.root(7), ref.root(20), ref.consistency(7, 20)
    verify_consistency(7, 20, old_root, new_root, proof)
    with pytest.raises(ConsistencyProofError, match="larger than"):
        verify_consistency(20, 7, new_root, old_root, proof)
    with pytest.raises(ConsistencyProofError, match="empty proof"):
        verify_consistency(7, 20, old_root, new_root, [])
    with pytest.raises(ConsistencyProofError, match="different roots"):
        verify_consistency(7, 7, old_root, new_root, [])
    with pytest.raises(ConsistencyProofError, match="must be empty"):
        verify_consistency(7, 7, old_root, old_root, proof)
    with pytest.raises(ConsistencyProofError, match="old root"):
        verify_consistency(7, 20, ref.root(6), new_root, proof)
    with pytest.raises(ConsistencyProofError, match="new root"):
        verify_consistency(7, 20, old_root, ref.root(19), proof)
    with pytest.raises(ConsistencyProofError):
        verify_consistency(8, 20, old_root, new_root, proof)
    with pytest.raises(ConsistencyProofError, match="too"):
        verify_consistency(7, 20, old_root, new_root, proof[:-1])
    with pytest.raises(ConsistencyProofError, match="new size"):
        verify_consistency(7, True, old_root, new_root, proof)  # type: ignore[arg-type]


def test_empty_and_equal_trees_are_consistent_with_empty_proofs() -> None:
    ref = RefTree(leaves(5))
    verify_consistency(0, 5, ref.root(0), ref.root(5), [])
    verify_consistency(5, 5, ref.root(5), ref.root(5), [])
