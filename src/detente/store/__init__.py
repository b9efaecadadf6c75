"""Persistence of STIX object versions with provenance, behind one interface."""

from detente.store.base import (
    LOCAL,
    Outcome,
    Page,
    Provenance,
    PutResult,
    Query,
    Store,
    StoredObject,
)
from detente.store.engine import make_engine
from detente.store.search import Find, Found, Hit
from detente.store.sql import SqlStore, open_store

__all__ = [
    "LOCAL",
    "Find",
    "Found",
    "Hit",
    "Outcome",
    "Page",
    "Provenance",
    "PutResult",
    "Query",
    "SqlStore",
    "Store",
    "StoredObject",
    "make_engine",
    "open_store",
]
