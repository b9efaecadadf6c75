"""SIGKILL the syncing process mid-run, several times, then resume: nothing lost, nothing
stored twice, one ledger receipt per stored version.

The kill is placed by the server, not by a clock: it counts the ``objects`` pages it has
finished sending and releases the test when page *k* has gone out, so the client is then
parsing, storing or committing that page, or asking for the next."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import pytest
from tests.federation.exchange.cluster import cluster, indicator, keys_from, put, released_to

from detente.federation.exchange.cursors import load_cursor
from detente.federation.exchange.pull import sync_partner
from detente.node import Node

pytestmark = pytest.mark.live

N_OBJECTS = 1000
PAGE = 50
WAIT_S = 120.0

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGI = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
                Awaitable[None]]


class PageCounter:
    """ASGI wrapper: counts finished ``objects`` responses; signals after ``kill_after``."""

    def __init__(self, app: ASGI) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.sent = 0
        self.kill_after: int | None = None
        self.reached = threading.Event()

    def arm(self, pages: int) -> None:
        with self.lock:
            self.sent, self.kill_after = 0, pages
            self.reached.clear()

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/objects/"):
            await self.app(scope, receive, send)
            return

        async def counted(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                with self.lock:
                    self.sent += 1
                    if self.kill_after is not None and self.sent >= self.kill_after:
                        self.reached.set()

        await self.app(scope, receive, counted)


def _start_sync(home: Path) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "detente.cli", "sync", "--home", str(home),
           "--partner", "us", "--page-size", str(PAGE), "--timeout", "30"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _receipts(node: Node, partner: str) -> list[tuple[str | None, str | None]]:
    return [(e.object_id, e.object_version) for _, e in node.ledger.entries()
            if e.kind == "receipt" and e.partner == partner]


def test_sigkill_mid_sync_then_resume(tmp_path: Path) -> None:
    counter: dict[str, PageCounter] = {}

    def wrap(app: Any) -> Any:
        counter["us"] = PageCounter(app)
        return counter["us"]

    with cluster(tmp_path) as c:
        us, fr = c.add("us", "coalition"), c.add("fr")
        c.link("us", "fr", communities=["coalition"])
        c.link("fr", "us")
        put(us, *(indicator(us, f"10.{i // 250}.{i % 250}.1", "green")
                  for i in range(N_OBJECTS)))
        us.releaser.catch_up("fr")
        c.start("us", wrap)
        served = released_to(us, "fr")
        assert len(served) == N_OBJECTS
        home = fr.home
        fr.close()
        for kill_after in (2, 5, 4):
            counter["us"].arm(kill_after)
            proc = _start_sync(home)
            try:
                assert counter["us"].reached.wait(WAIT_S), proc.stderr.read() if proc.stderr \
                    else ""
                proc.send_signal(signal.SIGKILL)
            finally:
                proc.wait(WAIT_S)
                for stream in (proc.stdout, proc.stderr):
                    if stream is not None:
                        stream.close()
            assert proc.returncode == -signal.SIGKILL
        fr = Node.open(home)
        partial = keys_from(fr, "us")
        assert 0 < len(partial) < N_OBJECTS  # the kills really interrupted the sync
        summary = sync_partner(fr, "us")
        assert summary.ok, summary.error
        # nothing lost
        assert keys_from(fr, "us") == served
        # nothing duplicated: one stored version and one ledger receipt per served view
        receipts = _receipts(fr, "us")
        assert len(receipts) == len(set(receipts)) == N_OBJECTS
        assert summary.new == N_OBJECTS - len(partial)
        assert summary.duplicates <= PAGE  # at most the page being committed when killed
        assert load_cursor(fr.store.engine, "us").last_error is None
        fr.close()
