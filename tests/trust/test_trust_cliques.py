"""Collusion cliques: three (or more) partners corroborating each other count as one source,
while honest partners overlapping on public indicators still corroborate each other."""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.trust.trust_helpers import World, indicator, make_world

from detente.trust import TrustConfig
from detente.trust.cliques import tail_bound
from detente.trust.model import Fact, Link, Model

CFG = TrustConfig(clock=lambda: 10**9)
HONEST = ("h0", "h1", "h2")


def _public(n: int) -> str:
    return f"192.0.2.{n}"


def _round(w: World, rng: random.Random, n: int) -> None:
    """Each honest partner reports one indicator: from a shared public pool of 20 half of
    the time (so they overlap, as honest sources of public indicators do), else its own."""
    for k, h in enumerate(HONEST):
        value = _public(rng.randrange(20)) if rng.random() < 0.5 else f"198.18.{k}.{n}"
        w.send(h, indicator(value))


def test_a_clique_of_three_never_reaches_grade_a_or_credibility_1(tmp_path: Path) -> None:
    """The attack of issue 14, finding 13: c1 reports, c2 and c3 re-send it; 80 joint
    claims nobody else reports and we never check.  The pairwise discount alone gave them
    grade A and credibility 1 (mean 0.97, lower bound 0.93)."""
    w = make_world(f"sqlite:///{tmp_path / 's.db'}")
    rng = random.Random(14)
    grades: list[int] = []
    lows: list[float] = []
    claims = []
    for n in range(80):
        claim = indicator(f"203.0.{n // 250}.{n % 250}")
        claims.append(claim["id"])
        w.send("c1", claim)
        w.clock.advance(0.1)
        w.send("c2", indicator(f"203.0.{n // 250}.{n % 250}"))
        w.send("c3", indicator(f"203.0.{n // 250}.{n % 250}"))
        _round(w, rng, n)
        w.clock.advance(0.9)
        grades.append(w.trust.grade(claim["id"]).credibility)
        lows.append(max(w.trust.reliability(c).low for c in ("c1", "c2", "c3")))
    assert min(grades) >= 2, "no clique claim is ever graded confirmed (1)"
    assert max(lows) < 0.85, "no member ever reaches grade A"
    assert all(g == 6 for g in grades[10:]), "from the 10th joint claim on: reputation only"
    # the bound (docs/trust.md): with no outcome and no outside corroboration, each member
    # is at the prior: mean 0.5, no evidence, grade F
    for c in ("c1", "c2", "c3"):
        rel = w.trust.reliability(c)
        assert rel.mean == pytest.approx(0.5) and rel.n == pytest.approx(0.0)
        assert w.trust.source_grade(c) == "F"
    g = w.trust.grade(claims[-1])
    assert g.credibility == 6
    assert any("c2 also reports it but does not count: in a clique with c1" in r
               for r in g.reasons), g.reasons
    # the honest partners around them still corroborate each other
    assert all(w.trust.reliability(h).mean > 0.7 for h in HONEST)
    for obs in w.sent:
        if obs.partner in HONEST and obs.corroborates:
            reasons = " ".join(w.trust.grade(obs.object_id).reasons)
            assert "clique" not in reasons and "counts as one source" not in reasons
    w.store.close()


def test_a_clique_counts_as_one_source_for_others(tmp_path: Path) -> None:
    """An honest report echoed by three clique members gets one source's weight, not three."""
    w = make_world(f"sqlite:///{tmp_path / 's.db'}")
    rng = random.Random(7)
    for n in range(20):
        for c in ("c1", "c2", "c3"):
            w.send(c, indicator(f"203.0.113.{n}"))
        _round(w, rng, n)
        w.clock.advance(1)
    target = indicator("198.51.100.99")
    w.send("h0", target)
    w.clock.advance(0.1)
    for c in ("c1", "c2", "c3"):
        w.send(c, indicator("198.51.100.99"))
    g = w.trust.grade(target["id"])
    counted = [r for r in g.reasons if r.startswith("independently corroborated")]
    assert len(counted) == 1 and counted[0].count("(") == 1, g.reasons
    assert sum("counts as one source with" in r for r in g.reasons) == 2, g.reasons
    w.store.close()


def test_two_honest_partners_overlapping_on_public_indicators_still_corroborate(
        tmp_path: Path) -> None:
    w = make_world(f"sqlite:///{tmp_path / 's.db'}")
    rng = random.Random(3)
    for n in range(40):
        _round(w, rng, n)
        w.clock.advance(1)
    target = indicator("198.51.100.7")
    w.send("h0", target)
    w.clock.advance(0.1)
    w.send("h1", indicator("198.51.100.7"))
    g = w.trust.grade(target["id"])
    assert any(r.startswith("independently corroborated by h1") for r in g.reasons), g.reasons
    assert g.credibility <= 3
    assert not any("clique" in r or "counts as one" in r for r in g.reasons)
    assert all(w.trust.reliability(h).mean > 0.7 for h in HONEST)
    w.store.close()


