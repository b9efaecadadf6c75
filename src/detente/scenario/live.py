"""Nodes served on loopback from background threads: the demo's live world (and the live
tests, which reuse it).

Each server runs uvicorn on a socket bound *before* any node needs its URL, so clients may
connect at once (the kernel queues them until uvicorn accepts).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass

import uvicorn
from starlette.types import ASGIApp

from detente.assembly import build_app
from detente.node import Node

__all__ = ["LiveServer", "listening_socket", "serve_app", "serve_in_thread", "url_of"]


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
