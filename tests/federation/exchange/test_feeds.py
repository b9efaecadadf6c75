"""Feeds: any TAXII 2.1 server, pulled through the one intake path as ``feed:NAME``.

An honest feed first (provenance, receipts, cursor, resume, credentials, trust), then a
hostile one: oversized pages, endless ``more``, a repeated ``next`` token, the wrong media
type, objects claiming this node as their creator, "corrections" of our own objects, an
API root on another server.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from tests.federation.exchange.taxii_fake import (
    CID,
    DISCOVERY,
    PUBLISHER,
    TAXII,
    FakeTaxii,
    indicator,
)

from detente.errors import ConflictError, NotFoundError, ValidationError
from detente.federation.exchange.cursors import load_cursor
from detente.federation.exchange.feeds import add_feed, list_feeds, pull_feed, remove_feed
from detente.federation.exchange.local import ingest_local
from detente.federation.http.client import Limits
from detente.node import Node
from detente.stix.validate import validate
from detente.store import Query
from detente.store.base import LOCAL, Provenance
from detente.trust.schema import tiers

FAST = Limits(retries=0, backoff_s=0.0, request_timeout_s=5.0, deadline_s=60.0)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us")
    yield n
    n.close()


def pull(node: Node, fake: FakeTaxii, name: str = "osint", limits: Limits = FAST) -> Any:
    return pull_feed(node, name, limits=limits, transport=fake.transport())


def stored_from(node: Node, origin: str) -> list[Any]:
    return list(node.store.iter_all(Query(versions=("all",), origins=(origin,))))


# -- an honest feed -----------------------------------------------------------------------------
def test_a_feed_is_pulled_with_its_own_provenance_and_receipts(node: Node) -> None:
    fake = FakeTaxii([indicator(i) for i in range(5)], page=2)
    add_feed(node, "osint", DISCOVERY)
    size = node.ledger.size()
    s = pull(node, fake)
    assert (s.error, s.new, s.rejected, s.pages) == (None, 5, 0, 3)
    got = stored_from(node, "feed:osint")
    assert sorted(o.id for o in got) == sorted(o["id"] for o in fake.objects)
    assert all(o.created_by_ref == PUBLISHER for o in got)  # the creator is kept
    assert node.store.held({o["id"] for o in fake.objects}, (LOCAL,)) == set()
    entries = [node.ledger.entry(i) for i in range(size, node.ledger.size())]
    assert {(e.kind, e.partner) for e in entries} == {("receipt", "feed:osint")}
    assert len(entries) == 5
    # the feed is a source of its own in earned trust, with no tier and no releases
    assert [p.name for p in node.partners.all()] == []
    assert node.trust.summary("feed:osint").counts.assertions == 5
    assert node.trust.reliability_history("feed:osint") != []  # its own record
    with node.store.engine.connect() as conn:  # ... and no tier
        assert conn.execute(sa.select(tiers.c.partner)).scalars().all() == []


def test_the_cursor_resumes_where_the_last_pull_stopped(node: Node) -> None:
    fake = FakeTaxii([indicator(i) for i in range(4)], page=3)
    add_feed(node, "osint", DISCOVERY)
    assert pull(node, fake).new == 4
    fake.add(indicator(10), indicator(11))
    again = pull(node, fake)
    assert (again.new, again.duplicates) == (2, 0)  # only what was added since
    last = fake.requests[-1].url.params
    assert "added_after" in last
    assert load_cursor(node.store.engine, "feed:osint").last_error is None


def test_a_pull_killed_mid_way_resumes_from_its_next_token(node: Node) -> None:
    """The cursor is saved after each committed page: a run stopped by the page budget
    (as by a kill) continues from the token, and nothing is stored twice."""
    fake = FakeTaxii([indicator(i) for i in range(7)], page=2)
    add_feed(node, "osint", DISCOVERY)
    first = pull(node, fake, limits=Limits(retries=0, max_pages=2))
    assert first.new == 4 and first.error is not None and "2 pages" in first.error
    cursor = load_cursor(node.store.engine, "feed:osint")
    assert cursor.next_token == "4"
    rest = pull(node, fake)
    assert (rest.new, rest.duplicates, rest.error) == (3, 0, None)
    assert len(stored_from(node, "feed:osint")) == 7


def test_several_objects_may_share_a_date_added(node: Node) -> None:
    """Servers other than detente give a whole bulk upload one date_added: the pager
    follows ``next`` tokens, never the date, and loses nothing."""
    fake = FakeTaxii([indicator(i) for i in range(5)], page=2, same_date=True)
    add_feed(node, "osint", DISCOVERY)
    assert pull(node, fake).new == 5
    assert pull(node, fake).new == 0  # the cursor is past them all


def test_credentials_are_sent_and_kept_owner_only(node: Node) -> None:
    fake = FakeTaxii([indicator(1)])
    add_feed(node, "basic", DISCOVERY, user="analyst", password="s3cret-pw")
    add_feed(node, "bearer", DISCOVERY, token="tok-123")
    assert pull(node, fake, "basic").new == 1
    assert {r.headers["authorization"] for r in fake.requests} == {
        "Basic YW5hbHlzdDpzM2NyZXQtcHc="}
    fake.requests.clear()
    pull(node, fake, "bearer")
    assert {r.headers["authorization"] for r in fake.requests} == {"Bearer tok-123"}
    folder = node.home / "feeds"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for f in folder.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
    raw = Path(str(node.settings["store"]).removeprefix("sqlite:///")).read_bytes()
    assert b"s3cret-pw" not in raw and b"tok-123" not in raw  # never in the database
    listed = {f.name: f.to_json() for f in list_feeds(node)}
    assert "s3cret-pw" not in json.dumps(listed) and listed["basic"]["user"] == "analyst"
    remove_feed(node, "bearer")
    assert not (folder / "bearer.json").exists()
    assert [f.name for f in list_feeds(node)] == ["basic"]


def test_feed_book_refuses_bad_input(node: Node) -> None:
    with pytest.raises(ValidationError, match="feed name"):
        add_feed(node, "Bad Name", DISCOVERY)
    with pytest.raises(ValidationError, match="http"):
        add_feed(node, "x", "ftp://feed.test/")
    with pytest.raises(ValidationError, match="not both"):
        add_feed(node, "x", DISCOVERY, user="u", password="p", token="t")
    with pytest.raises(ValidationError, match="go together"):
        add_feed(node, "x", DISCOVERY, user="u")
    with pytest.raises(ValidationError, match="credentials"):
        add_feed(node, "x", "http://u:p@feed.test/taxii2/")
    add_feed(node, "x", DISCOVERY)
    with pytest.raises(ConflictError):
        add_feed(node, "x", DISCOVERY)
    with pytest.raises(NotFoundError):
        remove_feed(node, "nope")
    assert pull_feed(node, "nope").error is not None


def test_the_collection_is_chosen_by_id_alias_or_title(node: Node) -> None:
    other = {"id": "b0a8d8b4-5f39-4ac0-a1fd-6f0e8aac6b62", "title": "Other", "can_read": True}
    fake = FakeTaxii([indicator(1)], extra_collections=[other])
    add_feed(node, "ambiguous", DISCOVERY)
    s = pull(node, fake, "ambiguous")
    assert s.error is not None and "2 readable collections" in s.error and CID in s.error
    add_feed(node, "chosen", DISCOVERY, collection="indicators")
    assert pull(node, fake, "chosen").new == 1
    add_feed(node, "byid", f"{DISCOVERY.removesuffix('taxii2/')}api1/", collection=CID)
    assert pull(node, fake, "byid").duplicates == 1
    add_feed(node, "missing", DISCOVERY, collection="nope")
    assert "no readable collection 'nope'" in (pull(node, fake, "missing").error or "")


# -- a hostile feed -----------------------------------------------------------------------------
def test_an_oversized_page_is_refused_before_it_is_parsed(node: Node) -> None:
    fake = FakeTaxii([indicator(i) for i in range(3)], page=3, oversized=200_000)
    add_feed(node, "big", DISCOVERY)
    s = pull(node, fake, "big", Limits(retries=0, max_page_bytes=100_000))
    assert s.error is not None and "more than 100000 bytes" in s.error
    assert stored_from(node, "feed:big") == []
    assert load_cursor(node.store.engine, "feed:big").added_after is None


def test_endless_more_is_stopped_by_the_page_budget(node: Node) -> None:
    fake = FakeTaxii([indicator(i) for i in range(2)], page=2, endless=True)
    add_feed(node, "endless", DISCOVERY)
    s = pull(node, fake, "endless", Limits(retries=0, max_pages=5))
    assert s.error is not None and "more: true after 5 pages" in s.error
    assert (s.new, s.duplicates) == (10, 0)  # bounded: max_pages x page size
    assert len(fake.requests) == 2 + 5 + 1  # discovery, collections, 5 pages (+1 ahead)


def test_the_same_page_again_or_an_empty_page_with_more_is_refused(node: Node) -> None:
    fake = FakeTaxii([indicator(i) for i in range(6)], page=2, repeat_token=True)
    add_feed(node, "loop", DISCOVERY)
    s = pull(node, fake, "loop")
    assert s.error is not None and "the page it had just sent" in s.error
    empty = FakeTaxii([indicator(1)], empty_more=True)
    add_feed(node, "empty", DISCOVERY)
    s = pull(node, empty, "empty")
    assert s.error is not None and "empty page" in s.error


def test_the_wrong_media_type_is_refused(node: Node) -> None:
    fake = FakeTaxii([indicator(1)], media="text/html")
    add_feed(node, "html", DISCOVERY)
    s = pull(node, fake, "html")
    assert s.error is not None and "media type 'text/html'" in s.error
    assert s.error.startswith("feed html:")
    assert stored_from(node, "feed:html") == []


def test_an_api_root_on_another_server_is_refused(node: Node) -> None:
    fake = FakeTaxii([indicator(1)], root="http://elsewhere.test/api1/")
    add_feed(node, "redirect", DISCOVERY)
    s = pull(node, fake, "redirect")
    assert s.error is not None and "not on the feed's own server" in s.error
    assert all(r.url.host == "feed.test" for r in fake.requests)


def test_objects_claiming_this_node_as_creator_never_become_ours(node: Node) -> None:
    forged = indicator(1, creator=node.identity_id)
    fine = indicator(2)
    fake = FakeTaxii([forged, fine])
    add_feed(node, "forger", DISCOVERY, accept_corrections=True)
    s = pull(node, fake, "forger")
    assert (s.new, s.rejected) == (1, 1)
    assert "claims to be created by this node" in s.rejections[0]
    assert node.store.get(forged["id"]) is None
    assert node.store.held({fine["id"]}, (LOCAL,)) == set()


def test_a_feed_cannot_correct_or_version_our_own_object(node: Node) -> None:
    """Our object (no creator given: created here) comes back from a feed with other
    content at the same version, and as a newer version: refused both ways, even with
    ``accept_corrections``; the stored body is untouched."""
    ours = indicator(3, creator=None)
    ingest_local(node, [("0", ours)])
    assert node.store.held({ours["id"]}, (LOCAL,)) == {ours["id"]}
    before = node.store.get(ours["id"])
    assert before is not None
    changed = {**ours, "name": "rewritten by the feed"}
    newer = {**ours, "modified": "2026-01-01T00:00:00.000Z", "name": "newer from the feed"}
    fake = FakeTaxii([changed, newer])
    add_feed(node, "rewriter", DISCOVERY, accept_corrections=True)
    s = pull(node, fake, "rewriter")
    assert (s.rejected, s.corrected, s.new) == (2, 0, 0)
    assert all("created on this node: feeds cannot" in r for r in s.rejections)
    after = node.store.get(ours["id"])
    assert after is not None and after.raw == before.raw
    assert [o.version for o in node.store.versions(ours["id"])] == [before.version]


def test_a_feed_correction_needs_the_feed_setting(node: Node) -> None:
    obj = indicator(4)
    fixed = {**obj, "name": "corrected without a new modified"}
    add_feed(node, "strict", DISCOVERY)
    assert pull(node, FakeTaxii([obj]), "strict").new == 1
    s = pull(node, FakeTaxii([fixed]), "strict")  # a new server state, cursor reset below
    assert s.new == 0  # the cursor is past it: nothing re-read
    remove_feed(node, "strict")
    add_feed(node, "strict", DISCOVERY)
    s = pull(node, FakeTaxii([fixed]), "strict")
    assert s.rejected == 1 and "--accept-corrections" in s.rejections[0]
    stored = node.store.get(obj["id"])
    assert stored is not None and stored.body["name"] == obj["name"]
    remove_feed(node, "strict")
    add_feed(node, "strict", DISCOVERY, accept_corrections=True)
    size = node.ledger.size()
    s = pull(node, FakeTaxii([fixed]), "strict")
    assert (s.corrected, s.rejected) == (1, 0)
    stored = node.store.get(obj["id"])
    assert stored is not None and stored.body["name"] == fixed["name"]
    kinds = [node.ledger.entry(i).kind for i in range(size, node.ledger.size())]
    assert kinds == ["correction"]


def test_every_rejection_is_kept(node: Node) -> None:
    bad = [{"type": "indicator", "id": f"indicator--{i:08d}-0000-4000-8000-000000000000"}
           for i in range(45)]
    fake = FakeTaxii([*bad, indicator(1)], page=50)
    add_feed(node, "junk", DISCOVERY)
    s = pull(node, fake, "junk")
    assert (s.rejected, s.new, len(s.rejections)) == (45, 1, 45)
    assert not s.clean and s.ok


def test_a_feed_never_reaches_the_network_beyond_its_url(node: Node) -> None:
    """Every request of a pull goes to the feed's own scheme and host."""
    fake = FakeTaxii([indicator(i) for i in range(3)], page=1)
    add_feed(node, "osint", DISCOVERY)
    pull(node, fake)
    assert {(r.url.scheme, r.url.host) for r in fake.requests} == {("http", "feed.test")}
    assert all(r.headers["accept"] == TAXII for r in fake.requests)


