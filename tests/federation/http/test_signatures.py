"""RFC 9421 request signatures: each verification step refuses what it should."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa
from tests.federation.fed_fixtures import (
    ROOT,
    TAXII,
    client_for,
    indicator,
    make_nodes,
    put,
)

from detente.federation.http.errors import NonceReplayError, RequestSignatureError
from detente.federation.http.nonces import NONCE_FILE, NonceCache, seen_nonces
from detente.federation.http.signatures import (
    CLOCK_SKEW_S,
    NodeAuth,
    sign_request,
    verify_response,
)
from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.partners import Partner
from detente.store.engine import writer

OBJECTS = f"{ROOT}/collections/releases/objects/"
INBOX = f"{ROOT}/collections/inbox/objects/"


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[Node, dict[str, Node]]]:
    us, others = make_nodes(tmp_path)
    put(us, indicator())
    yield us, others
    us.close()
    for n in others.values():
        n.close()


def _send(client: httpx.Client, request: httpx.Request) -> httpx.Response:
    return client.send(request)


def _signed(client: httpx.Client, signer: Node, method: str = "GET", url: str = OBJECTS,
            body: bytes | None = None, **kw: Any) -> httpx.Request:
    headers = {"Accept": TAXII}
    if body is not None:
        headers["Content-Type"] = TAXII
    request = client.build_request(method, url, content=body, headers=headers)
    return sign_request(request, signer, **kw)


def _refused(r: httpx.Response, words: str) -> None:
    assert r.status_code == 401, r.text
    assert words in r.json()["description"], r.json()["description"]
    assert "WWW-Authenticate" in r.headers


def test_a_signed_request_is_served_once(nodes: Any) -> None:
    us, others = nodes
    with client_for(create_app(us)) as client:
        request = _signed(client, others["fr"])
        first = _send(client, request)
        assert first.status_code == 200 and len(first.json().get("objects", [])) == 1
        _refused(_send(client, request), "replayed request")


def test_a_replay_after_restart_is_still_refused(nodes: Any) -> None:
    us, others = nodes
    with client_for(create_app(us)) as client:
        request = _signed(client, others["fr"])
        assert _send(client, request).status_code == 200
    us.close()
    reopened = Node.open(us.home)
    with client_for(create_app(reopened)) as client:
        _refused(_send(client, request), "replayed request")
    reopened.close()


def test_stale_and_future_signatures_are_refused(nodes: Any) -> None:
    us, others = nodes
    window = int(us.settings["signature_window_s"])
    with client_for(create_app(us)) as client:
        old = datetime.now(UTC) - timedelta(seconds=2 * window + 5)
        _refused(_send(client, _signed(client, others["fr"], created=old)), "age")
        future = datetime.now(UTC) + timedelta(seconds=2 * window + 5)
        _refused(_send(client, _signed(client, others["fr"], created=future)), "future")


def test_the_accepted_age_is_exactly_the_window(nodes: Any) -> None:
    """Documented: at most signature_window_s old, at most CLOCK_SKEW_S ahead."""
    us, others = nodes
    window = int(us.settings["signature_window_s"])
    now = datetime.now(UTC)
    with client_for(create_app(us)) as client:
        inside = _send(client, _signed(client, others["fr"],
                                       created=now - timedelta(seconds=window - 10)))
        assert inside.status_code == 200, inside.text
        _refused(_send(client, _signed(client, others["fr"],
                                       created=now - timedelta(seconds=window + 10))), "age")
        ahead = _send(client, _signed(client, others["fr"],
                                      created=now + timedelta(seconds=CLOCK_SKEW_S - 10)))
        assert ahead.status_code == 200, ahead.text
        _refused(_send(client, _signed(client, others["fr"], created=now + timedelta(
            seconds=CLOCK_SKEW_S + 10))), "future")


def test_a_foreign_signature_label_is_refused_before_any_effect(nodes: Any) -> None:
    """A valid signature under another label used to pass, the POST was stored with its
    receipt, and only signing the response failed (500). Now: 401, nothing stored."""
    us, others = nodes
    pushed = indicator()
    size = us.ledger.size()
    with client_for(create_app(us)) as client:
        body = orjson.dumps({"objects": [pushed]})
        r = _send(client, _signed(client, others["fr"], "POST", INBOX, body, label="evil"))
        _refused(r, "label")
    assert us.store.get(pushed["id"]) is None
    assert us.ledger.size() == size


def test_unknown_partner_and_forged_key_are_refused(nodes: Any, tmp_path: Path) -> None:
    us, _ = nodes
    stranger = Node.init(tmp_path / "ir", "ir")
    with client_for(create_app(us)) as client:
        _refused(_send(client, _signed(client, stranger)), "unknown partner 'ir'")

        class Forger:  # claims to be fr, signs with its own key
            name = "fr"
            signing_key = stranger.signing_key

        _refused(_send(client, _signed(client, Forger())), "signature refused")
    stranger.close()


def test_tampering_with_any_covered_part_is_refused(nodes: Any) -> None:
    us, others = nodes
    with client_for(create_app(us)) as client:
        request = _signed(client, others["fr"], url=OBJECTS + "?limit=1")
        request.url = request.url.copy_with(query=b"limit=2")
        _refused(_send(client, request), "signature refused")
        body = orjson.dumps({"objects": [indicator()]})
        request = _signed(client, others["fr"], "POST", INBOX, body)
        evil = httpx.Request("POST", request.url, headers=request.headers,
                             content=orjson.dumps({"objects": [indicator()]}))
        _refused(_send(client, evil), "Content-Digest")
        assert us.store.count() == 2  # the identity and the one indicator


def test_a_request_signed_for_another_node_is_refused(nodes: Any) -> None:
    """fr's request to node other-node, captured and delivered to us, is not for us."""
    us, others = nodes
    with client_for(create_app(us)) as client:
        request = _signed(client, others["fr"], url="http://other-node:8000" + OBJECTS)
        request.url = request.url.copy_with(host="testserver", port=None)
        _refused(_send(client, request), "signed for 'other-node:8000'")
        request = _signed(client, others["fr"], url="http://other-node:8000" + OBJECTS)
        request.url = request.url.copy_with(host="testserver", port=None)
        request.headers["Host"] = "testserver"
        _refused(_send(client, request), "signature refused")


