"""A large local ingest read and validated ahead in a worker process (exchange/pipe.py).

The same mixed input — the OASIS corpus, an ATT&CK slice, generated indicators, invalid
objects, broken JSON, duplicates, a version conflict, upper-case ids that are folded,
relationships, our own sightings — ingested in-process and through the worker gives the
same store rows, search index, trust tables, ledger and summary, on both backends.  The
batch size is made small so that a few hundred objects take the worker's path.
"""

from __future__ import annotations

import copy
import multiprocessing
import os
import re
import secrets
import signal
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import sqlalchemy as sa
from tests.conftest import _pg_admin_engine

from detente.errors import DetenteError
from detente.federation.exchange import local, pipe
from detente.federation.exchange.local import IngestSummary, ingest_local
from detente.node import Node
from detente.stix.bundle import DecodeFailure, Position, iter_objects
from detente.stix.validate import validate
from detente.store import Find
from detente.store.search import doc_fields
from detente.trust.claims import claim_key, extract, extract_ahead, from_ahead
from detente.trust.config import TrustConfig

DATA = Path(__file__).resolve().parents[2] / "data"
SMALL_BATCH = 40
T0 = "2024-03-01T10:00:00.000Z"
#: the worker is stopped within this many seconds in every test (no hung process)
ALARM = 60


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    def hung(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("the ingest hung")

    before = signal.signal(signal.SIGALRM, hung)
    signal.alarm(ALARM)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> list[pipe.Worker]:
    """Batches of :data:`SMALL_BATCH`; returns the workers started.  The test process
    may fork although it runs other threads (pytest-xdist's): theirs hold nothing the
    worker needs (a process serving requests never forks: test_small_inputs_...); and
    whatever the machine's load (the worker is used when a core is free)."""
    monkeypatch.setattr(local, "BATCH", SMALL_BATCH)
    def forks() -> bool:
        return "fork" in multiprocessing.get_all_start_methods()

    monkeypatch.setattr(local, "worth_forking", forks)  # worker=None
    monkeypatch.setattr(local, "can_fork", forks)  # worker=True
    started: list[pipe.Worker] = []

    class Spy(pipe.Worker):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(local, "Worker", Spy)
    return started


@pytest.fixture
def second_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """Another fresh store on the same backend as ``store_url``."""
    if store_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'second.db'}"
        return
    name = "detente_t_" + secrets.token_hex(6)
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield store_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


# -- the input ---------------------------------------------------------------------------


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n + 1, version=4)}"


def _indicator(n: int, ip: str, **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": _id("indicator", n),
            "created": T0, "modified": T0, "pattern_type": "stix", "valid_from": T0,
            "pattern": f"[ipv4-addr:value = '{ip}']", "name": f"c2 {n}",
            "description": f"command and control server number {n}", **extra}


def _file_items(path: Path) -> Iterator[tuple[str, object]]:
    for position, item in iter_objects(path):
        where = position.describe() if isinstance(position, Position) else str(position)
        yield f"{path.name} {where}", item


