"""The node's whole HTTP surface in one place: TAXII, ledger, deconfliction and the UI.

`detente serve`, the demo scenario and the live tests all build the app here, so what a
partner can reach is the same everywhere.  :class:`Upkeep` is the node's periodic work
while it serves: trust expiry and the background releaser — the latter, under ``detente
serve``, in a process of its own (:class:`ReleaserProcess`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from detente.federation.exchange.bulk import serving_gc
from detente.federation.exchange.claims import claim_routes
from detente.federation.exchange.keys import key_routes
from detente.federation.psi.coalition import coalition_routes
from detente.federation.psi.routes import deconflict_routes
from detente.federation.taxii.server import create_app
from detente.federation.witnessing.routes import ledger_routes
from detente.node import Node
from detente.release import release_pending
from detente.web.app import web_routes

__all__ = ["RELEASER_NICE", "RELEASE_SLICE_S", "SERVE_CHUNK", "SERVE_CHUNK_PG",
           "WORKER_AUTHORITIES_ENV",
           "WORKER_HOME_ENV", "ReleaserProcess", "Upkeep", "UpkeepTask", "build_app",
           "releaser_main", "worker_app"]

log = logging.getLogger("detente.upkeep")

#: longest a release turn runs before other upkeep tasks get theirs (it continues at once
#: if work is left: a turn that overran its interval is due again immediately)
RELEASE_SLICE_S = 30.0

#: the releaser process's CPU priority below the server's (``nice`` increment): release
#: work is throughput, a page is latency — on a busy machine the server runs first
RELEASER_NICE = 5

#: versions per chunk (one write transaction) of the releaser under ``serve``: on SQLite a
#: signed request's nonce waits for the chunk being committed (~50 ms for 500 versions on
#: 2 loaded cores, ~25 ms for 250, at ~12% more CPU per release)
SERVE_CHUNK = 250
#: the same on PostgreSQL, where no request waits for a chunk's commit (a nonce is a row
#: of its own; pages read a snapshot) and each chunk costs a dozen round trips: larger
SERVE_CHUNK_PG = 1000

#: what ``detente serve --workers N`` hands each uvicorn worker: the home to open and the
#: authorities signed requests may name (comma-separated)
WORKER_HOME_ENV = "DETENTE_SERVE_HOME"
WORKER_AUTHORITIES_ENV = "DETENTE_SERVE_AUTHORITIES"


def _extra_routes(node: Node) -> list[BaseRoute]:
    """Every route beside TAXII: the ledger, deconfliction, key rotation, the UI at /."""
    return [*ledger_routes(node), *deconflict_routes(node), *coalition_routes(node),
            *key_routes(node),
            *claim_routes(node), *web_routes(node)]


@dataclass(frozen=True, slots=True)
class UpkeepTask:
    """One periodic task: run every ``interval_s`` seconds (from the start of its last
    run), never if ``interval_s`` is 0."""

    name: str
    interval_s: float
    run: Callable[[], object]


@dataclass
class Upkeep:
    """The node's periodic work while it serves, on one background thread, each task on
    its own interval: trust expiry every ``trust_expire_interval_s`` (reports whose
    ``valid_until`` passed with no outcome) and the releaser every ``release_interval_s``
    (:func:`detente.release.release_pending`: every partner caught up with what was
    stored since its cursor, in chunks, at most :data:`RELEASE_SLICE_S` per turn).  A
    failing task is logged and retried at its next turn, never fatal; ``stop`` ends a
    release turn between chunks.

    ``for_node(node, release="process")`` (what ``detente serve`` runs): the releaser
    runs in a child process (:class:`ReleaserProcess`), started and stopped with the
    upkeep; the "release" task then only restarts it if it died.  ``release="off"``: no
    releaser (``serve --workers N``: the serving process runs one for all its workers,
    :meth:`releaser_only`)."""

    tasks: Sequence[UpkeepTask] = ()
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    releaser: ReleaserProcess | None = None

    @classmethod
    def for_node(cls, node: Node, *,
                 release: Literal["thread", "process", "off"] = "thread") -> Upkeep:
        upkeep = cls()
        interval = float(node.settings["release_interval_s"])

        def in_thread() -> object:
            return release_pending(node.releaser, should_stop=upkeep.stopping,
                                   budget_s=RELEASE_SLICE_S, chunk=SERVE_CHUNK)

        task = UpkeepTask("release", interval if release == "thread" else 0, in_thread)
        if release == "process" and interval > 0:
            upkeep.releaser = ReleaserProcess(node.home, interval)
            task = UpkeepTask("release", max(interval, 1.0), upkeep.releaser.ensure)
        upkeep.tasks = (
            UpkeepTask("trust expiry", float(node.settings["trust_expire_interval_s"]),
                       node.trust.expire),
            task,
        )
        return upkeep

    @classmethod
    def releaser_only(cls, node: Node) -> Upkeep:
        """The releaser process and its watch, nothing else: what the process of ``serve
        --workers N`` that starts the workers runs (one releaser for the N of them)."""
        upkeep = cls.for_node(node, release="process")
        upkeep.tasks = tuple(t for t in upkeep.tasks if t.name == "release")
        return upkeep

    def stopping(self) -> bool:
        return self._stop.is_set()

    def task(self, name: str) -> UpkeepTask:
        return next(t for t in self.tasks if t.name == name)

    @staticmethod
    def _run(task: UpkeepTask) -> None:
        try:
            task.run()
        except Exception:
            log.exception("upkeep task %s failed", task.name)

    def run_once(self) -> None:
        """Every task once, now (what one turn of each does; the tests call it)."""
        for task in self.tasks:
            self._run(task)

    def _loop(self) -> None:
        active = [t for t in self.tasks if t.interval_s > 0]
        due = {t.name: time.monotonic() + t.interval_s for t in active}
        while active:
            task = min(active, key=lambda t: due[t.name])
            if self._stop.wait(max(0.0, due[task.name] - time.monotonic())):
                return
            started = time.monotonic()
            self._run(task)
            due[task.name] = started + task.interval_s

    def start(self) -> None:
        if self.releaser is not None:
            self.releaser.ensure()
        self._thread = threading.Thread(target=self._loop, name="detente-upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.releaser is not None:
            self.releaser.stop()


class ReleaserProcess:
    """The background releaser of ``detente serve``, in a child process of its own.

    Releasing is CPU-bound Python (policy, redaction, fingerprints, hashes).  On a thread of
    the server it held the GIL against the event loop and the request threads, so a TAXII
    page waited behind release work (``bench/hub.py --quick``: p99 of a 100-object page
    during catch-up 152 ms on a quiet machine).  The child shares nothing with the server
    but the database: on SQLite the server's reads are WAL snapshots that never wait for
    its write transactions, and the OS, not the GIL, shares the CPU — with the child at
    :data:`RELEASER_NICE`, so pages come first.

    The child (:func:`releaser_main`) runs :func:`release_pending` every ``interval_s``
    and holds the read end of a pipe whose write end only the server has: when the server
    stops, or dies (even by SIGKILL: the kernel closes the pipe), the child sees end of
    file and stops between chunks.  Killing either at any moment loses nothing and
    duplicates nothing (one transaction per chunk, the cursor's compare-and-set).
    :meth:`ensure` (the upkeep's "release" task) restarts a child that died — after
    ``restart_after_s`` if it died within 10 s of its start (a crash at start-up is not
    retried every second)."""

    def __init__(self, home: Path, interval_s: float, *, restart_after_s: float = 60.0
                 ) -> None:
        self.home, self.interval_s, self.restart_after_s = home, interval_s, restart_after_s
        self._proc: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._not_before = 0.0
        self._closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure(self) -> None:
        """Start the child, or start it again if it died."""
        with self._lock:
            proc = self._proc
            if self._closed or (proc is not None and proc.poll() is None):
                return
            now = time.monotonic()
            if proc is not None:
                young = now - self._started < 10.0
                wait = self.restart_after_s if young else 0.0
                log.warning("the releaser process exited (status %s); restarting it in "
                            "%.0f s", proc.returncode, wait)
                _close_pipe(proc)
                self._proc = None
                self._not_before = now + wait
            if now < self._not_before:
                return
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from detente.assembly import releaser_main; "
                 "releaser_main()", str(self.home), str(self.interval_s)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, close_fds=True)
            self._started = now

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """Ask the child to stop (end of file on its pipe), after its chunk; kill it if
        it has not within ``timeout_s`` (safe: an unfinished chunk is rolled back).
        Returns its exit status (None: there was none)."""
        with self._lock:
            proc, self._proc, self._closed = self._proc, None, True
        if proc is None:
            return None
        _close_pipe(proc)
        try:
            return proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()


def _close_pipe(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def releaser_main() -> None:
    """The releaser process of ``detente serve`` (argv: home, interval in seconds): catch
    partners up every interval until end of file on stdin or SIGTERM."""
    home, interval = Path(sys.argv[1]), float(sys.argv[2])
    stop = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops us
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def watch_parent() -> None:
        with contextlib.suppress(OSError):
            while os.read(0, 4096):  # the raw fd: no buffer lock held at interpreter exit
                pass
        stop.set()

    threading.Thread(target=watch_parent, name="detente-parent", daemon=True).start()
    with contextlib.suppress(OSError):
        os.nice(RELEASER_NICE)
    node = Node.open(home)
    chunk = SERVE_CHUNK_PG if node.store.engine.dialect.name == "postgresql" else SERVE_CHUNK
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                release_pending(node.releaser, should_stop=stop.is_set,
                                budget_s=RELEASE_SLICE_S, chunk=chunk)
            except Exception:
                log.exception("release turn failed")
            stop.wait(max(0.0, started + interval - time.monotonic()))
    finally:
        node.close()


def build_app(node: Node, *, authorities: Sequence[str] = (),
              upkeep: bool = False, releaser: bool = True, serving: bool = False
              ) -> Starlette:
    """TAXII under /taxii2/, the ledger, deconfliction and the analyst UI at /.

    ``authorities``: the host[:port] values signed requests may name (default: from the
    node's settings).  ``upkeep``: run :class:`Upkeep` for as long as the app is served
    (``detente serve``), its releaser in a process of its own unless ``releaser`` is
    False (a uvicorn worker: the process that started it runs the releaser).
    ``serving``: the process serves this app until it exits (``detente serve`` and its
    workers): once started, with the node's services built, its start-up is frozen for
    the collector (:func:`~detente.federation.exchange.bulk.serving_gc`)."""
    app = create_app(node, extra_routes=_extra_routes(node), authorities=authorities)
    if upkeep:
        worker = Upkeep.for_node(node, release="process" if releaser else "off")

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            if serving:
                _ = node.releaser  # built now, not by the first request: then frozen
                serving_gc()
            worker.start()
            try:
                yield
            finally:
                worker.stop()

        app.router.lifespan_context = lifespan
    return app


def worker_app() -> Starlette:
    """The app of one ``detente serve --workers N`` process (a uvicorn factory): the home
    named by :data:`WORKER_HOME_ENV`, opened by this process, served with its own upkeep
    but no releaser (``serve`` runs one beside its workers: :meth:`Upkeep.releaser_only`).
    Everything the workers must agree on is in the home's PostgreSQL database — nonces,
    PSI budgets and sessions, UI sessions, login attempts, release claims — so any worker
    may answer any request."""
    from pathlib import Path

    node = Node.open(Path(os.environ[WORKER_HOME_ENV]))
    authorities = tuple(a for a in os.environ.get(WORKER_AUTHORITIES_ENV, "").split(",") if a)
    app = build_app(node, authorities=authorities, upkeep=True, releaser=False,
                    serving=True)
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(a: Starlette) -> AsyncIterator[None]:
        try:
            async with inner(a):
                yield
        finally:
            node.close()

    app.router.lifespan_context = lifespan
    return app
