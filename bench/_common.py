"""Helpers shared by the benchmarks that run detente nodes (bench/sync.py, bench/taxii.py)."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from detente.federation.exchange.local import BATCH
from detente.stix.validate import validate
from detente.store import Provenance
from detente.store.base import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def store_validated(store: Store, objects: Iterable[dict[str, Any]]) -> None:
    """Validate and store ``objects`` as local material, :data:`BATCH` at a time."""
    batch = []
    for obj in objects:
        batch.append(validate(obj))
        if len(batch) == BATCH:
            store.put_many(batch, Provenance())
            batch = []
    if batch:
        store.put_many(batch, Provenance())
