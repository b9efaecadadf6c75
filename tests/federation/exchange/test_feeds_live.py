"""Feeds against real TAXII 2.1 servers on 127.0.0.1.

* medallion 3.0.0, the OASIS reference server, in its own virtual environment (made on
  first use by ``bench/_medallion_anchor.py``, each step bounded in time; the test fails
  naming the step when it cannot be made).  medallion gives a whole collection one
  ``date_added`` and pages with ``next`` tokens: nothing may be lost.
* another detente node through a client credential (HTTP Basic and bearer): the feed
  reads what that node released to the credential's partner, unsigned.

Both through ``detente feed`` / ``detente sync`` as an operator runs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench._medallion_anchor import PASSWORD, USER, MedallionUnavailable, serve
from tests.cli.helpers import run
from tests.federation.exchange.cluster import cluster, indicator, put
from tests.federation.exchange.taxii_fake import PUBLISHER
from tests.federation.exchange.taxii_fake import indicator as feed_indicator

from detente.federation.exchange.feeds import add_feed, pull_feed
from detente.federation.http.client import Limits
from detente.node import Node
from detente.release import release_pending
from detente.store import Query
from detente.store.base import LOCAL

pytestmark = pytest.mark.live


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us")
    yield n
    n.close()


def from_origin(node: Node, origin: str) -> set[str]:
    return {o.id for o in node.store.iter_all(Query(versions=("all",), origins=(origin,)))}


def test_medallion_feed_through_the_cli(node: Node, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    objs = [feed_indicator(i) for i in range(7)]
    forged = feed_indicator(99, creator=node.identity_id)  # claims to be ours
    try:
        served = serve([*objs, forged], page_size=3)
        url = served.__enter__()
    except MedallionUnavailable as exc:
        pytest.fail(f"medallion 3.0.0 could not be set up in its own venv: {exc}")
    try:
        discovery = url.split("/api1/")[0] + "/taxii2/"
        home = str(node.home)
        added = run(capsys, "feed", "add", "reference", "--url", discovery, "--user", USER,
                    "--password", PASSWORD, "--home", home, "--json")
        assert added.code == 0, added.err
        assert json.loads(added.out)["auth"] == "basic"
        listed = run(capsys, "feed", "list", "--home", home, "--json")
        assert [f["name"] for f in json.loads(listed.out)] == ["reference"]
        pulled = run(capsys, "feed", "pull", "reference", "--page-size", "3", "--home", home,
                     "--json")
        assert pulled.code == 1, pulled.err  # the forged object is a rejection
        [summary] = json.loads(pulled.out)
        assert summary["error"] is None, summary
        assert (summary["feed"], summary["new"], summary["rejected"], summary["error"]) == (
            "reference", 7, 1, None)
        assert summary["pages"] == 3  # 8 objects, 3 a page, one date_added for all
        assert "claims to be created by this node" in summary["rejections"][0]
        assert from_origin(node, "feed:reference") == {o["id"] for o in objs}
        assert node.store.get(forged["id"]) is None
        # sync pulls feeds too; the cursor is past everything: nothing new, exit 0
        synced = run(capsys, "sync", "--home", home, "--json")
        assert synced.code == 0, synced.err
        [again] = json.loads(synced.out)
        assert (again["partner"], again["new"], again["duplicates"]) == (
            "feed:reference", 0, 0)
        listed = run(capsys, "feed", "list", "--home", home, "--json")
        [feed] = json.loads(listed.out)
        assert feed["cursor"]["added_after"].startswith("2025-01-01")  # medallion's date
        assert feed["cursor"]["last_error"] is None
    finally:
        served.__exit__(None, None, None)


def test_medallion_refuses_wrong_credentials(node: Node) -> None:
    try:
        served = serve([feed_indicator(1)], page_size=10)
        url = served.__enter__()
    except MedallionUnavailable as exc:
        pytest.fail(f"medallion 3.0.0 could not be set up in its own venv: {exc}")
    try:
        add_feed(node, "wrong", url.split("/api1/")[0] + "/taxii2/", user=USER,
                 password="not-the-password")
        s = pull_feed(node, "wrong", limits=Limits(retries=0))
        assert s.error is not None and "HTTP 401" in s.error and s.new == 0
    finally:
        served.__exit__(None, None, None)


@pytest.mark.parametrize("how", ["basic", "bearer"])
def test_a_detente_node_is_a_feed_through_a_client_credential(tmp_path: Path,
                                                              how: str) -> None:
    """``fr`` gives us a client credential bound to what it releases to ``us``; ``us``
    pulls it as a plain TAXII feed (no partner key needed): fr's objects keep fr as
    their creator, and ``us`` holds nothing "created on this node" from it."""
    with cluster(tmp_path) as c:
        fr = c.add("fr", "coalition")
        us = c.add("us", "coalition")
        fr.partners.add("us", url=str(us.settings["url"]), public_key=us.public_key_b64,
                        tier=3, communities=frozenset({"coalition"}),
                        identity_id=us.identity_id)
        c.start("fr")
        objs = [indicator(fr, f"192.0.2.{i}") for i in range(5)]
        red = indicator(fr, "192.0.2.200", marking="red")
        put(fr, *objs, red)
        release_pending(fr.releaser, ["us"])
        _, secret = fr.partners.add_client("us-feed", "us")
        client = next(cl for cl in fr.partners.clients() if cl.name == "us-feed")
        url = f"{fr.settings['url']}/taxii2/"
        if how == "basic":
            add_feed(us, "fr", url, user=client.user, password=secret,
                     collection="releases")
        else:
            add_feed(us, "fr", url, token=f"{client.user}:{secret}", collection="releases")
        s = pull_feed(us, "fr", limits=Limits(page_size=2, retries=0))
        assert s.error is None, s.error
        got = from_origin(us, "feed:fr")
        assert {o["id"] for o in objs} <= got and red["id"] not in got  # what fr released
        assert s.rejected == 0 and s.new == len(got)
        assert all(us.store.get(o["id"]).created_by_ref == fr.identity_id  # type: ignore[union-attr]
                   for o in objs)
        assert us.store.held(got, (LOCAL,)) == set()
        assert [p.name for p in us.partners.all()] == []  # a feed is not a partner
        again = pull_feed(us, "fr")
        assert (again.new, again.error) == (0, None)


def test_feed_objects_are_third_party_for_earned_trust(node: Node) -> None:
    """A feed's objects corroborate a partner's like any independent source's, but the
    feed itself never gets a tier (checked here on a live medallion)."""
    objs = [feed_indicator(i, creator=PUBLISHER) for i in range(3)]
    try:
        served = serve(objs, page_size=10)
        url = served.__enter__()
    except MedallionUnavailable as exc:
        pytest.fail(f"medallion 3.0.0 could not be set up in its own venv: {exc}")
    try:
        add_feed(node, "m", url.split("/api1/")[0] + "/taxii2/", user=USER,
                 password=PASSWORD)
        assert pull_feed(node, "m").new == 3
        assert node.trust.summary("feed:m").counts.assertions == 3
        assert node.trust.reliability_history("feed:m") != []
    finally:
        served.__exit__(None, None, None)
