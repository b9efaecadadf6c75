"""The node's whole HTTP surface in one place: TAXII, ledger, deconfliction and the UI.

`detente serve`, the demo scenario and the live tests all build the app here, so what a
partner can reach is the same everywhere.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from detente.errors import DetenteError
from detente.federation.server import create_app
from detente.node import Node

__all__ = ["LiveServer", "build_app", "free_port", "serve_in_thread"]

#: (module, function) of every route provider mounted beside TAXII
_PROVIDERS = (
    ("detente.federation.ledger_http", "ledger_routes"),
    ("detente.federation.deconflict_http", "deconflict_routes"),
    ("detente.federation.keys", "key_routes"),
    ("detente.web.app", "web_routes"),
)


def _extra_routes(node: Node) -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for module_name, attr in _PROVIDERS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        provider: Callable[[Node], list[BaseRoute]] | None = getattr(module, attr, None)
        if provider is not None:
            routes.extend(provider(node))
    return routes


def build_app(node: Node, *, authorities: Sequence[str] = ()) -> Starlette:
    """TAXII under /taxii2/, the ledger, deconfliction and the analyst UI at /.

    ``authorities``: the host[:port] values signed requests may name (default: from the
    node's settings)."""
    return create_app(node, extra_routes=_extra_routes(node), authorities=authorities)


def free_port(host: str = "127.0.0.1") -> int:
    """An ephemeral port that was free a moment ago (loopback only)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    node: Node
    host: str
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve_in_thread(node: Node, port: int, host: str = "127.0.0.1",
                    app: Starlette | None = None) -> LiveServer:
    """Serve a node on loopback from a background thread; returns once it accepts."""
    config = uvicorn.Config(app or build_app(node), host=host, port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"detente-{node.name}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise DetenteError(f"the server for node {node.name} did not start on {host}:{port}")
        time.sleep(0.02)
    return LiveServer(node, host, port, server, thread)
