"""Shared builders for the federation tests: a node "us", partner nodes with their own keys,
clients of the in-process TAXII app, STIX objects with markings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx

from detente.federation.http.signatures import NodeAuth
from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.release import release_pending
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance

TAXII = "application/taxii+json;version=2.1"
ROOT = "/taxii2/api1"
HEADERS = {"Accept": TAXII}


def make_nodes(tmp_path: Path, store_url: str | None = None,
               partners: tuple[str, ...] = ("fr", "ru")) -> tuple[Node, dict[str, Node]]:
    """Node "us" (serving at http://testserver) and partner nodes it knows."""
    us = Node.init(tmp_path / "us", "us", store_url=store_url, url="http://testserver",
                   communities="coalition")
    others: dict[str, Node] = {}
    for i, name in enumerate(partners):
        other = Node.init(tmp_path / name, name, url=f"http://127.0.0.1:{9001 + i}")
        us.partners.add(name, url=other.settings["url"], public_key=other.public_key_b64,
                        communities=frozenset({"coalition"}) if i == 0 else frozenset(),
                        tier=3 if i == 0 else 1, identity_id=other.identity_id)
        others[name] = other
    return us, others


class InProcess(httpx.BaseTransport):
    """A synchronous httpx transport into the ASGI app (one event loop per request)."""

    def __init__(self, app: Any) -> None:
        self.inner = httpx.ASGITransport(app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not isinstance(request.stream, httpx.AsyncByteStream):
            request = _async_copy(request)

        async def go() -> httpx.Response:
            response = await self.inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers,
                                  content=body, request=request)

        return anyio.run(go)


def _async_copy(request: httpx.Request) -> httpx.Request:
    """The same request with its (sync, maybe unsized) body streamed asynchronously."""
    sync = request.stream
    assert isinstance(sync, httpx.SyncByteStream)

    async def chunks() -> Any:
        for chunk in sync:
            yield chunk

    return httpx.Request(request.method, request.url, headers=request.headers,
                         content=chunks())


def client_for(app: Any, auth: httpx.Auth | None = None) -> httpx.Client:
    return httpx.Client(transport=InProcess(app), base_url="http://testserver",
                        headers=HEADERS, auth=auth)


@contextmanager
def signed_client(us: Node, signer: Node, verify: bool = True) -> Iterator[httpx.Client]:
    """A TestClient that signs as ``signer`` and verifies the node's response signature."""
    partner = None
    if verify:
        from detente.partners import Partner

        partner = Partner(us.name, us.identity_id, bytes(us.verify_key), "http://testserver",
                          frozenset(), 0)
    with client_for(create_app(us), NodeAuth(signer, partner)) as client:
        yield client


@contextmanager
def basic_client(us: Node, user: str, secret: str) -> Iterator[httpx.Client]:
    with client_for(create_app(us), httpx.BasicAuth(user, secret)) as client:
        yield client


def indicator(marking: str | None = "green", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created": "2024-04-06T20:03:48.000Z", "modified": "2024-04-06T20:03:48.000Z",
        "name": "ISIS C2 server", "description": "Seen in Raqqa operations",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.3']", "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
    }
    if marking is not None:
        body["object_marking_refs"] = [TLP_2_0_IDS[marking]]
    body.update(extra)
    return body


def versioned_indicator(i: int, version: int, net: int = 0) -> dict[str, Any]:
    """Indicator ``i`` in its ``version`` (0, 1 …: a day apart), in 10.``net``.0.0/16; a
    fifth is TLP:RED (never released) — for catch-up tests over many versions."""
    tlp = "red" if i % 5 == 0 else "green"
    return {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
        "created": "2024-01-01T00:00:00.000Z",
        "modified": f"2024-01-0{version + 1}T00:00:00.000Z",
        "name": f"C2 {i} v{version}", "pattern_type": "stix",
        "pattern": f"[ipv4-addr:value = '10.{net}.{i >> 8 & 255}.{i & 255}']",
        "valid_from": "2024-01-01T00:00:00Z",
        "object_marking_refs": [TLP_2_0_IDS[tlp]],
    }


def put(node: Node, *objs: dict[str, Any], origin: str = "local",
        release: bool = True) -> None:
    """Store ``objs`` and (``release``) release them to the partners with
    :func:`detente.release.release_pending` — what ``detente serve``'s background releaser
    does within a second; a TAXII read never does it."""
    node.store.put_many([validate(o) for o in objs], Provenance(origin=origin))
    if release:
        release_pending(node.releaser)
