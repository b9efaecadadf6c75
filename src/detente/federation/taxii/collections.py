"""The two TAXII collections and what each principal reads from them.

``releases``: the views released to the requesting partner (read-only).  Read only through
:func:`detente.release.read_releases` with that partner's name: what has been released so
far.  A read never waits for pending release work — the background releaser (``detente
serve``) or ``detente release`` does it — so a partner's page costs the same at any
backlog; a version it may not see (or not yet) is absent, exactly as if it did not exist.

``inbox``: where partners push (write-only for them).  The local operator reads it: every
stored version whose origin is a partner of this node.  The operator reads nothing from
``releases`` (it has no releases of its own — the node's own objects are read with
``detente list``/``show``), and may DELETE versions from ``inbox``.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, replace
from typing import Any

from detente.errors import ForbiddenError, NotFoundError
from detente.federation.exchange.aliases import INBOX, RELEASES
from detente.federation.http.auth import Principal
from detente.node import Node
from detente.release import read_releases
from detente.stix.timestamps import format_micros
from detente.store.base import Query

__all__ = ["INBOX", "RELEASES", "Collection", "Listing", "Row", "collections_for", "taxii_version"]

STIX_MEDIA = "application/stix+json;version=2.1"


@dataclass(frozen=True, slots=True)
class Collection:
    alias: str
    id: str
    title: str
    description: str

    def resource(self, principal: Principal) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "description": self.description,
            "alias": self.alias, "can_read": can_read(self.alias, principal),
            "can_write": can_write(self.alias, principal), "media_types": [STIX_MEDIA],
        }


@dataclass(frozen=True, slots=True)
class Row:
    """One served object version: TAXII version, date_added and the exact bytes."""

    id: str
    #: the stored version ("" for an unversioned SCO)
    stored_version: str
    date_added: int
    body: bytes

    @property
    def version(self) -> str:
        return taxii_version(self.stored_version, self.date_added)

    def manifest(self) -> dict[str, str]:
        return {"id": self.id, "date_added": format_micros(self.date_added),
                "version": self.version, "media_type": STIX_MEDIA}


@dataclass(frozen=True, slots=True)
class Listing:
    rows: list[Row]
    more: bool
    cursor: int | None


def collections_for(node: Node) -> list[Collection]:
    base = node.identity_id

    def cid(alias: str) -> str:
        # TAXII 2.1 §2 and §5.2.1: an RFC 4122 *version 4* UUID; derived from the node's
        # identity so it is stable across restarts (the version and variant bits set)
        digest = hashlib.sha256(f"detente:{base}/{alias}".encode()).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    return [
        Collection(RELEASES, cid(RELEASES), f"Releases of {node.name}",
                   "What this node has released to you: your views, and only yours."),
        Collection(INBOX, cid(INBOX), f"Inbox of {node.name}",
                   "Push STIX 2.1 objects to this node; each is validated and stored "
                   "with its provenance."),
    ]


def can_read(alias: str, principal: Principal) -> bool:
    if alias == RELEASES:
        return not principal.is_operator
    return principal.is_operator


def can_write(alias: str, principal: Principal) -> bool:
    return alias == INBOX and not principal.is_operator


def require_read(alias: str, principal: Principal) -> None:
    if not can_read(alias, principal):
        raise ForbiddenError(f"collection {alias} is not readable by you",
                             hint="partners read 'releases'; the operator reads 'inbox'")


class Reader:
    """Reads collections for principals: released views only, never releasing work."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def read(self, alias: str, principal: Principal, query: Query) -> Listing:
        require_read(alias, principal)
        if alias == RELEASES:
            return self._releases(principal.require_partner(), query)
        return self._inbox(query)

    def _releases(self, partner: str, query: Query) -> Listing:
        page = read_releases(self.node.store.engine, partner, query,
                             self.node.releaser.views)
        rows = [Row(v.id, v.version, v.date_added, v.view) for v in page.views]
        return Listing(rows, page.more, page.cursor)

    def _inbox(self, query: Query) -> Listing:
        origins = tuple(p.name for p in self.node.partners.all())
        if not origins:
            return Listing([], False, None)
        page = self.node.store.list(replace(query, origins=origins))
        rows = [Row(o.id, o.version, o.date_added, o.raw) for o in page.objects]
        return Listing(rows, page.more, page.cursor)

    def delete(self, principal: Principal, object_id: str, query: Query) -> int:
        """The operator's DELETE on ``inbox``: versions received from partners."""
        principal.require_operator()
        listing = self._inbox(replace(query, ids=(object_id,), limit=None))
        if not listing.rows:
            raise NotFoundError(f"no object {object_id} in inbox")
        deleted = 0
        for version in {r.stored_version or "all" for r in listing.rows}:
            deleted += self.node.store.delete(object_id, version)
        return deleted


def taxii_version(stored: str, date_added: int) -> str:
    """The TAXII version of a stored version: its timestamp with the shortest of 3, 6 or
    9 sub-second digits that loses nothing; date_added for unversioned SCOs."""
    if not stored:
        return format_micros(date_added)
    head, _, frac = stored.rstrip("Z").partition(".")
    frac = frac.ljust(9, "0")
    for width in (3, 6):
        if frac[width:].strip("0") == "":
            return f"{head}.{frac[:width]}Z"
    return f"{head}.{frac}Z"
