"""X-Forwarded-For is believed only from proxies the operator names (finding 8): a local
client rotating the header cannot pass for other addresses (the UI's per-address login
limit keys on the peer address). Served by real uvicorn with `serve`'s own options."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from detente.cli.serve_cmds import proxy_options
from detente.node import Node
from detente.scenario.live import LiveServer, listening_socket, url_of


async def _peer(request: Request) -> JSONResponse:
    return JSONResponse({"client": request.client.host if request.client else None})


def _serve(options: dict[str, Any]) -> LiveServer:
    sock = listening_socket()
    app = Starlette(routes=[Route("/peer", _peer)])
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False,
                            timeout_graceful_shutdown=1, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return LiveServer(server, thread, sock)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us")
    yield n
    n.close()


@pytest.mark.live
def test_forwarded_for_is_ignored_unless_a_proxy_is_named(node: Node,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    served = _serve(proxy_options(node))
    try:
        with httpx.Client(base_url=url_of(served.sock), timeout=10) as c:
            seen = {c.get("/peer", headers={"X-Forwarded-For": f"198.51.100.{i}"}
                          ).json()["client"] for i in range(5)}
        assert seen == {"127.0.0.1"}
    finally:
        served.stop()
    monkeypatch.setenv("DETENTE_TRUSTED_PROXIES", "127.0.0.1")
    proxied = Node.open(node.home)
    assert proxy_options(proxied) == {"proxy_headers": True, "forwarded_allow_ips": "127.0.0.1"}
    served = _serve(proxy_options(proxied))
    try:
        with httpx.Client(base_url=url_of(served.sock), timeout=10) as c:
            got = c.get("/peer", headers={"X-Forwarded-For": "198.51.100.7"}).json()
        assert got["client"] == "198.51.100.7"  # the named proxy is believed
    finally:
        served.stop()
        proxied.close()
