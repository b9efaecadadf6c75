"""Local intake: read, validate and store STIX content in batches.

Valid objects are stored even when others are rejected; with ``strict`` the whole input is
one transaction, stored only if nothing was rejected.  Each batch is one transaction, so a
process killed at any moment leaves every batch fully present or absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from detente.errors import DetenteError, ValidationError
from detente.stix.bundle import DecodeFailure
from detente.stix.model import StixObject
from detente.stix.validate import validate
from detente.store.base import Outcome, Provenance, PutResult
from detente.store.sql import SqlStore

__all__ = ["IngestSummary", "Rejection", "StrictRollback", "ingest_items"]

BATCH = 5000


@dataclass(frozen=True, slots=True)
class Rejection:
    position: str
    id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "id": self.id, "reason": self.reason}


@dataclass
class IngestSummary:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    seconds: float = 0.0
    rolled_back: bool = False

    @property
    def seen(self) -> int:
        return self.stored + self.duplicates + len(self.rejected)

    @property
    def per_second(self) -> float:
        return self.seen / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stored": self.stored,
            "duplicates": self.duplicates,
            "rejected": len(self.rejected),
            "rejections": [r.as_dict() for r in self.rejected],
            "seconds": round(self.seconds, 3),
            "objects_per_second": round(self.per_second, 1),
            "rolled_back": self.rolled_back,
        }


class StrictRollback(DetenteError):
    """Raised inside a strict ingest to undo everything when something was rejected."""


def _readable_id(raw: object) -> str | None:
    if isinstance(raw, dict):
        value = raw.get("id")
        return value if isinstance(value, str) else None
    return None


class _Batcher:
    def __init__(self, store: SqlStore, prov: Provenance, summary: IngestSummary,
                 conn: sa.Connection | None) -> None:
        self.store, self.prov, self.summary, self.conn = store, prov, summary, conn
        self.objs: list[StixObject] = []
        self.positions: list[str] = []

    def add(self, position: str, obj: StixObject) -> None:
        self.objs.append(obj)
        self.positions.append(position)
        if len(self.objs) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if not self.objs:
            return
        results = self.store.put_many(self.objs, self.prov, conn=self.conn)
        self._count(results)
        self.objs, self.positions = [], []

    def _count(self, results: list[PutResult]) -> None:
        for r in results:
            if r.outcome is Outcome.STORED:
                self.summary.stored += 1
            elif r.outcome is Outcome.DUPLICATE:
                self.summary.duplicates += 1
            else:
                self.summary.rejected.append(
                    Rejection(self.positions[r.index], r.id, r.reason or "rejected")
                )


def ingest_items(
    store: SqlStore,
    items: Iterable[tuple[str, object]],
    provenance: Provenance,
    *,
    strict: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> IngestSummary:
    """Validate and store ``(position, raw object or decode error)`` pairs."""
    summary = IngestSummary()
    started = time.perf_counter()
    if strict:
        try:
            with store.transaction() as conn:
                _run(store, items, provenance, summary, conn, on_progress)
                if summary.rejected:
                    raise StrictRollback("strict ingest rejected objects; nothing stored")
        except StrictRollback:
            summary.rolled_back = True
            summary.stored = summary.duplicates = 0
    else:
        _run(store, items, provenance, summary, None, on_progress)
    summary.seconds = time.perf_counter() - started
    return summary


def _run(
    store: SqlStore, items: Iterable[tuple[str, object]], prov: Provenance,
    summary: IngestSummary, conn: sa.Connection | None,
    on_progress: Callable[[int], None] | None,
) -> None:
    batcher = _Batcher(store, prov, summary, conn)
    for n, (position, raw) in enumerate(items, 1):
        if isinstance(raw, DecodeFailure | DetenteError):
            summary.rejected.append(Rejection(position, None, raw.message))
        else:
            try:
                batcher.add(position, validate(raw))
            except ValidationError as exc:
                summary.rejected.append(Rejection(position, _readable_id(raw), str(exc)))
        if on_progress is not None and n % 500 == 0:
            on_progress(n)
    batcher.flush()
    if on_progress is not None:
        on_progress(summary.seen)