def mixed() -> list[tuple[str, object]]:
    items: list[tuple[str, object]] = []
    for path in sorted((DATA / "stix-real").glob("*.json")):
        items += _file_items(path)
    items += _file_items(DATA / "attack-ics-slice.json")
    made = [_indicator(i, f"198.51.100.{i % 40}", labels=["malicious-activity"],
                       confidence=70) for i in range(160)]
    upper = _indicator(900, "203.0.113.9")
    upper["id"] = upper["id"].upper().replace("INDICATOR", "indicator")
    rel = {"type": "relationship", "spec_version": "2.1", "id": _id("relationship", 901),
           "created": T0, "modified": T0, "relationship_type": "indicates",
           "source_ref": upper["id"], "target_ref": _id("malware", 902)}
    malware = {"type": "malware", "spec_version": "2.1", "id": _id("malware", 902),
               "created": T0, "modified": T0, "name": "Poison Frog", "is_family": True,
               "aliases": ["PFrog"]}
    sighting = {"type": "sighting", "spec_version": "2.1", "id": _id("sighting", 903),
                "created": T0, "modified": T0, "sighting_of_ref": made[3]["id"]}
    false_positive = {**sighting, "id": _id("sighting", 904), "labels": ["false-positive"],
                      "sighting_of_ref": made[5]["id"]}
    conflict = {**made[7], "description": "the same version, other content"}
    newer = {**made[8], "modified": "2024-03-02T10:00:00.000Z", "confidence": 90}
    for i, obj in enumerate([*made[:60], upper, rel, malware]):
        items.append((f"made {i}", obj))
    items += [("bad 1", {"type": "indicator", "id": "indicator--nope"}), ("bad 2", 42),
              ("bad 3", "text"), ("bad 4", [1, 2]), ("broken 1", DecodeFailure("not JSON", 3))]
    for i, obj in enumerate([*made[60:], sighting, conflict, newer, false_positive]):
        items.append((f"more {i}", obj))
        if i % 37 == 0:
            items.append((f"broken at {i}", DecodeFailure(f"not JSON at {i}", i)))
    items += [(f"again {i}", copy.deepcopy(obj)) for i, obj in enumerate(made[:50])]
    items.append(("", {"type": "bad"}))  # no position: reported as "?"
    return items


# -- a whole node as rows ----------------------------------------------------------------

#: FTS5's own tables (their content is search_docs', compared there, and by searching);
#: the ledger's (its entries carry the clock: compared entry by entry, see _ledger)
_SKIP = re.compile(r"search_fts_|sqlite_|ledger_(bundles|head|tiles)$")
#: columns holding times taken from the clock when written: compared by their order
_CLOCK = {"date_added", "seq", "received_at", "time", "at", "created_at", "updated_at",
          "first_seen", "last_seen", "observed_at", "since", "when", "generation",
          "outcome_at"}


def _rank(values: list[Any]) -> dict[Any, int]:
    return {v: i for i, v in enumerate(sorted({v for v in values if v is not None}))}


def snapshot(node: Node) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, the node's own identity named alike, clock values ranked
    (what differs between two nodes made and run apart, and nothing else)."""
    me = node.identity_id
    engine = node.store.engine
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name in sa.inspect(engine).get_table_names():
            if _SKIP.match(name):
                continue
            result = conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            columns = list(result.keys())
            rows = [list(r) for r in result]
            for c, column in enumerate(columns):
                if column in _CLOCK:
                    ranks = _rank([r[c] for r in rows])
                    for r in rows:
                        r[c] = None if r[c] is None else ranks[r[c]]
            kept = [tuple(_same(v, me) for v in r) for r in rows]
            out[name] = sorted((r for r in kept if "identity--us" not in r[:1]), key=repr)
    return out


def _same(value: Any, me: str) -> Any:
    """One value, the node's identity named alike (its own row, made at ``init``, is
    left out) and evidence decayed by the clock rounded (trust's reliabilities)."""
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, memoryview):
        value = bytes(value)
    if isinstance(value, bytes):
        return value.replace(me.encode(), b"identity--us")
    if isinstance(value, str):
        return value.replace(me, "identity--us")
    return value


def _ledger(node: Node) -> list[tuple[Any, ...]]:
    entries = [node.ledger.entry(i) for i in range(node.ledger.size())]
    return [(e.kind, e.partner, e.object_id, e.object_version, e.view_hash,
             _same(e.detail, node.identity_id)) for e in entries[1:]]  # [0]: the node's


def _plain(summary: IngestSummary) -> dict[str, Any]:
    out = summary.as_dict()
    del out["seconds"], out["objects_per_second"]
    return out


