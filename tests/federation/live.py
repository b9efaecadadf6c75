"""Real nodes on 127.0.0.1: uvicorn in threads, each on an ephemeral port.

The listening socket is bound (port 0) and put in listen mode *before* the node is created,
so the node's URL is known up front and a client may connect at once: the kernel queues
the connection until uvicorn accepts it (no polling, no sleeping).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from starlette.routing import BaseRoute

from detente.federation.exchange.claims import claim_routes
from detente.federation.exchange.intake import receive
from detente.federation.http.client import PartnerClient, open_partner_client
from detente.federation.http.render import TAXII_MEDIA
from detente.federation.http.signatures import NodeAuth
from detente.federation.psi.coalition import coalition_routes
from detente.federation.psi.routes import deconflict_routes
from detente.federation.taxii.server import create_app
from detente.federation.witnessing.routes import ledger_routes
from detente.node import Node
from detente.scenario.live import LiveServer, listening_socket, serve_app, url_of

Served = LiveServer


def serve(node: Node, sock: socket.socket, routes: Sequence[BaseRoute] | None = None) -> Served:
    """Serve ``node`` (TAXII + ledger + deconfliction routes) on ``sock`` in a thread."""
    if routes is None:
        routes = [*ledger_routes(node), *deconflict_routes(node), *coalition_routes(node),
                  *claim_routes(node)]
    return serve_app(create_app(node, extra_routes=routes), sock)


@dataclass
class Federation:
    nodes: dict[str, Node]
    served: dict[str, Served] = field(default_factory=dict)

    def client(self, node: str, partner: str) -> PartnerClient:
        return open_partner_client(self.nodes[node], partner)

    def raw(self, node: str, partner: str) -> httpx.Client:
        """A plain httpx client that signs as ``node`` and verifies ``partner``'s signed
        answers, but hands back every response as it came (a partner probing us)."""
        known = self.nodes[node].partners.get(partner)
        return httpx.Client(base_url=known.url, auth=NodeAuth(self.nodes[node], known),
                            headers={"Accept": TAXII_MEDIA})

    def stop(self) -> None:
        for s in self.served.values():
            s.stop()
        for n in self.nodes.values():
            n.close()


@contextmanager
def federation(tmp_path: Path, names: Sequence[str] = ("us", "fr", "ru")) -> Iterator[Federation]:
    """Nodes that all know each other (tier 3, community ``coalition``), each served."""
    socks = {name: listening_socket() for name in names}
    nodes = {name: Node.init(tmp_path / name, name, url=url_of(socks[name]),
                             communities="coalition") for name in names}
    for name, node in nodes.items():
        for other in names:
            if other != name:
                peer = nodes[other]
                node.partners.add(other, url=str(peer.settings["url"]),
                                  public_key=peer.public_key_b64, tier=3,
                                  communities=frozenset({"coalition"}),
                                  identity_id=peer.identity_id)
    fed = Federation(nodes)
    try:
        for name, node in nodes.items():
            fed.served[name] = serve(node, socks[name])
        yield fed
    finally:
        fed.stop()


def pull(node: Node, partner: str, client: PartnerClient | None = None) -> int:
    """What the sync engine does, minimally: read our releases from ``partner`` over
    signed TAXII and feed them to the one intake path. Returns versions stored."""
    own = client is None
    client = client or open_partner_client(node, partner)
    stored, params = 0, {"match[version]": "all"}
    try:
        while True:
            doc = client.get_json("/taxii2/api1/collections/releases/objects/",
                           params)
            result = receive(node, partner, doc.get("objects", []), None)
            stored += len(result.stored)
            if not doc.get("more"):
                return stored
            params = {"match[version]": "all", "next": doc["next"]}
    finally:
        if own:
            client.close()
