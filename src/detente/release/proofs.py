"""Two-level proofs of releases: release entry → release batch → log.

Every release commit logs one ``release-batch`` entry (:mod:`detente.ledger.batch`); the
release entries under it are rebuilt from the release rows of that batch, in ``seq``
order, with the batch entry's time.  :func:`batch_entries` is what a partner is sent for
its own batches (``GET /ledger/batch``); :func:`prove_release` what ``detente log prove``,
``trace`` and the object page check.
"""

from __future__ import annotations

from typing import Protocol

import sqlalchemy as sa

from detente.errors import NotFoundError
from detente.ledger import BATCH_KIND, BatchProof, Entry, batch_path
from detente.release.ids import object_id_of
from detente.release.path import release_entry
from detente.release.schema import batches, releases, views
from detente.store.engine import reader

__all__ = ["SupportsProofs", "batch_entries", "prove_release"]


class SupportsProofs(Protocol):
    """What proving needs of the ledger."""

    def entry(self, index: int) -> Entry: ...

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]: ...


def batch_entries(engine: sa.Engine, ledger: SupportsProofs, index: int
                  ) -> tuple[Entry, list[tuple[int, Entry]]]:
    """The batch entry at ledger ``index`` and its release entries (with their seq), in
    batch order; NotFoundError when that leaf is not a release batch of this node's."""
    batch = ledger.entry(index)
    if batch.kind != BATCH_KIND or batch.partner is None:
        raise NotFoundError(f"ledger entry {index} is not a release batch")
    r, v, b = releases.c, views.c, batches.c
    with reader(engine).connect() as conn:
        span = conn.execute(sa.select(b.first_seq, b.last_seq)
                            .where(b.ledger_index == index)).first()
        if span is None:
            raise NotFoundError(f"ledger entry {index} is no release batch of this node")
        stmt = (sa.select(r.seq, object_id_of(v), v.version, r.view_hash)
                .select_from(releases.join(views, v.id == r.view))
                .where(r.partner == batch.partner, r.seq >= span[0], r.seq <= span[1],
                       r.batch == index)
                .order_by(r.seq))
        rows = conn.execute(stmt).all()
    entries = [(int(seq), release_entry(batch.partner, oid, ver, bytes(h).hex(), batch.time))
               for seq, oid, ver, h in rows]
    if len(entries) != batch.batch_size:
        raise NotFoundError(f"ledger entry {index}: {len(entries)} of its "
                            f"{batch.batch_size} releases are on record")
    return batch, entries


def prove_release(engine: sa.Engine, ledger: SupportsProofs, seq: int, batch_index: int,
                  size: int) -> BatchProof:
    """The two-level proof of release ``seq`` (logged by batch ``batch_index``) in the
    tree of ``size``."""
    batch, entries = batch_entries(engine, ledger, batch_index)
    position = next((k for k, (s, _e) in enumerate(entries) if s == seq), None)
    if position is None:
        raise NotFoundError(f"release {seq} is not in ledger batch {batch_index}")
    leaves = [e.leaf_hash for _s, e in entries]
    return BatchProof(entries[position][1], position, batch, batch_index,
                      tuple(batch_path(leaves, position)), size,
                      tuple(ledger.inclusion_proof(batch_index, size)))


