"""What a partner may read of the ledger: its own entries in full, others' as leaf hashes.

A partner verifying the log needs every leaf hash (to recompute roots and check proofs) but
must not learn what was released to other partners; the leaf hash hides the entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from detente.ledger.entry import Entry

__all__ = ["VisibleEntry", "visible_to"]


@dataclass(frozen=True, slots=True)
class VisibleEntry:
    """Leaf ``index`` as ``partner`` sees it: ``entry`` is ``None`` when it is not theirs."""

    index: int
    leaf_hash: bytes
    entry: Entry | None


def visible_to(partner: str, index: int, entry: Entry) -> VisibleEntry:
    """The view of one entry for ``partner``."""
    return VisibleEntry(index, entry.leaf_hash, entry if entry.concerns(partner) else None)
