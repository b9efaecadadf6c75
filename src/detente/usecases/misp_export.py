"""``detente export --format misp``: what to write, for whom.

With a partner, the feed holds exactly what that partner is served over TAXII: the release
path is caught up for it first (policy, redaction, fingerprint, ledger entry), then its
released views are read back, latest version of each object — the same
``Releaser.catch_up`` + ``read_releases`` pair the TAXII ``releases`` collection uses, so a
MISP feed can never show a partner more than TAXII would.  Without a partner, the feed
holds every object stored here (the operator's own copy).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from detente.misp.feed import FeedSummary, Org, write_feed
from detente.release import read_releases
from detente.store.base import Query

if TYPE_CHECKING:
    from detente.node import Node

__all__ = ["export_misp_feed", "objects_for"]

_PAGE = 1000
#: Namespace of the uuid of a feed's catch-all event (objects no report references).
_REST_NAMESPACE = uuid.UUID("6f0f6d44-5b39-4d55-9b0e-2a3c8a4de1f3")


def objects_for(node: Node, partner: str | None) -> Iterator[dict[str, Any]]:
    """The latest version of every object ``partner`` is served (or every stored one)."""
    if partner is None:
        for stored in node.store.iter_all(Query(versions=("last",))):
            yield stored.body
        return
    known = node.partners.get(partner)  # NotFoundError names an unknown partner
    node.releaser.catch_up(known.name)                                           # (1)
    after: int | None = None
    while True:                                                                  # (2)
        page = read_releases(node.store.engine, known.name,
                             Query(versions=("last",), added_after=after, limit=_PAGE),
                             node.releaser.views)
        for view in page.views:
            yield orjson.loads(view.view)
        if not page.more:
            return
        after = page.cursor


def export_misp_feed(node: Node, directory: Path, partner: str | None = None) -> FeedSummary:
    """Write the MISP feed of what ``partner`` may see (or of everything) to ``directory``."""
    org = Org(node.name, node.identity_id.split("--", 1)[1])
    audience = partner or "local"
    rest = uuid.uuid5(_REST_NAMESPACE, f"{node.identity_id}|{audience}")
    title = f"detente {node.name}: objects released to {partner}" if partner else (
        f"detente {node.name}: objects without a report")
    return write_feed(objects_for(node, partner), directory, org=org,
                      rest_uuid=str(rest), rest_title=title)
