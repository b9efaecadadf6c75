"""The validated STIX object as the rest of detente sees it.

A :class:`StixObject` exists only after validation (``detente.stix.validate``): holding
one means the id, type, version and references were checked.  ``body`` is the object as
received (custom properties kept; identifiers with upper-case hex folded to lower case),
``raw`` its compact JSON as stored, and ``digest`` the
SHA-256 of its sorted-key JSON, which tells a harmless duplicate from a version conflict.
``ahead`` holds what pure functions of ``body`` made of it, computed ahead in an ingest
worker process (:mod:`detente.federation.exchange.pipe`), keyed by the function's home —
``"search"``: :func:`detente.store.search.doc_fields`, ``"claims"``:
:func:`detente.trust.claims.extract_ahead`; each consumer computes its own when the key is
absent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["UNVERSIONED", "StixObject"]

#: ``version`` of objects that have neither ``modified`` nor ``created`` (SCOs).
UNVERSIONED = ""


@dataclass(frozen=True, slots=True)
class StixObject:
    id: str
    type: str
    #: normalised ``modified`` (or ``created`` for unversioned types), "" for SCOs
    version: str
    spec_version: str
    created_by_ref: str | None
    revoked: bool
    body: dict[str, Any]
    raw: bytes
    digest: bytes
    #: what pure functions of ``body`` made of it, computed ahead (see the module)
    ahead: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.version)