def _searches(node: Node) -> list[list[str]]:
    return [[h.id for h in node.store.find(Find(text=q)).hits]
            for q in ("command", "198.51.100.3", "poison", "apt1", "c2 12", "frog")]


# -- equivalence -------------------------------------------------------------------------


def test_worker_and_in_process_give_the_same_node(
        tmp_path: Path, store_url: str, second_url: str, small_batches: list[pipe.Worker]
        ) -> None:
    a = Node.init(tmp_path / "a", "us", store_url=store_url)
    b = Node.init(tmp_path / "b", "us", store_url=second_url)
    items = mixed()
    assert len(items) > 3 * SMALL_BATCH
    summaries = []
    for kw in ({}, {"accept_corrections": True}):
        progress_a: list[int] = []
        progress_b: list[int] = []
        here = ingest_local(a, iter(copy.deepcopy(items)), worker=False,
                            on_progress=progress_a.append, **kw)
        ahead = ingest_local(b, iter(copy.deepcopy(items)), on_progress=progress_b.append,
                             **kw)
        assert _plain(ahead) == _plain(here)
        assert progress_b == progress_a
        summaries.append(here)
    assert [w.exitcode for w in small_batches] == [0, 0]  # it ran, and left by itself
    assert here.duplicates and here.rejected and here.stored == 0
    first = _plain(ingest_local(a, iter(copy.deepcopy(items[:5])), worker=False))
    assert first["duplicates"] == 5  # (and the rows compare below)
    ingest_local(b, iter(copy.deepcopy(items[:5])))
    reasons = {r.reason for r in summaries[0].rejected}
    assert any("appears twice" in r or "conflict" in r for r in reasons)
    assert snapshot(b) == snapshot(a)
    assert _ledger(b) == _ledger(a)
    assert _searches(b) == _searches(a)
    assert any(_searches(a))
    a.close()
    b.close()


