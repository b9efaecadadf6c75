"""Local intake as an analyst runs it: validate and store, then let earned trust see it.

Our own material is evidence too: a local sighting confirms (or, marked false-positive,
refutes) a partner's indicator, and our own reports can corroborate a partner's.  Tier
changes that follow are applied to the release policy at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from detente.node import Node
from detente.store.base import LOCAL, Provenance, Query
from detente.store.ingest import IngestSummary, ingest_items

__all__ = ["ingest_local", "observe_new"]

_CHUNK = 2000


def observe_new(node: Node, after: int | None) -> list[str]:
    """Feed local versions stored after ``after`` to the trust engine; re-evaluate the
    releases of partners whose tier changed.  Returns those partners."""
    query = Query(versions=("all",), added_after=after, origins=(LOCAL,))
    batch = []
    for obj in node.store.iter_all(query, page_size=_CHUNK):
        batch.append(obj)
        if len(batch) >= _CHUNK:
            node.trust.observe(batch, refresh=False)  # evidence now, tiers once below
            batch = []
    if batch:
        node.trust.observe(batch, refresh=False)
    node.trust.refresh()
    changed = sorted({c.partner for c in node.trust.tier_changes()})
    for partner in changed:
        node.releaser.reevaluate(partner)
    return changed


def ingest_local(node: Node, items: Iterable[tuple[str, object]], *, strict: bool = False,
                 on_progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Ingest local content, then run the trust engine over what was stored."""
    before = node.store.last_added()
    summary = ingest_items(node.store, items, Provenance(), strict=strict,
                           on_progress=on_progress)
    if summary.stored:
        observe_new(node, before)
    return summary