# -- the model alone: the bound holds for any clique size ---------------------------------
def _world(clique: int, joint: int, background: int, cover: float, seed: int) -> Model:
    rng = random.Random(seed)
    facts: list[Fact] = []
    links: list[Link] = []
    by_claim: dict[str, list[Fact]] = {}

    def add(partner: str, claim: str) -> None:
        f = Fact(len(facts), partner, f"indicator--{len(facts)}", len(facts), len(facts),
                 1.0, False, False, None, None, frozenset({claim}))
        for g in by_claim.get(claim, ()):
            if g.partner != partner:
                links.append(Link(g.id, f.id, True, "independent"))
        by_claim.setdefault(claim, []).append(f)
        facts.append(f)

    for n in range(joint):
        for c in range(clique):
            add(f"c{c}", f"x{n}")
    for b in range(background):  # an outside reference as large as each member's reporting
        for n in range(joint):
            add(f"h{b}", f"pool{rng.randrange(30)}" if rng.random() < cover else f"own{b}-{n}")
    return Model(facts, links, 10**6, CFG)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 5), st.integers(15, 40), st.integers(3, 5), st.floats(0.2, 0.8),
       st.integers(0, 2**16))
def test_no_clique_size_lifts_its_members_above_the_prior(
        clique: int, joint: int, background: int, cover: float, seed: int) -> None:
    """Adding colluders never helps: members whose claims only the clique reports stay at
    the prior, and no clique claim gets any weight; honest partners are not merged."""
    m = _world(clique, joint, background, cover, seed)
    members = [f"c{c}" for c in range(clique)]
    for c in members:
        rel = m.reliability(c)
        assert rel.mean == pytest.approx(0.5) and rel.n == pytest.approx(0.0)
        assert all(m.support(f).weight == 0.0 for f in m.by_partner[c])
    assert [sorted(g) for g in m.cliques.cliques()] == [members]


def test_a_majority_clique_in_a_small_world_is_still_found() -> None:
    """Regression: five colluders with 15 joint reports among eight sources were missed
    with the Chernoff bound alone (p <= 1.0e-4 against a threshold of 7.7e-5); the exact
    small-sample tail finds them."""
    m = _world(5, 15, 3, 0.78125, 1)
    assert [sorted(g) for g in m.cliques.cliques()] == [[f"c{c}" for c in range(5)]]
    assert m.reliability("c0").mean == pytest.approx(0.5)


def test_a_clique_that_is_most_of_the_reporting_is_still_found() -> None:
    """Regression (hypothesis): with 35 joint reports the colluders' own popularity put
    the expectation at 17.5, just over half their overlap, and the lift rule kept them
    apart although p = 3e-8; a complete overlap now links them."""
    m = _world(5, 35, 3, 0.78125, 32603)
    assert [sorted(g) for g in m.cliques.cliques()] == [[f"c{c}" for c in range(5)]]
    assert m.reliability("c0").mean == pytest.approx(0.5)


def test_the_exact_tail_matches_brute_force() -> None:
    from math import comb

    from detente.trust.cliques import tail_probability

    for n, p in ((20, 0.1), (30, 0.5), (12, 0.9), (200, 0.01)):
        for k in range(min(n, 64) + 1):
            exact = min(1.0, sum(comb(n, i) * p**i * (1 - p) ** (n - i)
                                 for i in range(k, n + 1)))
            assert exact - 1e-15 <= tail_probability(k, [(n, p)]) <= exact + 2e-12
    strata = [(3, 0.2), (4, 0.5)]
    for k in range(9):
        exact = sum(comb(3, a) * 0.2**a * 0.8 ** (3 - a) * comb(4, b) * 0.5**4
                    for a in range(4) for b in range(5) if a + b >= k)
        assert exact - 1e-15 <= tail_probability(k, strata) <= exact + 2e-12


def test_the_tail_bound_is_never_below_the_exact_binomial_tail() -> None:
    from math import comb

    for n, p in ((20, 0.1), (30, 0.5), (12, 0.9)):
        for k in range(n + 1):
            exact = sum(comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
            assert tail_bound(k, [(n, p)]) >= exact * (1 - 1e-9)
    assert tail_bound(5, [(4, 0.5)]) == 0.0 and tail_bound(0, [(4, 0.5)]) == 1.0


def test_clique_parameters_are_checked() -> None:
    from detente.trust.errors import TrustConfigError

    for bad in ({"clique_alpha": 0.0}, {"clique_min_joint": 0}, {"clique_min_lift": 0.5}):
        with pytest.raises(TrustConfigError):
            TrustConfig(**bad)  # type: ignore[arg-type]


def test_overlap_expected_from_popularity_is_not_a_clique() -> None:
    """Public indicators everybody reports: full overlap is what independence predicts."""
    with tempfile.TemporaryDirectory() as d:
        w = make_world(f"sqlite:///{Path(d) / 's.db'}")
        for n in range(15):
            for h in ("h0", "h1", "h2", "h3"):
                w.send(h, indicator(_public(n)))
            w.clock.advance(1)
        assert all(w.trust.source_grade(h) != "F" for h in ("h0", "h1"))
        last = [o for o in w.sent if o.partner == "h3"][-1]
        g = w.trust.grade(last.object_id)
        assert not any("clique" in r for r in g.reasons), g.reasons
        w.store.close()
