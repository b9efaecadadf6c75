"""Trust expiry runs where the documents say: inside ``detente serve`` (the upkeep thread,
every ``trust_expire_interval_s``) and each round of ``detente sync --watch``; and a tier
change caused by expiry reaches the release path by itself.  The releaser runs on its own
interval (``release_interval_s``): under ``detente serve`` in a child process of the
server, which ends with it — even when the server is killed."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from detente.assembly import ReleaserProcess, Upkeep, UpkeepTask, build_app
from detente.federation.exchange.intake import receive
from detente.federation.exchange.pull import sync_forever
from detente.node import Node
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

DAY = 86_400_000_000


def _clear_indicator() -> dict[str, object]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "pattern_type": "stix", "pattern": "[ipv4-addr:value = '198.51.100.9']",
            "valid_from": "2024-01-01T00:00:00Z",
            "object_marking_refs": [TLP_2_0_IDS["clear"]]}


def _released_to(node: Node, partner: str) -> set[str]:
    from detente.release import read_releases

    return {v.id for v in read_releases(node.store.engine, partner, Query()).views}


def _ended(pid: int) -> bool:
    """The process is gone, or a zombie nobody reaped yet (its parent was killed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def _expiring_report(node: Node) -> str:
    """A partner's indicator whose valid_until passed a day ago, never confirmed."""
    start = now_micros() - 3 * DAY
    body = {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
            "created": format_micros(start), "modified": format_micros(start),
            "pattern_type": "stix", "pattern": "[ipv4-addr:value = '203.0.113.50']",
            "valid_from": format_micros(start), "valid_until": format_micros(start + DAY)}
    receive(node, "fr", [body], None)
    return str(body["id"])


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us")
    other = Node.init(tmp_path / "fr", "fr")
    n.partners.add("fr", url="http://127.0.0.1:9", public_key=other.public_key_b64, tier=2,
                   identity_id=other.identity_id)
    other.close()
    yield n
    n.close()


def test_upkeep_runs_its_tasks_on_schedule_and_survives_a_failing_one() -> None:
    ran = threading.Event()
    calls: list[str] = []

    def broken() -> None:
        calls.append("broken")
        raise RuntimeError("boom")

    def counted() -> None:
        calls.append("counted")
        ran.set()

    worker = Upkeep((UpkeepTask("broken", 0.01, broken), UpkeepTask("counted", 0.01, counted)))
    worker.start()
    try:
        assert ran.wait(10)
    finally:
        worker.stop()
    assert calls[:2] == ["broken", "counted"]


def test_upkeep_tasks_keep_their_own_intervals() -> None:
    """A frequent task runs many times while a rare one has not run yet; a task with
    interval 0 never runs."""
    fast, slow, never = threading.Event(), [], []
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] >= 5:
            fast.set()

    worker = Upkeep((UpkeepTask("fast", 0.01, tick),
                     UpkeepTask("slow", 3600, lambda: slow.append(1)),
                     UpkeepTask("off", 0, lambda: never.append(1))))
    worker.start()
    try:
        assert fast.wait(10)
    finally:
        worker.stop()
    assert count[0] >= 5 and slow == [] and never == []


def test_serve_upkeep_expires_reports(node: Node) -> None:
    _expiring_report(node)
    assert node.trust.summary("fr").counts.expired == 0
    worker = Upkeep.for_node(node)
    assert worker.task("trust expiry").interval_s == 3600  # the documented defaults
    assert worker.task("release").interval_s == 1
    worker.run_once()
    assert node.trust.summary("fr").counts.expired == 1


