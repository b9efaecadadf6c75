"""Release batches: the batch tree is RFC 9162, and a two-level proof verifies for every
release of every batch size, and fails for anything altered."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.ledger.ledger_reference import RefTree

from detente.ledger import (
    BATCH_KIND,
    BatchProof,
    Entry,
    InclusionProofError,
    batch_path,
    batch_root,
    verify_release,
)
from detente.ledger.hashing import leaf_hash

WHEN = "2026-01-01T00:00:00.000Z"


def _release(k: int, partner: str = "fr") -> Entry:
    return Entry(kind="release", time=WHEN, partner=partner,
                 object_id=f"indicator--00000000-0000-4000-8000-{k:012d}",
                 object_version="2026-01-01T00:00:00.000Z",
                 view_hash=hashlib.sha256(str(k).encode()).hexdigest())


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_batch_root_is_the_rfc9162_root_and_every_release_proves(n: int, data: st.DataObject
                                                                 ) -> None:
    releases = [_release(k) for k in range(n)]
    leaves = [e.leaf_hash for e in releases]
    root = batch_root(leaves)
    ref = RefTree([e.canonical for e in releases])
    assert root == ref.root(n)
    assert all(batch_path(leaves, j) == ref.inclusion(j, n) for j in range(n))
    batch = Entry(kind=BATCH_KIND, time=WHEN, partner="fr", batch_root=root.hex(),
                  batch_size=n)
    k = data.draw(st.integers(min_value=0, max_value=n - 1))
    # the log: two other leaves, then the batch
    log = RefTree([b"a", b"b", batch.canonical])
    log_root = log.root(3)
    proof = BatchProof(releases[k], k, batch, 2, tuple(batch_path(leaves, k)), 3,
                       tuple(log.inclusion(2, 3)))
    verify_release(proof, log_root)
    assert leaf_hash(batch.canonical) == batch.leaf_hash
    for forged in (dataclasses.replace(proof, release=_release(n + 1)),
                   dataclasses.replace(proof, release=_release(k, partner="ru")),
                   dataclasses.replace(proof, batch_index=1)):
        with pytest.raises(InclusionProofError):
            verify_release(forged, log_root)


def test_an_empty_batch_and_a_position_outside_it_are_refused() -> None:
    with pytest.raises(InclusionProofError, match="at least one"):
        batch_root([])
    with pytest.raises(InclusionProofError, match="outside"):
        batch_path([b"\x00" * 32], 1)
