"""Every TAXII 2.1 endpoint, its headers, filters and paging, on both store backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.federation.fed_fixtures import (
    ROOT,
    TAXII,
    basic_client,
    client_for,
    indicator,
    put,
    signed_client,
)

from detente.federation.http.render import ERROR_KEYS
from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.stix.timestamps import format_micros, micros_from_stix

OBJECTS = f"{ROOT}/collections/releases/objects/"


@pytest.fixture
def fr(nodes: tuple[Node, dict[str, Node]]) -> Iterator[httpx.Client]:
    us, others = nodes
    with signed_client(us, others["fr"]) as client:
        yield client


def test_discovery_names_the_configured_url_not_the_host_header(
        nodes: tuple[Node, dict[str, Node]]) -> None:
    """A client's Host header is never reflected into api_roots/default (finding 7)."""
    us, _ = nodes
    client, secret = us.partners.add_client("reader", "fr")
    with basic_client(us, client.user, secret) as c:
        d = c.get("/taxii2/", headers={"Host": "evil.example:666"})
    assert d.status_code == 200, d.text
    assert d.json()["default"] == "http://testserver/taxii2/api1/"
    assert d.json()["api_roots"] == ["http://testserver/taxii2/api1/"]
    assert "evil" not in d.text


def test_discovery_api_root_and_collections(fr: httpx.Client) -> None:
    d = fr.get("/taxii2/")
    assert d.status_code == 200 and d.headers["content-type"] == TAXII
    assert d.json()["api_roots"] == ["http://testserver/taxii2/api1/"]
    root = fr.get(f"{ROOT}/").json()
    assert root.get("versions", []) == [TAXII] and root["max_content_length"] > 0
    cols = {c["alias"]: c for c in fr.get(f"{ROOT}/collections/").json()["collections"]}
    assert cols["releases"]["can_read"] and not cols["releases"]["can_write"]
    assert cols["inbox"]["can_write"] and not cols["inbox"]["can_read"]
    one = fr.get(f"{ROOT}/collections/{cols['releases']['id']}/").json()
    assert one == cols["releases"]
    assert fr.get(f"{ROOT}/collections/nope/").status_code == 404


