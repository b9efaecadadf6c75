"""Catching partners up off the request path: the one function the releaser runs.

``detente serve`` runs :func:`release_pending` every ``release_interval_s`` on its upkeep
thread; ``detente release`` runs it once in the foreground with a progress bar; tests and
the demo call it after ingesting.  A TAXII read never runs it: it serves what has been
released so far.

Work is shared out round-robin, one chunk (:data:`~detente.release.path.BATCH` versions,
one transaction) per partner per turn, so a partner added last week is not starved by one
added today, and memory holds one chunk.  Each chunk is
:meth:`Releaser.catch_up_from` — "catch partner P up from cursor C" — whose commit
compares-and-sets the cursor: a run killed at any moment resumes where the last committed
chunk ended, and two runs never release the same version twice.  Each run claims the
partners it works on (:mod:`detente.release.claims`, database-held), so several releasers
— one per ``serve`` worker — share the partners out instead of racing for the same chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from detente.errors import NotFoundError
from detente.release.claims import Claims
from detente.release.path import BATCH, Releaser, ReleaseRun

__all__ = ["PendingRun", "release_pending"]


@dataclass
class PendingRun:
    """What one :func:`release_pending` did, per partner and in total."""

    runs: dict[str, ReleaseRun] = field(default_factory=dict)
    #: partners still behind when the run ended (stopped or out of time)
    behind: list[str] = field(default_factory=list)
    #: partners behind that other releasers were working on when the run ended (they
    #: catch them up)
    elsewhere: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def evaluated(self) -> int:
        return sum(r.evaluated for r in self.runs.values())

    @property
    def released(self) -> int:
        return sum(r.released for r in self.runs.values())

    @property
    def denied(self) -> int:
        return sum(r.denied for r in self.runs.values())


def release_pending(
    releaser: Releaser,
    partners: Sequence[str] | None = None,
    *,
    should_stop: Callable[[], bool] | None = None,
    budget_s: float | None = None,
    on_chunk: Callable[[str, ReleaseRun], None] | None = None,
    chunk: int = BATCH,
) -> PendingRun:
    """Catch every partner (or those named) up with what was stored since its cursor.

    ``should_stop`` and ``budget_s`` end the run between chunks (the serve worker passes
    its stop flag and a time slice so other upkeep tasks get their turn); the rest is
    released by the next run.  ``on_chunk(partner, chunk run)`` after each committed
    chunk (the progress bar).  ``chunk``: versions per chunk, i.e. per write transaction
    (``serve`` takes smaller ones than ``detente release``: a request that writes — a
    signed request's nonce — waits for the one in progress).  Unknown partner names are
    a :class:`NotFoundError`."""
    started = time.monotonic()
    out = PendingRun()
    names = list(partners) if partners is not None else [
        p.name for p in releaser.partners.all()]
    for name in names:
        releaser.partners.get(name)  # (1) unknown names fail before any work
        out.runs[name] = ReleaseRun(name)

    def stop() -> bool:
        if should_stop is not None and should_stop():
            return True
        return budget_s is not None and time.monotonic() - started >= budget_s

    # (2) who is behind: one read of the newest date_added and of every cursor
    last = releaser.store.last_added()
    cursors = releaser.cursors()
    active = [n for n in names if last is not None and cursors.get(n, -1) < last]
    # furthest behind first: a run ended by its budget mid-turn gave its extra chunk to the
    # front of the list, so with a fixed order the first partners drifted ahead run after
    # run (35,000 versions at 1M x 20) and the members of a policy class no longer shared
    # decisions (the class memo holds a few chunks); the laggards now take that chunk
    active.sort(key=lambda n: cursors.get(n, -1))
    # (3) round-robin, one chunk per partner per turn, until nobody is behind.  Each chunk
    # is claimed (database-held) and given back after it, so several releasers (one per
    # serve worker) take turns on the partners; a partner another releaser is working on
    # is skipped this turn, and the run ends when every partner behind is someone else's
    with Claims(releaser.store.engine) as claims:
        while active and not stop():
            progressed = False
            for name in list(active):
                if stop():
                    break
                if not claims.take(name):
                    continue
                try:
                    # the cursor as the last holder left it (no chunk thrown away)
                    step = releaser.catch_up_from(name, releaser.cursors().get(name),
                                                  chunk)
                except NotFoundError:  # removed meanwhile: nothing more to release to it
                    active.remove(name)
                    continue
                finally:
                    claims.give_back(name)
                progressed = True
                out.runs[name].add(step.run)
                if step.done:
                    active.remove(name)
                elif on_chunk is not None and not step.retried:
                    on_chunk(name, step.run)
            if not progressed and active and not stop():
                out.elsewhere, active = active, []
    out.behind = active
    out.seconds = time.monotonic() - started
    return out
