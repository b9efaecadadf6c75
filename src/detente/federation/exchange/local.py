"""Local ingest as an analyst runs it: the intake path's ``local`` route.

Decoded input — ``(position, raw object or decode error)`` pairs from
:mod:`detente.stix.bundle` — goes to :class:`~detente.federation.exchange.intake.Intake`
in batches of :data:`BATCH`: validated, stored, and seen by earned trust (our own
sightings confirm a partner's report, our own earlier reports corroborate), with the
tiers refreshed once at the end.  Valid objects are stored even when others are rejected;
with ``strict`` the whole input is one transaction, stored only if nothing was rejected.
Otherwise each batch is one transaction, so a process killed at any moment leaves every
batch fully present or absent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from detente.errors import DetenteError
from detente.federation.exchange.bulk import batch_done, relaxed_gc
from detente.federation.exchange.intake import Intake, IntakeResult, Source
from detente.node import Node
from detente.stix.bundle import DecodeFailure

__all__ = ["BATCH", "IngestSummary", "Rejection", "StrictRollback", "ingest_local"]

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
    """What one ``detente ingest`` did; ``seconds`` is the wall time of all of it (reading,
    validation, storage and earned trust)."""

    stored: int = 0
    duplicates: int = 0
    #: versions stored as corrections (``--accept-corrections``): their body replaced
    corrected: int = 0
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
            "corrected": self.corrected,
            "rejected": len(self.rejected),
            "rejections": [r.as_dict() for r in self.rejected],
            "seconds": round(self.seconds, 3),
            "objects_per_second": round(self.per_second, 1),
            "rolled_back": self.rolled_back,
        }

    def add(self, result: IntakeResult) -> None:
        self.stored += len(result.stored)
        self.duplicates += result.duplicates
        self.corrected += result.corrected
        self.rejected += [Rejection(f.position or "?", None if f.id == "unknown" else f.id,
                                    f.message or "rejected") for f in result.failures]


class StrictRollback(DetenteError):
    """Raised inside a strict ingest to undo everything when something was rejected."""


class _Batcher:
    def __init__(self, intake: Intake, summary: IngestSummary,
                 conn: sa.Connection | None) -> None:
        self.intake, self.summary, self.conn = intake, summary, conn
        self.raws: list[Any] = []
        self.positions: list[str] = []

    def add(self, position: str, raw: Any) -> None:
        self.raws.append(raw)
        self.positions.append(position)
        if len(self.raws) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.raws:
            self.summary.add(self.intake.receive(self.raws, positions=self.positions,
                                                 conn=self.conn))
            self.raws, self.positions = [], []
            batch_done()


def ingest_local(node: Node, items: Iterable[tuple[str, object]], *, strict: bool = False,
                 accept_corrections: bool = False,
                 on_progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Ingest local content through the intake path; never raises for bad objects.

    ``accept_corrections``: third-party material (a local import) already stored at the
    same version with other content is replaced — its creator corrected it without a
    new version (ATT&CK releases do); material created on this node never is."""
    summary = IngestSummary()
    started = time.perf_counter()
    with relaxed_gc(), Intake(node, Source(accept_corrections=accept_corrections)) as intake:
        if strict:
            try:
                with node.store.transaction() as conn:
                    _run(intake, items, summary, conn, on_progress)
                    if summary.rejected:
                        raise StrictRollback("strict ingest rejected objects; nothing stored")
            except StrictRollback:
                intake.discard()
                summary.rolled_back = True
                summary.stored = summary.duplicates = summary.corrected = 0
        else:
            _run(intake, items, summary, None, on_progress)
    summary.seconds = time.perf_counter() - started
    return summary


def _run(intake: Intake, items: Iterable[tuple[str, object]], summary: IngestSummary,
         conn: sa.Connection | None, on_progress: Callable[[int], None] | None) -> None:
    batcher = _Batcher(intake, summary, conn)
    for n, (position, raw) in enumerate(items, 1):
        if isinstance(raw, DecodeFailure | DetenteError):
            summary.rejected.append(Rejection(position, None, raw.message))
        else:
            batcher.add(position, raw)
        if on_progress is not None and n % 500 == 0:
            on_progress(n)
    batcher.flush()
    if on_progress is not None:
        on_progress(summary.seen)
