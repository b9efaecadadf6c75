"""The node's whole HTTP surface in one place: TAXII, ledger, deconfliction and the UI.

`detente serve`, the demo scenario and the live tests all build the app here, so what a
partner can reach is the same everywhere.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from detente.federation.exchange.keys import key_routes
from detente.federation.psi.routes import deconflict_routes
from detente.federation.taxii.server import create_app
from detente.federation.witnessing.routes import ledger_routes
from detente.node import Node
from detente.web.app import web_routes

__all__ = ["Upkeep", "build_app"]

log = logging.getLogger("detente.upkeep")

def _extra_routes(node: Node) -> list[BaseRoute]:
    """Every route beside TAXII: the ledger, deconfliction, key rotation, the UI at /."""
    return [*ledger_routes(node), *deconflict_routes(node), *key_routes(node),
            *web_routes(node)]


@dataclass
class Upkeep:
    """The node's periodic work while it serves, on one background thread: trust expiry
    every ``trust_expire_interval_s`` (reports whose ``valid_until`` passed with no
    outcome).  A failing task is logged and retried at its next turn, never fatal."""

    node: Node
    interval_s: float
    tasks: Sequence[Callable[[], object]] = ()
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def for_node(cls, node: Node) -> Upkeep:
        return cls(node, float(node.settings["trust_expire_interval_s"]),
                   (node.trust.expire,))

    def run_once(self) -> None:
        for task in self.tasks:
            try:
                task()
            except Exception:
                log.exception("upkeep task %s failed", getattr(task, "__name__", task))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.run_once()

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
