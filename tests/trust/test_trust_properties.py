"""Properties: more independent corroboration never lowers credibility; echoes and
colluder-only corroboration never yield credibility 1 (nor 2 for colluders)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.trust.trust_helpers import indicator, make_world

from detente.trust import TrustConfig
from detente.trust.grading import GradeInputs, credibility, source_grade
from detente.trust.model import Fact, Link, Model

CFG = TrustConfig(clock=lambda: 10**9)
OUTCOMES = st.sampled_from([None, "confirmed", "refuted", "expired"])
PARTNERS = ["p0", "p1", "p2", "p3", "p4", "p5"]


@st.composite
def histories(draw: st.DrawFn) -> list[Fact]:
    """Past reports of the partners, with our verdicts: they set reliabilities."""
    facts = []
    for i in range(draw(st.integers(0, 30))):
        partner = draw(st.sampled_from(PARTNERS))
        facts.append(Fact(1000 + i, partner, f"indicator--h{i}", i, i,
                          draw(st.sampled_from([0.5, 1.0, 2.5])), False, False,
                          draw(OUTCOMES), i, frozenset({f"h{draw(st.integers(0, 8))}"})))
    return facts


def _grade(history: list[Fact], corroborators: list[str], importance: float,
           tier: int) -> int:
    target = Fact(1, "p0", "indicator--t", 10**6, 10**6, importance, False, False, None,
                  None, frozenset({"x"}))
    facts = [*history, target]
    links = []
    for k, p in enumerate(corroborators):
        other = Fact(2 + k, p, f"indicator--c{k}", 10**6 + k + 1, 10**6 + k + 1, 1.0, False,
                     False, None, None, frozenset({"x"}))
        facts.append(other)
        links.append(Link(target.id, other.id, True, "independent"))
    model = Model(facts, links, 10**9, CFG)
    inputs = GradeInputs("p0", importance, None, False, model.support(target),
                         source_grade(model.reliability("p0"), CFG), tier, False,
                         model.counts("p0").important_good)
    return credibility(inputs, CFG)[0]


@settings(max_examples=200, deadline=None)
@given(histories(), st.lists(st.sampled_from(PARTNERS[1:]), unique=True, max_size=4),
       st.sampled_from(PARTNERS[1:]), st.sampled_from([0.5, 1.0, 2.5]), st.integers(0, 4))
def test_more_independent_corroboration_never_lowers_credibility(
        history: list[Fact], sources: list[str], extra: str, importance: float,
        tier: int) -> None:
    before = _grade(history, sources, importance, tier)
    after = _grade(history, sorted({*sources, extra}), importance, tier)
    assert after <= before  # 1 is best


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(0, 6), st.integers(0, 3), st.booleans())
def test_echoes_and_colluders_never_confirm(rounds: int, echoes: int, important: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        w = make_world(f"sqlite:///{Path(d) / 's.db'}")
        labels = ["attribution"] if important else None
        # a colluding pair: each re-sends the other's reports, nobody else ever does
        for n in range(rounds):
            first = indicator(f"203.0.113.{n}", labels=labels)
            w.send("c1", first)
            w.clock.advance(1)
            w.send("c2", indicator(f"203.0.113.{n}", labels=labels))
        claim = indicator("192.0.2.77", labels=labels)
        w.send("c1", claim)
        w.clock.advance(1)
        w.send("c2", indicator("192.0.2.77", labels=labels))
        for e in range(echoes):
            w.send(f"echo{e}", indicator("192.0.2.77"), flags={"echo": True})
        graded = w.trust.grade(claim["id"])
        assert graded.credibility >= 3, graded.reasons
        for obs in w.sent:
            if obs.echo:
                assert w.trust.grade(obs.object_id).credibility == 6
        w.store.close()
