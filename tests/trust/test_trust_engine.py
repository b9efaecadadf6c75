"""The trust engine on both backends: echoes, independence, outcomes, reviews, tiers,
credit and the ledger."""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
import sqlalchemy as sa
from tests.trust.trust_helpers import (
    World,
    actor,
    indicator,
    make_world,
    relationship,
    sighting,
)

from detente.partners import Partner
from detente.trust import TrustError, UnknownObjectError


@pytest.fixture
def world(store_url: str) -> Iterator[World]:
    w = make_world(store_url, ledger=True)
    yield w
    w.store.close()


def _partner(name: str, base: int = 1) -> Partner:
    return Partner(name, None, b"\0" * 32, "http://x", frozenset(), base)


def test_independent_corroboration_is_linked_and_graded(world: World) -> None:
    a = indicator("198.51.100.1")
    [oa] = world.send("fr", a)
    assert oa.effect == "assertion" and oa.claims == ("obs|ipv4-addr|value|198.51.100.1",)
    world.clock.advance(1)
    [ob] = world.send("de", indicator("198.51.100.1/32"))
    assert ob.corroborates == (a["id"],) and not ob.echo
    g = world.trust.grade(a["id"])
    assert g.credibility == 3 and "independently corroborated by de" in " ".join(g.reasons)
    assert world.trust.credit("fr").corroborated == 1
    assert world.trust.credit("fr").median_lead_s == pytest.approx(86_400)
    assert world.trust.credit("de").first_reports == 0


def test_echo_flag_and_derived_from_and_shared_reference_do_not_count(world: World) -> None:
    a = indicator("198.51.100.2", external_references=[
        {"source_name": "blog", "url": "https://example.org/report"}])
    world.send("fr", a)
    [echo] = world.send("ru", indicator("198.51.100.2"), flags={"echo": True})
    assert echo.echo and echo.corroborates == ()
    assert "echo" in echo.not_independent[0][1]
    cited = indicator("198.51.100.2", external_references=[
        {"source_name": "blog", "url": "https://EXAMPLE.org/report"}])
    [o] = world.send("de", cited)
    assert (a["id"], "cites the same external report") in o.not_independent
    assert (echo.object_id, "echo: ru had received it from us") in o.not_independent
    copy = indicator("198.51.100.2")
    [o] = world.send("it", copy)
    assert a["id"] in o.corroborates
    world.send("it", relationship(copy["id"], "derived-from", a["id"]))
    g = world.trust.grade(a["id"])
    assert "independently corroborated" not in " ".join(g.reasons)
    reasons = " ".join(g.reasons)
    assert "ru also reports it but does not count" in reasons
    assert "declared derived-from" in reasons
    # and a mark of the echo is on the echo's own grade
    assert world.trust.grade(echo.object_id).credibility == 6


def test_our_sightings_confirm_and_refute_and_are_in_the_ledger(world: World) -> None:
    good, bad = indicator("198.51.100.3"), indicator("198.51.100.4")
    world.send("fr", good, bad)
    world.send("local", sighting(good["id"]), sighting(bad["id"], false_positive=True))
    assert world.trust.grade(good["id"]).credibility == 1
    assert world.trust.grade(good["id"]).confidence == 90
    assert world.trust.grade(bad["id"]).credibility == 5
    assert world.trust.summary("fr").counts.confirmed == 1
    assert world.trust.summary("fr").counts.refuted == 1
    assert world.ledger is not None
    kinds = [e.kind for _, e in world.ledger.entries()]
    assert kinds.count("evidence") == 2


def test_analyst_verdicts_need_a_reason_and_a_known_object(world: World) -> None:
    a = indicator("198.51.100.5")
    world.send("fr", a)
    with pytest.raises(TrustError):
        world.trust.confirm(a["id"], "  ")
    with pytest.raises(UnknownObjectError):
        world.trust.refute("indicator--00000000-0000-4000-8000-000000000000", "no")
    assert world.trust.confirm(a["id"], "seen on our sensors") == ["fr"]
    assert world.trust.grade(a["id"]).credibility == 1