def test_transport_failures_end_only_that_feed(node: Node) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    add_feed(node, "down", DISCOVERY)
    s = pull_feed(node, "down", limits=FAST, transport=httpx.MockTransport(refuse))
    assert s.error is not None and s.error.startswith("feed down:")
    assert load_cursor(node.store.engine, "feed:down").last_error == s.error


def test_a_feed_cannot_add_versions_to_a_partners_object(node: Node) -> None:
    """A feed is unsigned: writing a partner's identity into ``created_by_ref`` does not
    let it version that partner's objects.  The same version is a duplicate."""
    fr_identity = "identity--5c3a4b0e-1d2f-4a6b-8c9d-0e1f2a3b4c5d"
    node.partners.add("fr", url="http://127.0.0.1:9", public_key="A" * 43 + "=",
                      identity_id=fr_identity)
    theirs = indicator(5, creator=fr_identity)
    node.store.put_many([validate(theirs)], Provenance(origin="fr",
                                                       origin_identity=fr_identity))
    newer = {**theirs, "modified": "2026-01-01T00:00:00.000Z", "name": "forged update"}
    fake = FakeTaxii([dict(theirs), newer])
    add_feed(node, "relay", DISCOVERY)
    s = pull(node, fake, "relay")
    assert (s.duplicates, s.rejected) == (1, 1), s.rejections
    assert "only its own signed answers add versions of it" in s.rejections[0]
    assert [v.version for v in node.store.versions(theirs["id"])] == [
        "2025-03-01T10:00:00.000000000Z"]
