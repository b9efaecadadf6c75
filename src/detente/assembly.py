"""The node's whole HTTP surface in one place: TAXII, ledger, deconfliction and the UI.

`detente serve`, the demo scenario and the live tests all build the app here, so what a
partner can reach is the same everywhere.  :class:`Upkeep` is the node's periodic work
while it serves: trust expiry and the background releaser.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from detente.federation.exchange.claims import claim_routes
from detente.federation.exchange.keys import key_routes
from detente.federation.psi.coalition import coalition_routes
from detente.federation.psi.routes import deconflict_routes
from detente.federation.taxii.server import create_app
from detente.federation.witnessing.routes import ledger_routes
from detente.node import Node
from detente.release import release_pending
from detente.web.app import web_routes

__all__ = ["RELEASE_SLICE_S", "WORKER_AUTHORITIES_ENV", "WORKER_HOME_ENV", "Upkeep",
           "UpkeepTask", "build_app", "worker_app"]

log = logging.getLogger("detente.upkeep")

#: longest a release turn runs before other upkeep tasks get theirs (it continues at once
#: if work is left: a turn that overran its interval is due again immediately)
RELEASE_SLICE_S = 30.0

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
    release turn between chunks."""

    tasks: Sequence[UpkeepTask] = ()
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def for_node(cls, node: Node) -> Upkeep:
        upkeep = cls()

        def release() -> object:
            return release_pending(node.releaser, should_stop=upkeep.stopping,
                                   budget_s=RELEASE_SLICE_S)

        upkeep.tasks = (
            UpkeepTask("trust expiry", float(node.settings["trust_expire_interval_s"]),
                       node.trust.expire),
            UpkeepTask("release", float(node.settings["release_interval_s"]), release),
        )
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
        self._thread = threading.Thread(target=self._loop, name="detente-upkeep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)


def build_app(node: Node, *, authorities: Sequence[str] = (),
              upkeep: bool = False) -> Starlette:
    """TAXII under /taxii2/, the ledger, deconfliction and the analyst UI at /.

    ``authorities``: the host[:port] values signed requests may name (default: from the
    node's settings).  ``upkeep``: run :class:`Upkeep` for as long as the app is served
    (``detente serve``)."""
    app = create_app(node, extra_routes=_extra_routes(node), authorities=authorities)
    if upkeep:
        worker = Upkeep.for_node(node)

        @contextlib.asynccontextmanager
        async def lifespan(_app: Starlette) -> AsyncIterator[None]:
            worker.start()
            try:
                yield
            finally:
                worker.stop()

        app.router.lifespan_context = lifespan
    return app


def worker_app() -> Starlette:
    """The app of one ``detente serve --workers N`` process (a uvicorn factory): the home
    named by :data:`WORKER_HOME_ENV`, opened by this process, served with its own upkeep.
    Everything the workers must agree on is in the home's PostgreSQL database — nonces,
    PSI budgets and sessions, UI sessions, login attempts, release claims — so any worker
    may answer any request."""
    from pathlib import Path

    node = Node.open(Path(os.environ[WORKER_HOME_ENV]))
    authorities = tuple(a for a in os.environ.get(WORKER_AUTHORITIES_ENV, "").split(",") if a)
    app = build_app(node, authorities=authorities, upkeep=True)
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
