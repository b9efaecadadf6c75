"""Three live nodes (U.S., France, Russia) on 127.0.0.1 with different policies: each ends
up with exactly the views it may see; France cannot pass U.S. ``onward: denied`` material
to Russia; echoes are flagged and counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.federation.exchange.cluster import (
    Cluster,
    cluster,
    indicator,
    keys_from,
    put,
    released_to,
)

from detente.federation.exchange.pull import TIMINGS, sync_all, sync_partner
from detente.policy import releasability_marking
from detente.store.base import LOCAL, Query

pytestmark = pytest.mark.live


def _world(c: Cluster) -> dict[str, str]:
    us, fr, ru = c.add("us", "coalition"), c.add("fr", "coalition"), c.add("ru")
    c.link("us", "fr", tier=3, communities=["coalition"])
    c.link("us", "ru", tier=1)
    c.link("fr", "us", tier=3, communities=["coalition"])
    c.link("fr", "ru", tier=2, communities=["coalition"])
    c.link("ru", "us", tier=1)
    c.link("ru", "fr", tier=2)
    denied = releasability_marking(releasable_to=["coalition"], onward="denied")
    allowed = releasability_marking(releasable_to=["coalition"], onward="allowed")
    amber_fr = releasability_marking(releasable_to=["fr"])
    ids: dict[str, str] = {}
    objs = {
        "amber_fr": indicator(us, "198.51.100.1", "amber", [amber_fr["id"]]),
        "onward_denied": indicator(us, "198.51.100.2", "clear", [denied["id"]]),
        "onward_allowed": indicator(us, "198.51.100.3", "clear", [allowed["id"]]),
        "clear": indicator(us, "198.51.100.4", "clear"),
    }
    put(us, denied, allowed, amber_fr, *objs.values())
    # France re-issues the U.S. amber report under its own id: an echo when it comes back
    echo = indicator(fr, "198.51.100.1", "green", name="C2 seen by DGSE")
    fr_own = indicator(fr, "203.0.113.7", "clear")
    put(fr, echo, fr_own)
    ru_own = indicator(ru, "192.0.2.9", "clear")
    put(ru, ru_own)
    ids.update({k: v["id"] for k, v in objs.items()})
    ids.update(echo=echo["id"], fr_own=fr_own["id"], ru_own=ru_own["id"],
               denied_marking=denied["id"])
    for name in ("us", "fr", "ru"):
        c.start(name)
    return ids


def _ids(keys: set[tuple[str, str]]) -> set[str]:
    return {k[0] for k in keys}


def test_each_node_gets_exactly_what_it_may_see(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        ids = _world(c)
        us, fr, ru = c.nodes["us"], c.nodes["fr"], c.nodes["ru"]
        for name in ("fr", "ru", "us"):  # France first: Russia then sees what France got
            c.release_for(name)  # the partners' serve releasers, before name pulls
            summaries = sync_all(c.nodes[name])
            assert all(s.error is None for s in summaries), summaries
        # exactly the views each partner serves it: nothing more, nothing less
        for node in (us, fr, ru):
            stored = set().union(*(keys_from(node, p) for p in c.nodes if p != node.name))
            served = set().union(*(released_to(c.nodes[p], node.name)
                                   for p in c.nodes if p != node.name))
            echoes = {k for k in served if k[0] in ids.values() and node.store.get(k[0]) and
                      node.store.get(k[0]).provenance.origin == LOCAL}  # type: ignore[union-attr]
            assert stored == served - echoes, node.name
        fr_ids, ru_ids = _ids(keys_from(fr, "us")), _ids(keys_from(ru, "us") | keys_from(ru, "fr"))
        assert {ids["amber_fr"], ids["onward_denied"], ids["onward_allowed"], ids["clear"]} \
            <= fr_ids
        # France cannot pass U.S. onward-denied material to Russia; allowed material goes on
        assert ids["onward_denied"] not in ru_ids and ids["amber_fr"] not in ru_ids
        assert ids["onward_allowed"] in _ids(keys_from(ru, "fr"))
        assert ids["clear"] in ru_ids  # by whichever route came first; the other: duplicate
        assert ids["onward_denied"] not in _ids(released_to(fr, "ru"))
        decision = fr.releaser.decide(fr.store.get(ids["onward_denied"]),  # type: ignore[arg-type]
                                      fr.partners.get("ru"))
        assert not decision.allowed and any("onward" in r for r in decision.reasons)


def test_echo_is_flagged_stored_and_not_counted_as_new(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        ids = _world(c)
        us = c.nodes["us"]
        c.release_for("fr")
        assert sync_partner(c.nodes["fr"], "us").ok
        c.release_for("us")
        summary = sync_partner(us, "fr")
        assert summary.ok and summary.echoes == 1
        echo = us.store.get(ids["echo"])
        assert echo is not None and echo.provenance.origin == "fr"
        assert echo.provenance.flags["echo"] is True
        assert echo.provenance.flags["echo_of"] == ids["amber_fr"]
        own = us.store.get(ids["fr_own"])
        assert own is not None and not own.provenance.flags.get("echo")
        assert summary.new == len(keys_from(us, "fr")) - 1
        again = sync_partner(us, "fr")  # idempotent: nothing new the second time
        assert (again.new, again.echoes, again.duplicates) == (0, 0, 0) and again.ok


def test_summary_counts_and_idempotent_resync(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        _world(c)
        fr = c.nodes["fr"]
        c.release_for("fr")
        first = sync_partner(fr, "us")
        assert first.ok and first.new == len(keys_from(fr, "us")) and first.rejected == 0
        assert first.new >= 4 and first.pages >= 1
        # where the run's time went is accounted (the figures bench/sync.py reports):
        # every part present, none negative, the intake path's CPU seen for a stored page
        assert set(first.timings) == set(TIMINGS)
        assert min(first.timings.values()) >= 0 and first.timings["intake_cpu_s"] > 0
        again = sync_partner(fr, "us")
        assert again.ok and again.new == 0 and again.received == 0
        n = fr.store.count()
        assert fr.store.list(Query(versions=("all",))).objects and fr.store.count() == n