def test_objects_sorted_paged_with_date_headers(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    objs = [indicator() for _ in range(7)]
    put(us, *objs)
    seen: list[dict[str, Any]] = []
    firsts: list[int] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        r = fr.get(OBJECTS, params=params)
        assert r.status_code == 200
        env = r.json()
        seen += env.get("objects", [])
        firsts.append(micros_from_stix(r.headers["X-TAXII-Date-Added-First"]))
        assert r.headers["X-TAXII-Date-Added-Last"] >= r.headers["X-TAXII-Date-Added-First"]
        if not env["more"]:
            assert "next" not in env
            break
        params = {"limit": 3, "next": env["next"]}
    assert [o["id"] for o in seen] == [o["id"] for o in objs]
    assert firsts == sorted(firsts) and len(firsts) == 3


def test_match_filters_and_added_after(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    a = indicator()
    a2 = dict(a, modified="2024-05-01T00:00:00.123456789Z", name="v2")
    b = indicator()
    ident = {"type": "identity", "spec_version": "2.1", "id": "identity--" + "1" * 8 +
             "-1111-4111-8111-111111111111", "created": "2024-01-01T00:00:00Z",
             "modified": "2024-01-01T00:00:00Z", "name": "x",
             "object_marking_refs": a["object_marking_refs"]}
    put(us, a, b, ident)
    put(us, a2)

    def ids(**params: str) -> list[str]:
        r = fr.get(OBJECTS, params=params)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json().get("objects", [])]

    assert ids(**{"match[type]": "identity"}) == [ident["id"]]
    assert ids(**{"match[id]": f"{a['id']},{b['id']}"}) == [b["id"], a["id"]]
    assert len(ids(**{"match[version]": "all", "match[id]": a["id"]})) == 2
    assert len(ids(**{"match[version]": "first", "match[id]": a["id"]})) == 1
    assert ids(**{"match[version]": "2024-05-01T00:00:00.123456789Z"}) == [a["id"]]
    assert ids(**{"match[spec_version]": "2.0"}) == []
    # added_after at full STIX precision: strictly after that date_added
    r = fr.get(OBJECTS, params={"match[version]": "all"})
    first = r.headers["X-TAXII-Date-Added-First"]
    after = ids(added_after=first[:-1] + "999Z", **{"match[version]": "all"})
    assert len(after) == len(r.json().get("objects", [])) - 1


def test_object_versions_and_manifest(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    a = indicator()
    a2 = dict(a, modified="2024-05-01T00:00:00.000Z", name="v2")
    put(us, a)
    put(us, a2)
    one = fr.get(f"{OBJECTS}{a['id']}/").json().get("objects", [])
    assert [o["modified"] for o in one] == [a2["modified"]]
    versions = fr.get(f"{OBJECTS}{a['id']}/versions/")
    assert versions.json().get("versions", []) == [a["modified"], a2["modified"]]
    assert "X-TAXII-Date-Added-First" in versions.headers
    old = fr.get(f"{OBJECTS}{a['id']}/", params={"match[version]": a["modified"]}).json()
    assert old.get("objects", [])[0]["name"] == a["name"]
    manifest = fr.get(f"{ROOT}/collections/releases/manifest/",
                      params={"match[version]": "all"}).json().get("objects", [])
    assert [m["version"] for m in manifest] == [a["modified"], a2["modified"]]
    assert {m["media_type"] for m in manifest} == {"application/stix+json;version=2.1"}
    assert fr.get(f"{OBJECTS}indicator--00000000-0000-4000-8000-000000000000/"
                  ).status_code == 404


def test_unversioned_sco_uses_date_added_as_version(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    sco = {"type": "ipv4-addr", "spec_version": "2.1",
           "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd", "value": "198.51.100.3",
           "object_marking_refs": indicator()["object_marking_refs"]}
    put(us, sco)
    r = fr.get(f"{ROOT}/collections/releases/manifest/", params={"match[type]": "ipv4-addr"})
    (entry,) = r.json().get("objects", [])
    assert entry["version"] == entry["date_added"] == r.headers["X-TAXII-Date-Added-First"]


def test_a_hidden_object_is_exactly_a_missing_one(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    red = indicator("red")
    put(us, red)
    missing = "indicator--00000000-0000-4000-8000-000000000000"
    for oid in (red["id"], missing):
        r = fr.get(f"{OBJECTS}{oid}/")
        assert r.status_code == 404
        body = r.json()
        assert body["description"] == f"no object {oid} in this collection"
        assert fr.get(f"{OBJECTS}{oid}/versions/").status_code == 404
    assert fr.get(OBJECTS, params={"match[id]": red["id"]}).json().get("objects", []) == []


def test_error_shape_is_pinned(nodes: Any, fr: httpx.Client) -> None:
    r = fr.get(f"{OBJECTS}indicator--00000000-0000-4000-8000-000000000000/")
    body = r.json()
    assert tuple(body) == ERROR_KEYS
    assert body["http_status"] == "404" and body["title"] == "Not Found"
    assert r.headers["content-type"] == TAXII
    assert isinstance(body["details"], dict) and body["error_code"] == "not-found-error"
    with client_for(create_app(nodes[0])) as anon:
        for r in (anon.get("/taxii2/api1/nothing/"), anon.get("/taxii2/"),
                  anon.put("/taxii2/")):
            assert tuple(r.json()) == ERROR_KEYS and r.headers["content-type"] == TAXII
            assert r.json()["http_status"] == str(r.status_code)
            assert r.status_code in {401, 404, 405}


def test_push_status_and_operator_views(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    good, bad = indicator(), {"type": "indicator", "id": "nonsense"}
    r = fr.post(f"{ROOT}/collections/inbox/objects/", content=orjson.dumps(
        {"objects": [good, bad]}), headers={"Content-Type": TAXII})
    assert r.status_code == 202
    status = r.json()
    assert (status["status"], status["success_count"], status["failure_count"]) == (
        "complete", 1, 1)
    assert status.get("successes", [])[0] == {"id": good["id"], "version": good["modified"]}
    assert status.get("failures", [])[0]["message"]
    assert status["pending_count"] == 0 and status.get("pendings", []) == []
    again = fr.get(f"{ROOT}/status/{status['id']}/")
    assert again.json() == status
    # partners cannot read the inbox; the operator can, and may DELETE
    assert fr.get(f"{ROOT}/collections/inbox/objects/").status_code == 403
    _, secret = us.partners.add_client("admin", None)
    with basic_client(us, "admin", secret) as op:
        assert op.get(f"{ROOT}/status/{status['id']}/").status_code == 200
        inbox = op.get(f"{ROOT}/collections/inbox/objects/").json().get("objects", [])
        assert [o["id"] for o in inbox] == [good["id"]]
        assert op.get(OBJECTS).status_code == 403
        assert op.delete(f"{OBJECTS}{good['id']}/").status_code == 403
        assert op.delete(f"{ROOT}/collections/inbox/objects/{good['id']}/").status_code == 200
        assert us.store.get(good["id"]) is None
        assert op.delete(f"{ROOT}/collections/inbox/objects/{good['id']}/").status_code == 404
    assert fr.delete(f"{ROOT}/collections/inbox/objects/{good['id']}/").status_code == 403


def test_status_is_only_for_its_requester(nodes: Any, fr: httpx.Client) -> None:
    us, others = nodes
    r = fr.post(f"{ROOT}/collections/inbox/objects/", content=orjson.dumps(
        {"objects": [indicator()]}), headers={"Content-Type": TAXII})
    sid = r.json()["id"]
    with signed_client(us, others["ru"]) as ru:
        assert ru.get(f"{ROOT}/status/{sid}/").status_code == 404
    # a client acting as fr is the same requester as the fr node
    _, secret = us.partners.add_client("fr-opencti", "fr")
    with basic_client(us, "fr-opencti", secret) as client:
        assert client.get(f"{ROOT}/status/{sid}/").status_code == 200


def test_client_credentials_basic_and_bearer(nodes: Any) -> None:
    us, _ = nodes
    put(us, indicator("clear"))
    _, secret = us.partners.add_client("misp", "ru")
    with basic_client(us, "misp", secret) as client:
        assert len(client.get(OBJECTS).json().get("objects", [])) == 1
    with basic_client(us, "misp", secret + "x") as client:
        r = client.get(OBJECTS)
        assert r.status_code == 401 and "Basic" in r.headers["WWW-Authenticate"]
    app = create_app(us)
    with client_for(app) as anon:
        assert anon.get("/taxii2/").status_code == 401
        for token in (f"misp:{secret}", f"misp.{secret}"):
            r = anon.get(OBJECTS, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
        assert anon.get(OBJECTS, headers={"Authorization": "Bearer misp"}).status_code == 401


def test_date_added_is_formatted_at_microseconds(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    put(us, indicator())
    (m,) = fr.get(f"{ROOT}/collections/releases/manifest/").json().get("objects", [])
    assert m["date_added"] == format_micros(micros_from_stix(m["date_added"]))


def test_collection_ids_are_version_4_uuids_stable_across_restarts(
        nodes: tuple[Node, dict[str, Node]]) -> None:
    """TAXII 2.1 §2, §5.2.1: collection ids are RFC 4122 version-4 UUIDs (finding 12)."""
    import uuid

    us, others = nodes
    with signed_client(us, others["fr"]) as client:
        first = {c["alias"]: c["id"] for c in
                 client.get(f"{ROOT}/collections/").json()["collections"]}
    assert all(uuid.UUID(cid).version == 4 and str(uuid.UUID(cid)) == cid
               for cid in first.values())
    us.close()
    again = Node.open(us.home)
    with signed_client(again, others["fr"]) as client:
        second = {c["alias"]: c["id"] for c in
                  client.get(f"{ROOT}/collections/").json()["collections"]}
    again.close()
    assert second == first


def test_an_empty_list_is_omitted_never_empty(fr: httpx.Client) -> None:
    """TAXII 2.1 §2: a list property with no values is omitted (finding 12)."""
    page = fr.get(OBJECTS, params={"match[type]": "malware"})
    assert page.status_code == 200 and page.json() == {"more": False}
    manifest = fr.get(f"{ROOT}/collections/releases/manifest/",
                      params={"match[type]": "malware"})
    assert manifest.status_code == 200 and manifest.json() == {"more": False}