def test_serve_starts_and_stops_the_upkeep_with_the_app(node: Node,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    started = threading.Event()
    monkeypatch.setattr(Upkeep, "start", lambda self: started.set())
    monkeypatch.setattr(Upkeep, "stop", lambda self: None)
    async def serve(upkeep: bool) -> None:
        app = build_app(node, upkeep=upkeep)
        async with app.router.lifespan_context(app):
            pass

    anyio.run(serve, True)
    assert started.is_set()
    started.clear()
    anyio.run(serve, False)
    assert not started.is_set()


def test_serve_freezes_its_start_up_once_started(node: Node,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``detente serve`` (``serving=True``): when the app starts, the node's services are
    built and the process's start-up frozen for the collector; other apps leave it."""
    from detente import assembly

    calls: list[bool] = []
    monkeypatch.setattr(Upkeep, "start", lambda self: None)
    monkeypatch.setattr(Upkeep, "stop", lambda self: None)
    monkeypatch.setattr(assembly, "serving_gc",
                        lambda: calls.append("releaser" in node._services))

    async def serve(serving: bool) -> None:
        app = build_app(node, upkeep=True, serving=serving)
        async with app.router.lifespan_context(app):
            pass

    anyio.run(serve, False)
    assert calls == []
    anyio.run(serve, True)
    assert calls == [True]  # the releaser (and its fingerprinter) built before freezing


def test_sync_watch_expires_reports_each_round(node: Node) -> None:
    _expiring_report(node)
    sync_forever(node, ["nobody-to-pull"], interval_s=0, rounds=1,
                 sleep=lambda _s: None)
    assert node.trust.summary("fr").counts.expired == 1


def test_serve_upkeep_releases_new_content_in_the_background(node: Node) -> None:
    """The release task of ``serve`` catches partners up by itself: an object stored
    while the upkeep runs reaches the partner's collection without any TAXII request."""
    from detente.release import read_releases

    body = _clear_indicator()
    worker = Upkeep.for_node(node)
    release = worker.task("release")
    worker.tasks = (UpkeepTask("release", 0.01, release.run),)
    worker.start()
    try:
        node.store.put_many([validate(body)], Provenance())
        ids: set[str] = set()
        for _ in range(1000):
            ids = {v.id for v in read_releases(node.store.engine, "fr", Query()).views}
            if body["id"] in ids:
                break
            threading.Event().wait(0.01)
    finally:
        worker.stop()
    assert body["id"] in ids


def test_serve_upkeep_runs_the_releaser_in_a_process_of_its_own(node: Node) -> None:
    """What ``detente serve`` builds: the release task only watches a child process (its
    releasing holds no lock or GIL of the server's); it stops cleanly with the upkeep."""
    worker = Upkeep.for_node(node, release="process")
    assert worker.releaser is not None and not worker.releaser.running
    worker.start()
    try:
        assert worker.releaser.running
        body = _clear_indicator()
        node.store.put_many([validate(body)], Provenance())
        deadline = time.monotonic() + 120
        while body["id"] not in _released_to(node, "fr"):
            assert worker.releaser.running, "the releaser process died"
            assert time.monotonic() < deadline, "not released within 120 s"
            time.sleep(0.02)
    finally:
        child = worker.releaser
        worker.stop()
    assert not child.running
    child.ensure()  # stopped for good: the upkeep's last turn cannot start it again
    assert not child.running


def test_a_releaser_process_that_dies_young_is_not_restarted_at_once(tmp_path: Path) -> None:
    releaser = ReleaserProcess(tmp_path / "no-such-home", 1.0, restart_after_s=3600)
    try:
        releaser.ensure()
        first = releaser.pid
        deadline = time.monotonic() + 60
        while releaser.running:  # no home: it exits at start-up
            assert time.monotonic() < deadline
            time.sleep(0.02)
        releaser.ensure()
        assert not releaser.running and releaser.pid is None and first is not None
    finally:
        releaser.stop()


@pytest.mark.slow
def test_the_releaser_process_ends_when_serve_is_killed(node: Node) -> None:
    """SIGKILL of ``detente serve``: its releaser sees the end of its pipe and exits (no
    orphan keeps writing to the store)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    serve = subprocess.Popen([sys.executable, "-c", "from detente.cli import main; main()",
                              "serve", "--home", str(node.home), "--host", "127.0.0.1",
                              "--port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        body = _clear_indicator()
        node.store.put_many([validate(body)], Provenance())
        deadline = time.monotonic() + 120
        while body["id"] not in _released_to(node, "fr"):
            assert serve.poll() is None, "detente serve exited"
            assert time.monotonic() < deadline, "not released within 120 s"
            time.sleep(0.05)
        children = Path(f"/proc/{serve.pid}/task/{serve.pid}/children").read_text().split()
        assert len(children) == 1, children
        child = int(children[0])
        assert b"releaser_main" in Path(f"/proc/{child}/cmdline").read_bytes()
        serve.send_signal(signal.SIGKILL)
        serve.wait(30)
        deadline = time.monotonic() + 60
        while not _ended(child):
            assert time.monotonic() < deadline, "the releaser outlived its server by 60 s"
            time.sleep(0.05)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(30)


def test_release_pending_commits_in_chunks_of_the_size_asked(node: Node) -> None:
    """``serve``'s releaser takes smaller chunks (one write transaction each) than
    ``detente release``: every version is released once whatever the chunk."""
    from detente.assembly import SERVE_CHUNK
    from detente.release import release_pending

    bodies = [_clear_indicator() for _ in range(60)]
    node.store.put_many([validate(b) for b in bodies], Provenance())
    chunks: list[int] = []
    done = release_pending(node.releaser, on_chunk=lambda _p, run: chunks.append(
        run.evaluated), chunk=25)
    assert len(chunks) >= 3 and max(chunks) == 25 and sum(chunks) == done.evaluated >= 60
    assert {str(b["id"]) for b in bodies} <= _released_to(node, "fr")
    assert len(_released_to(node, "fr")) == done.released
    assert 0 < SERVE_CHUNK < 500
