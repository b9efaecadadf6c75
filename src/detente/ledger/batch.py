"""Release batches: one ledger leaf for many releases, with a two-level proof.

The release path commits its work in chunks (one partner, up to a few hundred views, one
transaction).  Each chunk's releases are the leaves of a small RFC 9162 tree of their own,
the **batch tree**: leaf ``k`` is the canonical bytes of the ``release`` entry of the
chunk's ``k``-th release (partner, object, version, view hash, and the batch's time).  The
log gets one ``release-batch`` entry naming the partner, the batch tree's root and its
size.  A release is then proved in two steps, both RFC 9162 inclusion proofs:

  (1) its release entry is leaf ``k`` of the batch tree of ``batch_size`` leaves whose root
      is the ``batch_root`` of the batch entry;
  (2) the batch entry is leaf ``i`` of the log, under a signed checkpoint.

Nothing is lost against one leaf per release: the release entry is the same record, the
batch entry concerns the same partner (who alone may read it, and the releases in it), and
the log stays append-only and witnessed as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from detente.ledger.entry import Entry
from detente.ledger.errors import InclusionProofError
from detente.ledger.hashing import fold_right, leaf_hash, node_hash, subtrees
from detente.ledger.proofs import inclusion_ranges, verify_inclusion

__all__ = ["BATCH_KIND", "BatchProof", "batch_path", "batch_root", "verify_release"]

BATCH_KIND = "release-batch"


def _range_hash(leaves: Sequence[bytes], a: int, b: int) -> bytes:
    """MTH of leaves [a, b) (in memory: a batch holds a few hundred leaves)."""
    parts = []
    for height, index in subtrees(a, b):
        level = list(leaves[index << height:(index + 1) << height])
        while len(level) > 1:
            level = [node_hash(level[k], level[k + 1]) for k in range(0, len(level), 2)]
        parts.append(level[0])
    return fold_right(parts)


def batch_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 9162 root of a batch's release-entry leaf hashes (at least one)."""
    if not leaves:
        raise InclusionProofError("a release batch holds at least one release")
    return _range_hash(leaves, 0, len(leaves))


def batch_path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    """The RFC 9162 inclusion proof of leaf ``index`` in the batch tree of ``leaves``."""
    if not 0 <= index < len(leaves):
        raise InclusionProofError(f"release {index} is outside a batch of {len(leaves)}")
    return [_range_hash(leaves, a, b) for a, b in inclusion_ranges(index, len(leaves))]


@dataclass(frozen=True, slots=True)
class BatchProof:
    """Everything needed to check one release against a checkpointed log."""

    release: Entry
    position: int
    batch: Entry
    batch_index: int
    batch_path: tuple[bytes, ...]
    tree_size: int
    log_path: tuple[bytes, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "release": self.release.to_dict(), "position": self.position,
            "batch": self.batch.to_dict(), "ledger_index": self.batch_index,
            "batch_proof": [h.hex() for h in self.batch_path],
            "tree_size": self.tree_size, "proof": [h.hex() for h in self.log_path],
        }


def verify_release(proof: BatchProof, root: bytes) -> None:
    """Check both levels of ``proof`` against the log root ``root`` (raises
    :class:`~detente.ledger.InclusionProofError` naming the failing step)."""
    batch, release = proof.batch, proof.release
    # (1) the batch entry is a release batch for the release's partner
    if batch.kind != BATCH_KIND or batch.batch_root is None or batch.batch_size is None:
        raise InclusionProofError("the ledger entry is not a release batch")
    if release.kind != "release" or release.partner != batch.partner:
        raise InclusionProofError("the release does not belong to this batch's partner")
    if release.time != batch.time:
        raise InclusionProofError("the release's time is not its batch's time")
    # (2) the release entry is in the batch tree
    verify_inclusion(release.leaf_hash, proof.position, batch.batch_size,
                     list(proof.batch_path), bytes.fromhex(batch.batch_root))
    # (3) the batch entry is in the log
    verify_inclusion(leaf_hash(batch.canonical), proof.batch_index, proof.tree_size,
                     list(proof.log_path), root)
