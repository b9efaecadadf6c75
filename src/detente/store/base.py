"""The store's interface: what every backend promises.

One :class:`Store` protocol, one contract test suite (``tests/store``) run against every
backend.  Versions are keyed by (id, version); ``date_added`` is integer microseconds,
strictly increasing within a node and assigned in commit order, so paging by
``added_after`` never skips or repeats a version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
import sqlalchemy as sa

from detente.stix.model import StixObject

if TYPE_CHECKING:
    from detente.store.search import Find, Found

__all__ = [
    "FEED_PREFIX",
    "IMPORTED",
    "LOCAL",
    "Outcome",
    "Page",
    "Provenance",
    "PutResult",
    "Query",
    "Store",
    "StoredObject",
    "VersionSelector",
    "feed_origin",
    "is_partner_origin",
]

#: origin of material created on this node
LOCAL = "local"
#: origin of third-party material an operator ingested locally (its ``created_by_ref``
#: names someone else): kept with its creator, never "created on this node"
IMPORTED = "local:import"
#: origin of material pulled from a TAXII feed: ``feed:NAME``
FEED_PREFIX = "feed:"


def feed_origin(name: str) -> str:
    """The origin (and trust source) of what feed ``name`` sent."""
    return f"{FEED_PREFIX}{name}"


def is_partner_origin(origin: str) -> bool:
    """Whether ``origin`` is a partner's name (a tier, releases to it): not this node,
    not a local import, not a feed.  Partner names never hold a colon."""
    return origin != LOCAL and ":" not in origin

VersionSelector = Literal["last", "first", "all"] | str


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a stored version came from: this node, or a partner (with evidence)."""

    origin: str = LOCAL
    #: STIX identity of the origin partner (None: local, or unknown): lets intake tell
    #: the creator's own copy of an object from a copy relayed by someone else
    origin_identity: str | None = None
    received_at: int | None = None
    signature: str | None = None
    receipt: str | None = None
    flags: Mapping[str, Any] = field(default_factory=dict)
    #: the same (id, version) with other content from the same source replaces the
    #: stored body (a correction its source made without a new version); never for
    #: material created on this node
    accept_corrections: bool = False


class Outcome(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class PutResult:
    """The fate of one object in a batch; ``reason`` explains a rejection."""

    index: int
    id: str
    version: str
    outcome: Outcome
    reason: str | None = None
    date_added: int | None = None
    #: stored as a correction: the body of a version already held was replaced
    corrected: bool = False


@dataclass(frozen=True, slots=True)
class StoredObject:
    id: str
    type: str
    version: str
    spec_version: str | None
    created_by_ref: str | None
    revoked: bool
    date_added: int
    raw: bytes
    provenance: Provenance
    #: what pure functions of the body made of it ahead (``StixObject.ahead``): handed
    #: on by the intake path to earned trust (``"claims"``: trust.claims.extract_ahead)
    ahead: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def body(self) -> dict[str, Any]:
        value = orjson.loads(self.raw)
        assert isinstance(value, dict)
        return value


@dataclass(frozen=True, slots=True)
class Query:
    """A filtered listing.  Empty tuples mean "no filter"; ``versions`` is TAXII
    ``match[version]``: any of ``last``, ``first``, ``all`` or exact STIX timestamps."""

    types: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    versions: tuple[str, ...] = ("last",)
    spec_versions: tuple[str, ...] = ()
    added_after: int | None = None
    limit: int | None = None
    origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    objects: list[StoredObject]
    more: bool
    #: ``date_added`` of the last object: pass as ``added_after`` for the next page
    cursor: int | None


class Store(Protocol):
    """Persistence of STIX object versions with provenance: what every consumer types
    against (one implementation, :class:`detente.store.sql.SqlStore`, serves SQLite and
    PostgreSQL; the contract suite in ``tests/store`` runs against both)."""

    engine: sa.Engine

    def create(self) -> None: ...

    def current(self) -> bool: ...

    def put_many(
        self,
        objects: Sequence[StixObject],
        provenance: Provenance,
        *,
        conn: sa.Connection | None = None,
    ) -> list[PutResult]: ...

    def get(self, object_id: str, version: VersionSelector = "last") -> StoredObject | None: ...

    def versions(self, object_id: str) -> list[StoredObject]: ...

    def list(self, query: Query) -> Page: ...

    def iter_all(self, query: Query, *, page_size: int = 1000) -> Iterator[StoredObject]: ...

    def count(self) -> int: ...

    def find(self, query: Find) -> Found: ...

    def rebuild_search(self, progress: Callable[[int, int], None] | None = None) -> int: ...

    def last_added(self) -> int | None: ...

    def held(self, ids: Iterable[str], origins: tuple[str, ...] = ()) -> set[str]: ...

    def held_versions(self, ids: Iterable[str]) -> dict[str, dict[str, str]]: ...

    def referring(self, object_id: str, types: tuple[str, ...],
                  limit: int = 500) -> tuple[StoredObject, ...]: ...

    def delete(self, object_id: str, version: VersionSelector = "all") -> int: ...

    def set_flags(self, object_id: str, version: str, flags: Mapping[str, Any]) -> None: ...

    def transaction(self) -> AbstractContextManager[sa.Connection]: ...

    def close(self) -> None: ...
