"""Live nodes for the sync tests: uvicorn in threads on 127.0.0.1, ephemeral ports.

Each listening socket is bound (port 0) and listening *before* its node is created, so the
node's URL is known up front and clients may connect at once (the kernel queues the
connection until uvicorn accepts it: no polling, no sleeping).
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp

from detente.federation.exchange.keys import key_routes
from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.release import release_pending
from detente.scenario.live import LiveServer, listening_socket, serve_app, url_of
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance

SERVER_JOIN_S = 10.0


Served = LiveServer


def node_app(node: Node, wrap: Callable[[ASGIApp], ASGIApp] | None = None) -> ASGIApp:
    app: ASGIApp = create_app(node, extra_routes=key_routes(node))
    return wrap(app) if wrap is not None else app


@dataclass
class Cluster:
    tmp: Path
    nodes: dict[str, Node] = field(default_factory=dict)
    socks: dict[str, socket.socket] = field(default_factory=dict)
    served: dict[str, Served] = field(default_factory=dict)

    def add(self, name: str, communities: str = "") -> Node:
        sock = listening_socket()
        node = Node.init(self.tmp / name, name, url=url_of(sock), communities=communities)
        self.nodes[name], self.socks[name] = node, sock
        return node

    def start(self, name: str, wrap: Callable[[ASGIApp], ASGIApp] | None = None) -> None:
        self.served[name] = serve_app(node_app(self.nodes[name], wrap), self.socks[name])

    def link(self, a: str, b: str, *, tier: int = 2, communities: Sequence[str] = ()) -> None:
        """``a`` knows ``b`` as a partner."""
        peer = self.nodes[b]
        self.nodes[a].partners.add(b, url=str(peer.settings["url"]),
                                   public_key=peer.public_key_b64, tier=tier,
                                   communities=frozenset(communities),
                                   identity_id=peer.identity_id)

    def release_for(self, name: str) -> None:
        """Every node that knows ``name`` releases to it what it has not yet: what each
        node's ``serve`` releaser does in the background (never a TAXII read); the tests
        call it before ``name`` pulls, so a pull never races the releaser."""
        for node in self.nodes.values():
            if node.name != name and any(p.name == name for p in node.partners.all()):
                release_pending(node.releaser, [name])

    def stop(self) -> None:
        for s in self.served.values():
            s.stop()
        for sock in self.socks.values():
            sock.close()
        for n in self.nodes.values():
            n.close()


@contextmanager
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.stop()


def indicator(node: Node, value: str, marking: str | None = "clear",
              extra_markings: Sequence[str] = (), **extra: Any) -> dict[str, Any]:
    """An indicator created by ``node`` for an IPv4 address."""
    refs = ([TLP_2_0_IDS[marking]] if marking else []) + list(extra_markings)
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created_by_ref": node.identity_id,
        "created": "2025-03-01T10:00:00.000Z", "modified": "2025-03-01T10:00:00.000Z",
        "name": f"C2 at {value}", "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '{value}']", "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00Z",
    }
    if refs:
        body["object_marking_refs"] = refs
    body.update(extra)
    return body


def put(node: Node, *objs: dict[str, Any]) -> None:
    node.store.put_many([validate(o) for o in objs], Provenance())


def keys_from(node: Node, origin: str) -> set[tuple[str, str]]:
    """(id, version) of what ``node`` stored from ``origin``."""
    from detente.store.base import Query

    return {(o.id, o.version) for o in node.store.iter_all(
        Query(versions=("all",), origins=(origin,)))}


def released_to(node: Node, partner: str) -> set[tuple[str, str]]:
    """(id, version) of every view ``node`` ever released to ``partner``."""
    from detente.release import iter_release_records

    return {(r.object_id, r.version) for r in iter_release_records(
        node.store.engine, partner=partner)}