def test_signature_and_credentials_together_are_refused(nodes: Any) -> None:
    us, others = nodes
    with client_for(create_app(us)) as client:
        request = _signed(client, others["fr"])
        request.headers["Authorization"] = "Basic Zm9vOmJhcg=="
        _refused(_send(client, request), "not both")


def test_response_is_signed_and_bound_to_its_request(nodes: Any) -> None:
    us, others = nodes
    node_as_partner = Partner(us.name, us.identity_id, bytes(us.verify_key),
                              "http://testserver", frozenset(), 0)
    with client_for(create_app(us), NodeAuth(others["fr"], node_as_partner)) as client:
        ok = client.get(OBJECTS)
        assert ok.status_code == 200 and "signature" in ok.headers
        second = client.get(OBJECTS)
    # the first response presented as the answer to the second request does not verify
    swapped = httpx.Response(ok.status_code, headers=ok.headers, content=ok.content,
                             request=second.request)
    with pytest.raises(RequestSignatureError):
        verify_response(swapped, node_as_partner)
    # nor does a response signed by someone else
    with pytest.raises(RequestSignatureError):
        verify_response(ok, Partner("ru", None, bytes(others["ru"].verify_key), "http://x",
                                    frozenset(), 0))
    verify_response(ok, node_as_partner)


def test_nonce_cache_purges_only_expired(tmp_path: Path) -> None:
    us = Node.init(tmp_path / "us", "us")
    cache = NonceCache(us.store.engine)
    now = int(time.time())
    cache.remember("fr", "a" * 20, now - 1)
    cache.remember("fr", "b" * 20, now + 100)
    assert cache.purge(now) == 1
    cache.remember("fr", "a" * 20, now + 100)  # forgotten after expiry: its age refuses it
    us.close()


def test_a_nonce_is_written_while_the_store_is_being_written(tmp_path: Path) -> None:
    """SQLite: nonces have their own file, so a signed request does not queue behind a
    write transaction of the store (the releaser's chunk commit); replays still fail."""
    us = Node.init(tmp_path / "us", "us")
    cache = NonceCache(us.store.engine)
    assert cache.engine is not us.store.engine
    assert (us.home / NONCE_FILE).exists()
    later = int(time.time()) + 100
    with writer(us.store.engine).begin() as held:  # the store's write lock, held
        held.execute(sa.text("CREATE TABLE held_lock (x INTEGER)"))
        cache.remember("fr", "c" * 20, later)
        with pytest.raises(NonceReplayError):
            cache.remember("fr", "c" * 20, later)
    us.close()


def test_nonces_recorded_in_the_store_are_carried_over(tmp_path: Path) -> None:
    """A home that recorded nonces in its store (before nonces.db) keeps refusing them."""
    us = Node.init(tmp_path / "us", "us")
    now = int(time.time())
    with writer(us.store.engine).begin() as conn:
        conn.execute(seen_nonces.insert(), [
            {"keyid": "fr", "nonce": "d" * 20, "expires_at": now + 100},
            {"keyid": "fr", "nonce": "e" * 20, "expires_at": now - 100}])
    cache = NonceCache(us.store.engine)
    with pytest.raises(NonceReplayError):
        cache.remember("fr", "d" * 20, now + 100)
    cache.remember("fr", "e" * 20, now + 100)  # expired there: its age refuses it
    with us.store.engine.connect() as conn:  # moved, not copied
        assert conn.execute(sa.select(sa.func.count()).select_from(seen_nonces)).scalar() == 0
    us.close()


def test_postgresql_nonces_stay_in_the_shared_database(pg_url: str, tmp_path: Path) -> None:
    """Every serve worker of a PostgreSQL home shares its nonces: they are in its database."""
    us = Node.init(tmp_path / "us", "us", store_url=pg_url)
    cache = NonceCache(us.store.engine)
    assert cache.engine is us.store.engine
    assert not (us.home / NONCE_FILE).exists()
    cache.remember("fr", "f" * 20, int(time.time()) + 100)
    with pytest.raises(NonceReplayError):
        NonceCache(us.store.engine).remember("fr", "f" * 20, int(time.time()) + 100)
    us.close()
