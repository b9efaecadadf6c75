"""Property: the partial model a tier refresh builds answers what the refresh asks exactly
as the whole model does.

``TrustEngine.refresh`` loads only the assertions that can weigh in a reliability or a
tier (an outcome, a link, an opinion about their object) and asks SQL for the rest
(sources, claim volumes, first counting time).  Over generated worlds (the batch test's:
partners, our reports, re-versions, forwards, echoes, derivations, shared references,
sightings and false positives) with local imports and a feed added, some of them alone on
their claims and some sharing them, and partners' opinions about what we released to
them, both models must give the same sources, reliabilities, clique tests, pair weights,
tier inputs and grades — floats equal, not close: both sum the same terms in the same
order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.trust.test_trust_batch import (  # noqa: F401  (fresh_urls: a fixture)
    PARTNERS,
    STEP,
    VALUES,
    Event,
    World,
    _engine_for,
    _id,
    fresh_urls,
    worlds,
)
from tests.trust.trust_helpers import T0, Clock, indicator, ipv4, make_world, ts

from detente.store.base import IMPORTED, LOCAL, feed_origin, is_partner_origin
from detente.store.engine import writer
from detente.trust import TrustConfig, TrustEngine
from detente.trust import schema as t
from detente.trust.errors import UnknownObjectError
from detente.trust.grading import Grade, make_grade
from detente.trust.model import HIGH, Model
from detente.trust.released import released_value

SOURCES = [IMPORTED, feed_origin("osint")]
#: cliques tested among the few partners of a small world (so the volumes are asked)
LOOSE = {"clique_min_joint": 1, "clique_alpha": 0.9, "clique_min_lift": 1.0}


@st.composite
def worlds_with_imports(draw: st.DrawFn) -> tuple[World, list[tuple[int, int, int]]]:
    """A batch-test world with local imports and a feed's reports inserted, and
    (partner index, assertion rank, stance) opinions to add once observed."""
    world = draw(worlds())
    for j in range(draw(st.integers(0, 6))):
        when = T0 + j * STEP
        shared = draw(st.booleans())
        value = draw(st.sampled_from(VALUES)) if shared else ipv4(1000 + j)
        body = {"type": "indicator", "spec_version": "2.1", "id": _id("indicator", 5000 + j),
                "created": ts(when), "modified": ts(when), "pattern_type": "stix",
                "pattern": f"[ipv4-addr:value = '{value}']", "valid_from": ts(when)}
        if draw(st.integers(0, 3)) == 0:
            body["valid_until"] = ts(when + STEP)
        at = draw(st.integers(0, len(world.events)))
        world.events.insert(at, Event(draw(st.sampled_from(SOURCES)), body, {}))
    opinions = draw(st.lists(st.tuples(st.integers(0, len(PARTNERS) - 1),
                                       st.integers(0, 3), st.sampled_from([1, -1])),
                             max_size=6))
    return world, opinions


def _add_opinions(engine: TrustEngine, opinions: list[tuple[int, int, int]]) -> None:
    """Partners' opinions about assertions' objects, each about claims we released to
    that partner (what makes an opinion evidence)."""
    a, c = t.assertions.c, t.claims.c
    with writer(engine.engine).begin() as conn:
        held = conn.execute(sa.select(a.id, a.object_id).order_by(a.id)).all()
        if not held:
            return
        seen: set[tuple[str, str]] = set()
        for k, (who, rank, stance) in enumerate(opinions):
            partner = PARTNERS[who]
            aid, object_id = held[rank % len(held)]
            if (partner, object_id) in seen:
                continue
            seen.add((partner, object_id))
            conn.execute(t.opinions.insert().values(
                id=_id("opinion", 9000 + k), object_id=object_id, version="v",
                partner=partner, value="agree" if stance > 0 else "disagree",
                stance=stance, explanation="", time=T0 + (k + 1) * STEP))
            rc = t.released_claims.c
            for key in conn.execute(sa.select(c.key).where(c.assertion_id == aid)).scalars():
                if conn.execute(sa.select(rc.key).where(rc.partner == partner,
                                                        rc.key == key)).first() is None:
                    conn.execute(t.released_claims.insert().values(
                        partner=partner, key=key, first_seq=0, importance=1.0))


def _models(engine: TrustEngine) -> tuple[Model, Model]:
    engine._invalidate()  # no cached whole model: the refresh builds its partial one
    part = engine._refresh_model()
    full = engine._load(engine._now())
    assert part.totals is not None and full.totals is None
    return part, full


def assert_same_refresh(engine: TrustEngine) -> Model:
    """Everything ``refresh`` reads of its model, from both models; returns the partial."""
    part, full = _models(engine)
    assert part.partners == full.partners
    assert set(part.facts) <= set(full.facts)
    assert part.cliques.tests == full.cliques.tests
    assert part.pairs == full.pairs
    with engine.engine.connect() as conn:
        released = released_value(conn)
    reviews = engine.reviews(open_only=False)
    for p in full.partners:
        assert part.reliability(p) == full.reliability(p), p
        assert part.important_good(p) == full.important_good(p), p
        assert part.first_time(p) == full.first_time(p), p
        if is_partner_origin(p):
            assert engine._tier_inputs(part, p, 2, released, reviews) == \
                engine._tier_inputs(full, p, 2, released, reviews), p
    for f in part.facts.values():
        assert part.support(f) == full.support(f)
    return part


def assert_same_partner_answers(engine: TrustEngine) -> dict[str, Model]:
    """Every answer about one partner (summary counts, credit, opinion record, reliability
    overall and by topic) from that partner's partial model equals the whole model's;
    returns the partial models by partner."""
    engine._invalidate()
    full = engine._load(engine._now())
    out = {}
    for p in [*full.partners, LOCAL]:
        part = engine._partial_model(engine._now(), p)
        assert part.totals is not None and part.complete == {p}
        assert part.counts(p) == full.counts(p), p
        assert [(f.id, lead, ok) for f, lead, ok in part.first_reports(p)] == \
            [(f.id, lead, ok) for f, lead, ok in full.first_reports(p)], p
        assert part.opinion_record(p) == full.opinion_record(p), p
        for topic in (None, HIGH, "type:indicator", "type:sighting"):
            assert part.reliability(p, topic) == full.reliability(p, topic), (p, topic)
        others = [q for q in full.partners if q != p]
        if others:  # the other partners' every fact is not loaded: refused, not guessed
            with pytest.raises(ValueError, match="partial model"):
                part.counts(others[0])
        out[p] = part
    return out


def assert_same_grades(engine: TrustEngine) -> None:
    """Every object's grade (``grade``, and ``credibility_of`` the Objects page filters
    by) from the refresh's partial model equals the whole model's, reasons included,
    and reliability by topic of every source too; neither builds the whole model."""
    engine._invalidate()
    full = engine._load(engine._now())
    want: dict[str, Grade] = {}
    for oid, facts in full.by_object.items():
        first = min(facts, key=lambda f: (f.seq, f.id))
        want[oid] = make_grade(oid, engine._grade_inputs(full, first), engine.config)
    engine._invalidate()
    part = engine._refresh_model()
    for p in [*full.partners, LOCAL]:
        for topic in (HIGH, "type:indicator", "type:sighting"):
            assert part.reliability(p, topic) == full.reliability(p, topic), (p, topic)
    unknown = _id("indicator", 99_999)
    assert engine.credibility_of([*want, unknown]) == \
        {oid: int(g.credibility) for oid, g in want.items()}
    for oid, g in want.items():
        assert engine.grade(oid) == g, oid
    with pytest.raises(UnknownObjectError):
        engine.grade(unknown)
    assert engine._cache is None  # answered without the whole model


def _check(example: tuple[World, list[tuple[int, int, int]]], url: str,
           config: dict[str, Any]) -> None:
    world, opinions = example
    engine, objs = _engine_for(url, world)
    engine = TrustEngine(engine.engine, engine.store,
                         config=TrustConfig(clock=Clock(T0 + 3600 * STEP), **config))
    engine.observe(objs, refresh=False)
    _add_opinions(engine, opinions)
    assert_same_refresh(engine)
    assert_same_partner_answers(engine)
    assert_same_grades(engine)
    engine.store.close()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(worlds_with_imports(), st.booleans())
def test_partial_model_answers_the_refresh_as_the_whole_model(
        fresh_urls: Callable[[], str],  # noqa: F811
        example: tuple[World, list[tuple[int, int, int]]], loose: bool) -> None:
    _check(example, fresh_urls(), LOOSE if loose else {})


def test_isolated_imports_are_not_loaded(tmp_path: Any, store_url: str) -> None:
    """A run of local imports nobody else reported loads none of them; one that a partner
    also reported is loaded with the partner's, and the refresh stores the same tier and
    trend as a refresh over the whole model."""
    w = make_world(store_url)
    w.send(IMPORTED, *[indicator(ipv4(n)) for n in range(40)])
    part = assert_same_refresh(w.trust)
    assert part.facts == {} and part.partners == [IMPORTED]
    w.clock.advance(1)
    w.send("fr", indicator(ipv4(3)), indicator("203.0.113.9"))
    w.send(LOCAL, indicator("203.0.113.9"))
    part = assert_same_refresh(w.trust)
    assert sorted(f.partner for f in part.facts.values()) == ["fr", "fr", LOCAL, IMPORTED]
    with pytest.raises(ValueError, match="partial model"):
        part.counts("fr")
    # what `partner list` reads of fr: fr's own facts and the evidence, no isolated import
    by_partner = assert_same_partner_answers(w.trust)
    assert sorted(f.partner for f in by_partner["fr"].facts.values()) == \
        ["fr", "fr", LOCAL, IMPORTED]
    assert len(by_partner[IMPORTED].facts) == 43  # its 40 imports, and fr's 2 and ours
    w.trust._invalidate()
    assert w.trust.summary("fr").counts == by_partner["fr"].counts("fr")
    assert w.trust._model_for("fr").totals is not None  # no whole model was built
    assert w.trust._cache is None
    # reliability by topic weighs facts with an outcome or a link alone: any partner's
    full = w.trust._load(w.trust._now())
    for topic in (HIGH, "type:indicator"):
        assert part.reliability("fr", topic) == full.reliability("fr", topic)
    # grades too, from the partial model: no whole model is built for them
    assert_same_grades(w.trust)
    # the refresh itself, partial then whole (the cached model) at the same time: the
    # same tiers, and no new point on any trend
    w.clock.advance(1)
    w.trust._invalidate()
    w.trust.refresh()
    with w.trust.engine.connect() as conn:
        tiers = conn.execute(sa.select(t.tiers.c.partner, t.tiers.c.tier)).all()
    trend = {p: w.trust.reliability_history(p) for p in ("fr", IMPORTED)}
    w.trust._model()  # the whole model, current: the next refresh uses it
    assert w.trust._refresh_model().totals is None
    w.trust.refresh()
    with w.trust.engine.connect() as conn:
        assert conn.execute(sa.select(t.tiers.c.partner, t.tiers.c.tier)).all() == tiers
    assert {p: w.trust.reliability_history(p) for p in trend} == trend  # nothing moved
    w.store.close()