def test_refuted_important_report_drops_tier_at_once_and_opens_review(world: World) -> None:
    # fr earns tier 2 over time with confirmed reports
    for n in range(12):
        ind = indicator(f"198.51.101.{n}")
        world.send("fr", ind)
        world.trust.confirm(ind["id"], "checked")
        world.clock.advance(1)
    world.trust.refresh()
    fr = _partner("fr")
    assert world.trust.tier(fr) == 2
    world.trust.tier_changes()
    lie = indicator("198.51.102.1", labels=["attribution"], confidence=90)
    world.send("fr", lie)
    assert world.trust.grade(lie["id"]).credibility == 3  # below tier 3: not acted on
    world.trust.refute(lie["id"], "the attribution is false")
    assert world.trust.tier(fr) == 1
    [review] = world.trust.reviews()
    assert review.partner == "fr" and review.tier_before == 2 and review.tier_cap == 1
    [change] = world.trust.tier_changes()
    assert (change.partner, change.old, change.new) == ("fr", 2, 1)
    assert world.trust.tier_changes() == []  # drained
    assert world.ledger is not None
    assert any(e.kind == "tier-change" and e.partner == "fr" for _, e in world.ledger.entries())
    world.trust.close_review(review.id, "checked with fr: a honest mistake")
    assert world.trust.reviews() == []
    history = world.trust.history("fr")
    assert {"review", "tier-change", "refuted", "confirmed", "report"} <= {h.kind for h in history}


def test_expiry_marks_reports_we_never_verified(world: World) -> None:
    lonely = indicator("198.51.100.6", valid_days=10)
    backed = indicator("198.51.100.7", valid_days=10)
    world.send("fr", lonely, backed)
    world.send("de", indicator("198.51.100.7"))
    world.clock.advance(11)
    assert world.trust.expire() == 2
    g = world.trust.grade(lonely["id"])
    assert "valid_until passed with no outcome" in g.reasons
    counts = world.trust.summary("fr").counts
    assert counts.expired == 2 and counts.corroborated == 1
    # expiry is weak negative evidence, corroboration still counts: below the prior,
    # but above what two lonely expiries give
    assert 0.4 < world.trust.reliability("fr").mean < 0.5
    world.trust.confirm(backed["id"], "seen since")
    assert world.trust.expire() == 0


def test_entities_and_relationship_claims_corroborate(world: World) -> None:
    a1, loc1 = actor("APT 28"), {"type": "location", "spec_version": "2.1",
                                  "id": "location--11111111-1111-4111-8111-111111111111",
                                  "created": "2024-01-01T00:00:00Z",
                                  "modified": "2024-01-01T00:00:00Z", "country": "SY"}
    r1 = relationship(a1["id"], "targets", loc1["id"])
    world.send("fr", a1, loc1, r1)
    a2 = actor("apt28")
    r2 = relationship(a2["id"], "targets", loc1["id"])
    obs = world.send("de", a2, r2)
    assert obs[0].corroborates == (a1["id"],)
    assert obs[1].corroborates == (r1["id"],)
    assert world.trust.reliability("fr", "region:sy").n >= 0


def test_observe_is_idempotent_and_new_versions_add_no_assertion(world: World) -> None:
    a = indicator("198.51.100.8")
    world.send("fr", a)
    again = world.trust.observe([world.stored(a["id"])])
    assert again[0].effect == "ignored"
    newer = {**a, "modified": "2024-06-02T00:00:00.000Z",
             "pattern": "[ipv4-addr:value = '198.51.100.8'] OR [ipv4-addr:value = '192.0.2.1']"}
    [o] = world.send("fr", newer)
    assert o.effect == "assertion"
    with world.store.engine.connect() as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM trust_assertions")).scalar()
        keys = conn.execute(sa.text("SELECT count(*) FROM trust_claims")).scalar()
    assert n == 1 and keys == 2


def test_grade_is_kept_beside_the_object_never_in_it(world: World) -> None:
    a = indicator("198.51.100.9")
    world.send("fr", a)
    raw = world.stored(a["id"]).raw
    g = world.trust.grade(a["id"])
    assert world.stored(a["id"]).raw == raw and "confidence" not in orjson.loads(raw)
    with world.store.engine.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT credibility, confidence FROM trust_grades WHERE object_id = :i"),
            {"i": a["id"]}).one()
    assert tuple(row) == (g.credibility, g.confidence)
