"""Hostile requests: each gets a clear TAXII error, and nothing is stored that should not be."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.federation.fed_fixtures import (
    ROOT,
    TAXII,
    client_for,
    indicator,
    make_nodes,
    put,
    signed_client,
)

from detente.federation.http.render import ERROR_KEYS
from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.store import Query

OBJECTS = f"{ROOT}/collections/releases/objects/"
INBOX = f"{ROOT}/collections/inbox/objects/"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, dict[str, Node]]]:
    us, others = make_nodes(tmp_path)
    put(us, *[indicator("clear") for _ in range(5)])
    yield us, others
    us.close()
    for n in others.values():
        n.close()


@pytest.fixture
def fr(nodes: Any) -> Iterator[httpx.Client]:
    us, others = nodes
    with signed_client(us, others["fr"], verify=False) as client:
        yield client


def _error(r: httpx.Response, status: int, words: str = "") -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == TAXII
    body: dict[str, Any] = r.json()
    assert tuple(body) == ERROR_KEYS and body["http_status"] == str(status)
    assert words in body["description"], body["description"]
    return body


def _first_token(client: httpx.Client, **params: Any) -> str:
    token: str = client.get(OBJECTS, params={"limit": 2, **params}).json()["next"]
    return token


def _flip(token: str, at: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[at] ^= 1
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def test_bad_and_tampered_tokens_are_400(fr: httpx.Client) -> None:
    token = _first_token(fr)
    for bad in ("", "x", "!!!", "A" * 2000, _flip(token, 5), _flip(token, -1),
                token[:-2], base64.urlsafe_b64encode(b"{}" + b"\0" * 32).decode()):
        _error(fr.get(OBJECTS, params={"limit": 2, "next": bad}), 400)


def test_a_token_is_bound_to_its_query(fr: httpx.Client) -> None:
    token = _first_token(fr)
    r = fr.get(OBJECTS, params={"limit": 2, "next": token, "match[type]": "indicator"})
    _error(r, 400, "another requester or query")
    # the page size may change between pages
    assert fr.get(OBJECTS, params={"limit": 3, "next": token}).status_code == 200


def test_a_token_is_bound_to_its_requester(nodes: Any, fr: httpx.Client) -> None:
    us, others = nodes
    token = _first_token(fr)
    with signed_client(us, others["ru"]) as ru:
        _error(ru.get(OBJECTS, params={"limit": 2, "next": token}), 400, "another requester")


def test_a_token_grants_nothing_after_rights_change(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    token = _first_token(fr)
    us.partners.remove("fr")
    us.releaser.forget_partner("fr")
    r = fr.get(OBJECTS, params={"limit": 2, "next": token})
    assert r.status_code == 401


def test_media_types_406_and_415(fr: httpx.Client) -> None:
    for accept in ("text/html", "application/taxii+json;version=2.0", "application/json"):
        _error(fr.get(OBJECTS, headers={"Accept": accept}), 406, "only answers")
    assert fr.get(OBJECTS, headers={"Accept": "*/*"}).status_code == 200
    assert fr.get(OBJECTS, headers={"Accept": "application/taxii+json"}).status_code == 200
    body = orjson.dumps({"objects": [indicator()]})
    for ctype in ("application/json", "application/taxii+json",
                  "application/taxii+json;version=2.0", "text/plain"):
        r = fr.post(INBOX, content=body, headers={"Content-Type": ctype})
        _error(r, 415, "application/taxii+json;version=2.1")


def test_oversize_post_is_413_and_stores_nothing(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    before = us.store.count()
    limit = int(us.settings["max_request_bytes"])
    big = orjson.dumps({"objects": [indicator(description="x" * (limit + 10))]})
    _error(fr.post(INBOX, content=big, headers={"Content-Type": TAXII}), 413, "larger than")

    def chunks() -> Iterator[bytes]:  # no Content-Length: refused while streaming
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    _, secret = us.partners.add_client("fr-misp", "fr")
    with client_for(create_app(us), httpx.BasicAuth("fr-misp", secret)) as client:
        r = client.post(INBOX, content=chunks(), headers={"Content-Type": TAXII})
        _error(r, 413)
    assert us.store.count() == before


@pytest.mark.parametrize("body", [
    b"not json", b"[]", b'"objects"', b"{}", b'{"objects": {}}', b'{"objects": "x"}',
    b"[" * 5000 + b"]" * 5000,
])
def test_malformed_envelopes_are_400(nodes: Any, fr: httpx.Client, body: bytes) -> None:
    us, _ = nodes
    before = us.store.count()
    _error(fr.post(INBOX, content=body, headers={"Content-Type": TAXII}), 400)
    assert us.store.count() == before


def test_hostile_objects_fail_one_by_one(nodes: Any, fr: httpx.Client) -> None:
    us, _ = nodes
    ours = indicator("clear")
    put(us, ours)
    us.releaser.catch_up("fr")  # fr was released ours: refusals about it keep their reason
    objects: list[Any] = [
        None, 1, "indicator", [], {"type": "indicator"},
        indicator(pattern="[ipv4-addr:value = "),
        indicator(created_by_ref=us.identity_id),              # speaks for us
        dict(ours, modified="2030-01-01T00:00:00.000Z"),        # a new version of ours
        {"type": "x" * 300, "id": "y"},
        indicator(),                                            # the one good object
    ]
    r = fr.post(INBOX, content=orjson.dumps({"objects": objects}),
                headers={"Content-Type": TAXII})
    status = r.json()
    assert r.status_code == 202
    assert status["success_count"] == 1 and status["failure_count"] == len(objects) - 1
    assert all(f["message"] for f in status.get("failures", []))
    from_fr = us.store.list(Query(origins=("fr",), versions=("all",))).objects
    assert [o.id for o in from_fr] == [objects[-1]["id"]]
    assert us.store.get(ours["id"]).version == us.store.get(ours["id"], "first").version


def test_unknown_partner_and_unsigned_requests_are_401(nodes: Any, tmp_path: Path) -> None:
    us, _ = nodes
    with client_for(create_app(us)) as anon:
        _error(anon.get(OBJECTS), 401, "authentication required")
        _error(anon.get(OBJECTS, headers={"Authorization": "Basic !!"}), 401, "malformed")
        _error(anon.get(OBJECTS, headers={"Authorization": "Digest x"}), 401)
        _error(anon.get(OBJECTS, headers={"Signature-Input": "x", "Signature": "y"}), 401)
        r = anon.post(INBOX, content=orjson.dumps({"objects": [indicator()]}),
                      headers={"Content-Type": TAXII})
        _error(r, 401)
    assert us.store.list(Query(origins=("fr",))).objects == []


def test_partner_cannot_write_releases_or_read_inbox(fr: httpx.Client) -> None:
    body = orjson.dumps({"objects": [indicator()]})
    _error(fr.post(OBJECTS, content=body, headers={"Content-Type": TAXII}), 403)
    _error(fr.get(INBOX), 403)
    _error(fr.get(f"{ROOT}/collections/inbox/manifest/"), 403)


@pytest.mark.parametrize("params", [
    {"limit": "0"}, {"limit": "-1"}, {"limit": "ten"}, {"added_after": "yesterday"},
    {"match[version]": "2024-13-01T00:00:00Z"}, {"match[type]": "Indicator;drop"},
    {"match[id]": "not-an-id"}, {"match[spec_version]": "two"},
])
def test_bad_filters_are_400(fr: httpx.Client, params: dict[str, str]) -> None:
    _error(fr.get(OBJECTS, params=params), 400)


def test_limit_is_clamped_to_page_limit(fr: httpx.Client) -> None:
    r = fr.get(OBJECTS, params={"limit": str(10 ** 9)})
    assert r.status_code == 200 and len(r.json().get("objects", [])) == 5
