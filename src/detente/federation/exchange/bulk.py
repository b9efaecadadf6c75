"""The collector's pace during bulk intake (``detente ingest``, a pull) and while serving.

An intake batch allocates some fifty container objects per STIX object (the decoded
body, the validated object, its rows, trust's working sets) and frees them a batch later;
almost none are cyclic garbage.  With CPython's default threshold (a young collection
every 700 net allocations) the collector runs every dozen objects and re-scans what the
batch still holds: a third of the CPU time of an ingest, measured.  :func:`relaxed_gc`
raises the young-generation threshold for the duration of a bulk run above what one batch
allocates, and the run calls :func:`batch_done` after each batch: the young generations
are collected there, when the batch's working set is already freed, so a collection scans
only what survived instead of re-scanning a batch in flight (5% of an ingest's CPU,
measured).  Memory stays bounded: batches are bounded, reference counting frees almost
everything, a batch's cyclic garbage goes at its end, and the collector still runs by
itself every :data:`YOUNG_THRESHOLD` allocations (a run waiting on the network while other
threads allocate).  The threshold is restored afterwards.
What is alive when the run starts (modules, caches) is frozen meanwhile (``gc.freeze``),
so the full collections the run still triggers do not re-scan it.
Re-entrant and thread-safe: the threshold is process-wide, so it is restored only when
the last bulk run ends.

A serving process (``detente serve``) calls :func:`serving_gc` once it has started: what
is alive then (modules, the application, the node's services) is frozen for good, so
the collections that its requests trigger scan only what the requests allocated — not
the few hundred thousand objects of the imported libraries (without it, 15% of the CPU
of reading a partner's pages went to the collector, measured).  A bulk run inside a
serving process leaves that freeze alone.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["YOUNG_THRESHOLD", "batch_done", "relaxed_gc", "serving_gc"]

#: net allocations between young collections during a bulk run (CPython's default: 700):
#: above one intake batch's working set (5,000 objects, some fifty containers each)
YOUNG_THRESHOLD = 1_000_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
#: the process froze its start-up for good (:func:`serving_gc`)
_serving = False
#: the running bulk run froze what was alive when it started (and unfreezes it after)
_froze = False


@contextmanager
def relaxed_gc() -> Iterator[None]:
    """Run the body with young collections every :data:`YOUNG_THRESHOLD` allocations."""
    global _depth, _saved, _froze
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.set_threshold(max(_saved[0], YOUNG_THRESHOLD), _saved[1], _saved[2])
            _froze = not _serving
            if _froze:  # what exists before the run (modules, caches) is not re-scanned
                gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _saved is not None:
                gc.set_threshold(*_saved)
                if _froze:
                    gc.unfreeze()
                _saved, _froze = None, False


def batch_done() -> None:
    """One batch of a bulk run is done: collect the young generations now, while little
    is alive (nothing outside a bulk run: the collector's own pace applies there)."""
    if _depth > 0:
        gc.collect(1)


def serving_gc() -> None:
    """The process serves from now on: what is alive (modules, the application, the
    node's services, built by the caller first) is frozen for good — the collector no
    longer scans it on every full collection.  Idempotent."""
    global _serving, _froze
    with _lock:
        if _serving:
            return
        gc.collect()  # garbage of the start-up is not frozen with it
        gc.freeze()
        _serving = True
        _froze = False  # a bulk run going on now must not unfreeze it when it ends
