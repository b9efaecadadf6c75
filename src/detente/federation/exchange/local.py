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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import sqlalchemy as sa

from detente.errors import DetenteError
from detente.federation.exchange.bulk import batch_done, relaxed_gc
from detente.federation.exchange.intake import Detail, Intake, IntakeResult, Source
from detente.federation.exchange.pipe import Checked, Worker, can_fork, worth_forking
from detente.node import Node
from detente.stix.bundle import DecodeFailure

__all__ = ["BATCH", "IngestSummary", "Rejection", "StrictRollback", "ingest_local"]

BATCH = 5000
#: inputs of at most this many batches stay in this process (a worker's start-up is not
#: worth it for them); larger ones are read and validated ahead in a worker
WORKER_AFTER = 2
#: ``on_progress`` is called every this many items read (and once at the end)
PROGRESS_EVERY = 500


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
        self.rejected += [_rejection(f) for f in result.failures]


def _rejection(failure: Detail) -> Rejection:
    return Rejection(failure.position or "?", None if failure.id == "unknown" else failure.id,
                     failure.message or "rejected")


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

    def checked(self, batch: Checked) -> None:
        """A batch the worker read and validated: its rejections as the in-process
        path lists them (decode failures, then validation, then the store's)."""
        self.summary.rejected += [Rejection(p, None, m) for p, m in batch.decode_failures]
        self.summary.rejected += [_rejection(d) for d in batch.rejected]
        if batch.items:
            self.summary.add(self.intake.receive(batch.valid, positions=batch.at,
                                                 conn=self.conn))
            batch_done()


def ingest_local(node: Node, items: Iterable[tuple[str, object]], *, strict: bool = False,
                 accept_corrections: bool = False,
                 on_progress: Callable[[int], None] | None = None,
                 worker: bool | None = None) -> IngestSummary:
    """Ingest local content through the intake path; never raises for bad objects.

    ``accept_corrections``: third-party material (a local import) already stored at the
    same version with other content is replaced — its creator corrected it without a
    new version (ATT&CK releases do); material created on this node never is.
    ``worker``: an input of more than :data:`WORKER_AFTER` batches is read and validated
    in a second process (:mod:`detente.federation.exchange.pipe`) when this process may
    fork and (None) a core is free, or (True) whatever the load; False keeps all of it in
    this process.  The worker dying or
    failing raises :class:`~detente.federation.exchange.pipe.WorkerFailed` (the batches
    stored before stay; with ``strict`` nothing does)."""
    summary = IngestSummary()
    started = time.perf_counter()
    with relaxed_gc(), Intake(node, Source(accept_corrections=accept_corrections)) as intake:
        if strict:
            try:
                with node.store.transaction() as conn:
                    _run(intake, items, summary, conn, on_progress, worker)
                    if summary.rejected:
                        raise StrictRollback("strict ingest rejected objects; nothing stored")
            except StrictRollback:
                intake.discard()
                summary.rolled_back = True
                summary.stored = summary.duplicates = summary.corrected = 0
        else:
            _run(intake, items, summary, None, on_progress, worker)
    summary.seconds = time.perf_counter() - started
    return summary


def _run(intake: Intake, items: Iterable[tuple[str, object]], summary: IngestSummary,
         conn: sa.Connection | None, on_progress: Callable[[int], None] | None,
         worker: bool | None) -> None:
    batcher = _Batcher(intake, summary, conn)
    rest = iter(items)
    fork = worker is not False and (worth_forking() if worker is None else can_fork())
    head, first = _head(rest) if fork else ([], None)
    if first is None:  # a small input (or no worker): all of it here
        _read(batcher, chain(head, rest), summary, on_progress)
    else:  # the worker reads on while this process stores the head
        trust = intake.node.trust.config if intake.trust else None
        with Worker(chain([first], rest), batch=BATCH, seen=len(head), trust=trust) as ahead:
            seen = _read(batcher, head, summary, on_progress)
            for batch in ahead:
                if on_progress is not None:  # read, as the in-process path tells it
                    every = PROGRESS_EVERY
                    for n in range(seen + every - seen % every, batch.seen + 1, every):
                        on_progress(n)
                seen = batch.seen
                batcher.checked(batch)
    if on_progress is not None:
        on_progress(summary.seen)


def _head(items: Iterator[tuple[str, object]]
          ) -> tuple[list[tuple[str, object]], tuple[str, object] | None]:
    """The first :data:`WORKER_AFTER` whole batches of the input, and the item after
    them (None: the input ends there — a small input)."""
    head: list[tuple[str, object]] = []
    counted = 0
    for item in items:
        if counted == WORKER_AFTER * BATCH:
            return head, item
        head.append(item)
        counted += not isinstance(item[1], DecodeFailure | DetenteError)
    return head, None


def _read(batcher: _Batcher, items: Iterable[tuple[str, object]], summary: IngestSummary,
          on_progress: Callable[[int], None] | None) -> int:
    """The in-process path: read, batch and receive; returns the items read."""
    n = 0
    for n, (position, raw) in enumerate(items, 1):
        if isinstance(raw, DecodeFailure | DetenteError):
            summary.rejected.append(Rejection(position, None, raw.message))
        else:
            batcher.add(position, raw)
        if on_progress is not None and n % PROGRESS_EVERY == 0:
            on_progress(n)
    batcher.flush()
    return n
