"""Real uvicorn servers on 127.0.0.1: taxii2-client 2.3.0, stix2's TAXIICollectionSource,
and a partner node's signed requests over the network."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from tests.federation.fed_fixtures import HEADERS, TAXII, indicator, make_nodes, put

from detente.federation.http.signatures import NodeAuth
from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.partners import Partner
from detente.settings import Settings
from detente.store import Query

pytestmark = pytest.mark.live


@contextmanager
def live_server(node: Node) -> Iterator[str]:
    """Serve ``node`` on an ephemeral 127.0.0.1 port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # discovery names the node's configured URL: the one it is served at here
    node.settings = Settings({**node.settings, "url": f"http://127.0.0.1:{port}"})
    app = create_app(node, authorities=[f"127.0.0.1:{port}"])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, dict[str, Node]]]:
    us, others = make_nodes(tmp_path)
    yield us, others
    us.close()
    for n in others.values():
        n.close()


def test_taxii2_client_reads_pages_and_pushes(nodes: Any) -> None:
    from taxii2client.v21 import Server, as_pages

    us, _ = nodes
    objs = [indicator() for _ in range(12)]
    put(us, *objs, indicator("red"))
    _, secret = us.partners.add_client("opencti", "fr")
    with live_server(us) as url:
        server = Server(f"{url}/taxii2/", user="opencti", password=secret)
        assert server.title == "detente node us"
        (root,) = server.api_roots
        releases = next(c for c in root.collections if c.title.startswith("Releases"))
        inbox = next(c for c in root.collections if c.title.startswith("Inbox"))
        assert releases.can_read and not releases.can_write and inbox.can_write
        whole = releases.get_objects()
        assert [o["id"] for o in whole["objects"]] == [o["id"] for o in objs]
        paged = [o["id"] for env in as_pages(releases.get_objects, per_request=5)
                 for o in env.get("objects", [])]
        assert paged == [o["id"] for o in objs]
        one = releases.get_object(objs[3]["id"])
        assert one["objects"][0]["id"] == objs[3]["id"]
        assert releases.object_versions(objs[3]["id"])["versions"] == [objs[3]["modified"]]
        assert len(releases.get_manifest()["objects"]) == 12
        pushed = [indicator(), indicator()]
        status = inbox.add_objects({"objects": pushed}, wait_for_completion=True)
        assert status.status == "complete" and status.success_count == 2
        assert status.failure_count == 0
    stored = us.store.list(Query(origins=("fr",))).objects
    assert {o.id for o in stored} == {o["id"] for o in pushed}


def test_stix2_taxii_collection_source(nodes: Any) -> None:
    from stix2 import Filter, TAXIICollectionSource
    from taxii2client.v21 import ApiRoot

    us, _ = nodes
    objs = [indicator() for _ in range(3)]
    put(us, *objs)
    _, secret = us.partners.add_client("misp", "fr")
    with live_server(us) as url:
        root = ApiRoot(f"{url}/taxii2/api1/", user="misp", password=secret)
        collection = next(c for c in root.collections if c.can_read)
        source = TAXIICollectionSource(collection)
        got = source.get(objs[1]["id"])
        assert got is not None and got["id"] == objs[1]["id"]
        found = source.query([Filter("type", "=", "indicator")])
        assert {o["id"] for o in found} == {o["id"] for o in objs}
        assert source.all_versions(objs[0]["id"])[0]["id"] == objs[0]["id"]


def test_signed_node_requests_over_the_network(nodes: Any) -> None:
    us, others = nodes
    put(us, indicator())
    with live_server(us) as url:
        us_partner = Partner("us", us.identity_id, bytes(us.verify_key), url, frozenset(), 0)
        auth = NodeAuth(others["fr"], us_partner)
        with httpx.Client(base_url=url, headers=HEADERS, auth=auth) as fr:
            r = fr.get("/taxii2/api1/collections/releases/objects/")
            assert r.status_code == 200 and len(r.json()["objects"]) == 1
            pushed = indicator()
            r = fr.post("/taxii2/api1/collections/inbox/objects/",
                        content=orjson.dumps({"objects": [pushed]}),
                        headers={"Content-Type": TAXII})
            assert r.status_code == 202 and r.json()["success_count"] == 1
            replay = httpx.Request("POST", r.request.url, headers=r.request.headers,
                                   content=r.request.content)
        with httpx.Client() as raw:
            again = raw.send(replay)
        assert again.status_code == 401 and "replayed" in again.json()["description"]
    assert [o.id for o in us.store.list(Query(origins=("fr",))).objects] == [pushed["id"]]
