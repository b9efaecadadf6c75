"""relaxed_gc: the collector's threshold is raised for a bulk run and restored after it,
nested or from several threads at once, and nothing stays frozen; serving_gc: a serving
process's start-up stays frozen, whatever bulk runs it does."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from detente.federation.exchange import bulk
from detente.federation.exchange.bulk import YOUNG_THRESHOLD, batch_done, relaxed_gc, serving_gc


def test_threshold_raised_then_restored_when_the_last_run_ends() -> None:
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)
        with relaxed_gc():
            assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)
        assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)  # outer still runs
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_restored_after_an_error_and_across_threads() -> None:
    before = gc.get_threshold()
    try:
        with relaxed_gc():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.get_threshold() == before
    inside = threading.Barrier(4)

    def run() -> None:
        with relaxed_gc():
            inside.wait(timeout=30)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


class _Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_batchs_cyclic_garbage_is_freed_when_the_batch_is_done() -> None:
    import weakref

    with relaxed_gc():
        cycle = _Cycle()
        gone = weakref.ref(cycle)
        del cycle
        assert gone() is not None  # a cycle: reference counting alone keeps it
        batch_done()
        assert gone() is None


def test_batch_done_outside_a_bulk_run_leaves_the_collector_alone() -> None:
    gc.collect()
    gc.disable()
    try:
        cycle = _Cycle()
        count = gc.get_count()[0]
        batch_done()
        assert gc.get_count()[0] >= count  # no collection ran
        del cycle
    finally:
        gc.enable()


@pytest.fixture()
def serving(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """serving_gc in this (test) process, undone afterwards."""
    monkeypatch.setattr(bulk, "_serving", False)
    try:
        yield
    finally:
        gc.unfreeze()


def _frozen(obj: object) -> bool:
    """Tracked by the collector but in none of its generations: frozen."""
    return gc.is_tracked(obj) and not any(o is obj for g in range(3)
                                          for o in gc.get_objects(generation=g))


def test_serving_freezes_the_start_up_once(serving: None) -> None:
    kept = _Cycle()  # alive at start-up: frozen with it
    assert gc.get_freeze_count() == 0 and not _frozen(kept)
    serving_gc()
    assert _frozen(kept)
    later = _Cycle()
    serving_gc()  # once: what the process allocates later is not frozen
    assert _frozen(kept) and not _frozen(later)


def test_a_bulk_run_in_a_serving_process_leaves_its_freeze_alone(serving: None) -> None:
    kept = _Cycle()
    serving_gc()
    before = gc.get_threshold()
    with relaxed_gc():
        assert gc.get_threshold()[0] == max(before[0], YOUNG_THRESHOLD)
        during = _Cycle()
        assert not _frozen(during)  # the run froze nothing more
    assert gc.get_threshold() == before
    assert _frozen(kept)  # and unfroze nothing


def test_serving_starting_during_a_bulk_run_stays_frozen_after_it(serving: None) -> None:
    with relaxed_gc():
        kept = _Cycle()
        serving_gc()
    assert _frozen(kept)