def test_worker_matches_in_process_with_corrections(
        tmp_path: Path, store_url: str, second_url: str, small_batches: list[pipe.Worker],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ATT&CK changed without a new version: corrections, ledger entries, re-cut views."""
    monkeypatch.setattr(local, "BATCH", 20)
    slice_items = list(_file_items(DATA / "attack-ics-slice.json"))
    assert len(slice_items) > 3 * 20
    changed: list[tuple[str, object]] = []
    for position, obj in slice_items:
        if isinstance(obj, dict) and obj.get("type") == "attack-pattern":
            obj = {**obj, "description": f"{obj.get('description', '')} (corrected)"}
        changed.append((position, obj))
    opened: list[Node] = []
    try:
        summaries = {}
        for worker, url, name in ((False, store_url, "a"), (True, second_url, "b")):
            node = Node.init(tmp_path / name, "us", store_url=url)
            opened.append(node)
            ingest_local(node, iter(copy.deepcopy(slice_items)), worker=worker)
            summaries[worker] = _plain(ingest_local(
                node, iter(copy.deepcopy(changed)), worker=worker, accept_corrections=True))
        (a, b), here, ahead = opened, summaries[False], summaries[True]
        assert ahead == here and here["corrected"] > 0
        assert len(small_batches) == 2
        assert snapshot(b) == snapshot(a)
        assert _ledger(b) == _ledger(a)
        assert any(e[0] == "correction" for e in _ledger(a))
    finally:  # closed even when an assertion fails: no connection left to the next test
        for node in opened:
            node.close()


def test_strict_is_all_or_nothing_through_the_worker(
        tmp_path: Path, store_url: str, small_batches: list[pipe.Worker]) -> None:
    node = Node.init(tmp_path / "n", "us", store_url=store_url)
    good = [(str(i), _indicator(i, f"192.0.2.{i % 200}")) for i in range(3 * SMALL_BATCH)]
    before = node.store.count()
    bad = [*good[:100], ("bad", {"type": "indicator"}), *good[100:]]
    summary = ingest_local(node, iter(bad), strict=True)
    assert summary.rolled_back and summary.stored == 0 and len(summary.rejected) == 1
    assert node.store.count() == before
    summary = ingest_local(node, iter(good), strict=True)
    assert not summary.rolled_back and summary.stored == len(good)
    assert node.store.count() == before + len(good)
    assert len(small_batches) == 2
    node.close()


def test_small_inputs_and_threaded_processes_stay_in_process(
        tmp_path: Path, small_batches: list[pipe.Worker],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "worth_forking", pipe.can_fork)  # the real checks
    monkeypatch.setattr(local, "can_fork", pipe.can_fork)
    node = Node.init(tmp_path / "n", "us")
    items = [(str(i), _indicator(i, f"192.0.2.{i}")) for i in range(2 * SMALL_BATCH)]
    assert ingest_local(node, iter(items)).stored == len(items)  # two batches: no worker
    assert small_batches == []
    more = [(str(i), _indicator(i, f"192.0.2.{i % 250}")) for i in range(100, 300)]
    release = threading.Event()
    other = threading.Thread(target=release.wait)  # as in `detente serve`
    other.start()
    try:
        assert not pipe.can_fork()
        assert ingest_local(node, iter(more)).stored == len(more)
        again = ingest_local(node, iter(more), worker=True)  # whatever the load; not this
        assert again.duplicates == len(more)
    finally:
        release.set()
        other.join()
    assert small_batches == []  # a threaded process never forks
    node.close()


# -- failures ----------------------------------------------------------------------------


def _slow(items: list[tuple[str, object]], after: int, then: Callable[[], None]
          ) -> Iterator[tuple[str, object]]:
    for n, item in enumerate(items):
        if n == after:
            then()
        yield item


def test_a_worker_killed_is_a_clear_error_and_earlier_batches_stay(
        tmp_path: Path, store_url: str, small_batches: list[pipe.Worker]) -> None:
    node = Node.init(tmp_path / "n", "us", store_url=store_url)
    before = node.store.count()
    items = [(str(i), _indicator(i, f"192.0.2.{i % 250}")) for i in range(8 * SMALL_BATCH)]

    here = os.getpid()

    def die() -> None:  # runs in the worker, after it sent some batches
        if os.getpid() != here:  # (never the test's own process)
            os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(pipe.WorkerFailed, match="died") as caught:
        ingest_local(node, _slow(items, 5 * SMALL_BATCH + 3, die))
    assert "stay" in str(caught.value)
    stored = node.store.count() - before
    assert stored % SMALL_BATCH == 0 and 2 * SMALL_BATCH <= stored <= 5 * SMALL_BATCH
    worker = small_batches[0]
    assert worker.exitcode == -signal.SIGKILL
    assert worker.pid is not None and not _alive(worker.pid)
    # what stays is whole batches, and ingesting again completes it
    again = ingest_local(node, iter(items))
    assert again.duplicates == stored and again.stored == len(items) - stored
    node.close()


def test_a_worker_failing_is_a_clear_error_and_strict_stores_nothing(
        tmp_path: Path, small_batches: list[pipe.Worker]) -> None:
    node = Node.init(tmp_path / "n", "us")
    before = node.store.count()
    items = [(str(i), _indicator(i, f"192.0.2.{i % 250}")) for i in range(6 * SMALL_BATCH)]

    def fail() -> None:
        raise OSError("the disk went away")

    with pytest.raises(pipe.WorkerFailed, match="OSError: the disk went away"):
        ingest_local(node, _slow(items, 4 * SMALL_BATCH, fail), strict=True)
    assert node.store.count() == before  # strict: nothing at all
    with pytest.raises(pipe.WorkerFailed, match="the disk went away"):
        ingest_local(node, _slow(items, 4 * SMALL_BATCH, fail))
    assert node.store.count() - before == 4 * SMALL_BATCH  # the batches before it
    node.close()


def test_ctrl_c_stops_the_worker_and_keeps_whole_batches(
        tmp_path: Path, small_batches: list[pipe.Worker]) -> None:
    node = Node.init(tmp_path / "n", "us")
    before = node.store.count()
    items = [(str(i), _indicator(i, f"192.0.2.{i % 250}")) for i in range(10 * SMALL_BATCH)]
    seen: list[int] = []

    def interrupt(n: int) -> None:  # on_progress runs in the main process
        seen.append(n)
        if n >= 3 * SMALL_BATCH:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(local, "PROGRESS_EVERY", 20)
        with pytest.raises(KeyboardInterrupt):
            ingest_local(node, iter(items), on_progress=interrupt)
    worker = small_batches[0]
    assert worker.pid is not None and not _alive(worker.pid)
    assert (node.store.count() - before) % SMALL_BATCH == 0
    node.close()


def test_ctrl_c_is_the_main_process_s_to_handle(
        tmp_path: Path, small_batches: list[pipe.Worker],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C reaches the whole process group: the worker ignores it (the main process
    stops it, above), so a SIGINT the worker alone receives changes nothing."""
    monkeypatch.setattr(local, "PROGRESS_EVERY", 20)
    node = Node.init(tmp_path / "n", "us")
    items = [(str(i), _indicator(i, f"192.0.2.{i % 250}")) for i in range(6 * SMALL_BATCH)]

    def interrupt_worker(n: int) -> None:
        if n == 3 * SMALL_BATCH and small_batches and small_batches[0].pid:
            os.kill(small_batches[0].pid, signal.SIGINT)

    summary = ingest_local(node, iter(items), on_progress=interrupt_worker)
    assert summary.stored == len(items) and small_batches[0].exitcode == 0
    node.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is not running: it was joined if it is gone from the table
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_the_wire_is_bytes_and_rebuilds_each_object(small_batches: list[pipe.Worker]
                                                    ) -> None:
    objs = [_indicator(i, f"192.0.2.{i}") for i in range(5)]
    upper = copy.deepcopy(objs[0])
    upper["id"] = upper["id"].upper().replace("INDICATOR", "indicator")
    items: list[tuple[str, object]] = [(str(i), o) for i, o in enumerate(objs)]
    items += [("upper", upper), ("bad", {"type": "x"}), ("broken", DecodeFailure("no", 1))]
    rel = {"type": "relationship", "spec_version": "2.1", "id": _id("relationship", 9),
           "created": T0, "modified": T0, "relationship_type": "indicates",
           "source_ref": objs[0]["id"], "target_ref": _id("malware", 10)}
    items.append(("rel", rel))
    config = TrustConfig()
    with pipe.Worker(iter(items), batch=3, trust=config) as worker:
        batches = list(worker)
    got = [o for b in batches for o in b.valid]
    assert got == [validate(o) for o in [*objs, upper, rel]]
    assert got[-2].id == objs[0]["id"]  # folded to lower case
    assert [o.ahead for o in got[:-1]] == [
        {"search": list(doc_fields(o.body)), "claims": extract_ahead(o.body, config)}
        for o in got[:-1]]
    assert got[-1].ahead == {"search": list(doc_fields(rel))}  # claims need the store
    found, keys = from_ahead(got[0].ahead["claims"])  # type: ignore[index]
    assert found == extract(objs[0], lambda ref: None, config)
    assert keys == {claim_key(c): c for c in found.claims} and keys
    assert [b.seen for b in batches] == [3, 6, 9]
    assert [d.message for b in batches for d in b.rejected] == [
        validate_message({"type": "x"})]
    assert [b.decode_failures for b in batches][-1] == [("broken", "no")]
    assert [b.at for b in batches] == [["0", "1", "2"], ["3", "4", "upper"], ["rel"]]


def validate_message(obj: object) -> str:
    try:
        validate(obj)
    except DetenteError as exc:
        return exc.message
    raise AssertionError("valid")
