"""The node's whole HTTP surface in one place: TAXII, ledger, deconfliction and the UI.

`detente serve`, the demo scenario and the live tests all build the app here, so what a
partner can reach is the same everywhere.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from detente.federation.exchange.keys import key_routes
from detente.federation.psi.routes import deconflict_routes
from detente.federation.taxii.server import create_app
from detente.federation.witnessing.routes import ledger_routes
from detente.node import Node
from detente.web.app import web_routes

__all__ = ["LiveServer", "build_app", "listening_socket", "serve_app", "serve_in_thread",
           "url_of"]

def _extra_routes(node: Node) -> list[BaseRoute]:
    """Every route beside TAXII: the ledger, deconfliction, key rotation, the UI at /."""
    return [*ledger_routes(node), *deconflict_routes(node), *key_routes(node),
            *web_routes(node)]


def build_app(node: Node, *, authorities: Sequence[str] = ()) -> Starlette:
    """TAXII under /taxii2/, the ledger, deconfliction and the analyst UI at /.

    ``authorities``: the host[:port] values signed requests may name (default: from the
    node's settings)."""
    return create_app(node, extra_routes=_extra_routes(node), authorities=authorities)


def listening_socket(host: str = "127.0.0.1") -> socket.socket:
    """A socket bound to an ephemeral port and listening, *before* any node needs its URL:
    clients may connect at once (the kernel queues them until uvicorn accepts)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(64)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


@dataclass
class LiveServer:
    """A uvicorn server running in a background thread on a pre-bound socket."""

    server: uvicorn.Server
    thread: threading.Thread
    sock: socket.socket

    @property
    def url(self) -> str:
        return url_of(self.sock)

    def stop(self, timeout_s: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout_s)
        self.sock.close()


def serve_app(app: ASGIApp, sock: socket.socket) -> LiveServer:
    """Serve any ASGI app on ``sock`` from a daemon thread."""
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return LiveServer(server, thread, sock)


def serve_in_thread(node: Node, sock: socket.socket) -> LiveServer:
    """Serve a node's whole HTTP surface (:func:`build_app`) on ``sock``."""
    return serve_app(build_app(node), sock)
