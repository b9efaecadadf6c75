"""Unit tests of the pure parts: Beta quantiles, the Appendix A mapping, claims, grades,
tiers and the reliability model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from detente.trust import TrustConfig, TrustError, confidence_of, credibility_of
from detente.trust.betadist import beta_cdf, beta_quantile
from detente.trust.claims import extract, importance_of, normalise_value
from detente.trust.config import TrustConfigError
from detente.trust.grading import GradeInputs, credibility, source_grade
from detente.trust.model import Fact, Link, Model, Reliability, Support
from detente.trust.tiers import TierInputs, earned_tier

CFG = TrustConfig(clock=lambda: 0)


# -- Beta ---------------------------------------------------------------------------------
def test_beta_cdf_matches_closed_forms() -> None:
    # Beta(1, 1) is uniform; Beta(2, 1) has cdf x^2; Beta(1, 3) has 1 - (1 - x)^3
    for x in (0.1, 0.37, 0.5, 0.93):
        assert beta_cdf(x, 1, 1) == pytest.approx(x, abs=1e-12)
        assert beta_cdf(x, 2, 1) == pytest.approx(x * x, abs=1e-12)
        assert beta_cdf(x, 1, 3) == pytest.approx(1 - (1 - x) ** 3, abs=1e-12)


def test_beta_quantile_known_values() -> None:
    # median of Beta(a, a) is 1/2; Beta(2, 1) quantile p is sqrt(p)
    assert beta_quantile(0.5, 7.3, 7.3) == pytest.approx(0.5, abs=1e-9)
    assert beta_quantile(0.05, 2, 1) == pytest.approx(math.sqrt(0.05), abs=1e-9)
    # integer parameters: I_x(a, b) = P(Binomial(a + b - 1, x) >= a), exactly
    x = beta_quantile(0.05, 20, 3)
    tail = sum(math.comb(22, k) * x**k * (1 - x) ** (22 - k) for k in range(20, 23))
    assert tail == pytest.approx(0.05, abs=1e-9)


@given(st.floats(0.2, 200), st.floats(0.2, 200), st.floats(0.01, 0.99))
def test_beta_quantile_inverts_the_cdf(a: float, b: float, p: float) -> None:
    x = beta_quantile(p, a, b)
    assert beta_cdf(x, a, b) == pytest.approx(p, abs=1e-6)


# -- STIX 2.1 Appendix A --------------------------------------------------------------------
def test_admiralty_credibility_to_stix_confidence_is_appendix_a() -> None:
    assert [confidence_of(c) for c in range(1, 7)] == [90, 70, 50, 30, 10, None]
    assert [credibility_of(v) for v in (100, 80, 79, 60, 59, 40, 39, 20, 19, 0)] == \
        [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert credibility_of(None) == 6
    for c in range(1, 6):
        assert credibility_of(confidence_of(c)) == c
    with pytest.raises(TrustError):
        confidence_of(7)
    with pytest.raises(TrustError):
        credibility_of(101)


def test_config_refuses_nonsense() -> None:
    with pytest.raises(TrustConfigError):
        TrustConfig(half_life_days=0)
    with pytest.raises(TrustConfigError):
        TrustConfig(topics=("planet",))


# -- claims -------------------------------------------------------------------------------
def test_observables_are_normalised() -> None:
    assert normalise_value("ipv4-addr", "value", "10.0.0.1/32") == "10.0.0.1"
    assert normalise_value("ipv6-addr", "value", "2001:DB8:0:0::1") == "2001:db8::1"
    assert normalise_value("domain-name", "value", "Evil.Example.") == "evil.example"
    assert normalise_value("url", "value", "HTTP://Evil.COM/A") == "http://evil.com/A"


def test_indicator_and_sco_make_the_same_claim() -> None:
    ind = {"type": "indicator", "pattern_type": "stix",
           "pattern": "[ipv4-addr:value = '203.0.113.9/32'] OR [domain-name:value = 'X.org']"}
    sco = {"type": "ipv4-addr", "value": "203.0.113.9"}
    a, b = extract(ind, lambda _r: None, CFG), extract(sco, lambda _r: None, CFG)
    assert b.claims[0] in a.claims
    assert "obs|domain-name|value|x.org" in a.claims
    h1 = extract({"type": "file", "hashes": {"sha256": "AB" * 32}}, lambda _r: None, CFG)
    h2 = extract({"type": "indicator", "pattern_type": "stix",
                  "pattern": f"[file:hashes.'SHA-256' = '{'ab' * 32}']"}, lambda _r: None, CFG)
    assert h1.claims == h2.claims


def test_entities_and_relationships() -> None:
    apt = {"type": "intrusion-set", "id": "intrusion-set--1", "name": "APT 28",
           "aliases": ["Fancy Bear"]}
    ta = {"type": "threat-actor", "id": "threat-actor--2", "name": "apt28"}
    loc = {"type": "location", "id": "location--3", "country": "SY"}
    assert "ent|actor|apt28" in extract(apt, lambda _r: None, CFG).claims
    assert extract(ta, lambda _r: None, CFG).claims == ("ent|actor|apt28",)
    objs = {o["id"]: o for o in (apt, loc)}
    rel = {"type": "relationship", "relationship_type": "targets",
           "source_ref": "intrusion-set--1", "target_ref": "location--3"}
    found = extract(rel, objs.get, CFG)
    assert found.claims == ("rel|ent|actor|apt28|targets|ent|location|sy",)
    assert {"actor:apt28", "region:sy"} <= set(found.topics)
    assert found.importance >= CFG.high_importance


def test_importance_from_type_labels_confidence_and_analyst() -> None:
    base = {"type": "indicator"}
    assert importance_of(base, CFG) == 1.0
    assert importance_of({**base, "labels": ["attribution"], "confidence": 90}, CFG) == 2.5
    assert importance_of({**base, "labels": ["scanning"]}, CFG) == 0.5
    cfg = TrustConfig(importance_overrides={"type:indicator": 3.0})
    assert importance_of(base, cfg) == 3.0


# -- grades and tiers ---------------------------------------------------------------------
def _inputs(**kw: object) -> GradeInputs:
    values: dict[str, object] = dict(
        partner="ru", importance=1.0, outcome=None, echo=False,
        support=Support(0.0, (), ()), source_grade="B", tier=2, review_open=False,
        important_good=0)
    values.update(kw)
    return GradeInputs(**values)  # type: ignore[arg-type]


def test_outcomes_decide_first() -> None:
    assert credibility(_inputs(outcome="refuted"), CFG)[0] == 5
    assert credibility(_inputs(outcome="confirmed"), CFG)[0] == 1
    assert credibility(_inputs(echo=True), CFG)[0] == 6


def test_high_importance_below_tier_3_is_at_most_possibly_true() -> None:
    cred, reasons = credibility(_inputs(importance=2.5, source_grade="A", tier=2), CFG)
    assert cred == 3 and any("below tier 3" in r for r in reasons)
    # a trusted partner with a record of good important reports is believed
    ok = _inputs(importance=2.5, source_grade="A", tier=3, important_good=5)
    assert credibility(ok, CFG)[0] == 2
    # but not while under review
    assert credibility(_inputs(importance=2.5, source_grade="A", tier=3, important_good=5,
                               review_open=True), CFG)[0] == 3
    # corroboration by two independent sources is enough whatever the tier
    two = Support(1.6, (("fr", 0.8), ("de", 0.8)), ())
    assert credibility(_inputs(importance=2.5, tier=0, support=two), CFG)[0] == 1


def test_one_source_never_makes_credibility_1() -> None:
    one = Support(5.0, (("fr", 5.0),), ())
    assert credibility(_inputs(support=one), CFG)[0] == 2


def test_source_grade_thresholds() -> None:
    assert source_grade(Reliability(0.9, 0.8, 0.95, 1.0), CFG) == "F"
    assert source_grade(Reliability.from_beta(60, 2, 2), CFG) == "A"
    assert source_grade(Reliability.from_beta(20, 3, 2), CFG) == "B"
    assert source_grade(Reliability.from_beta(3, 20, 2), CFG) == "E"


def _tier(rel: Reliability, **kw: object) -> int:
    values: dict[str, object] = dict(reliability=rel, standing_days=400, reciprocity=1.0,
                                     important_good=50, base_tier=1)
    values.update(kw)
    return earned_tier(TierInputs(**values), CFG)[0]  # type: ignore[arg-type]


def test_tiers_need_every_condition() -> None:
    strong = Reliability.from_beta(200, 5, 2)
    assert _tier(strong) == 4
    assert _tier(strong, standing_days=10) == 2
    assert _tier(strong, reciprocity=0.1) == 2
    assert _tier(strong, important_good=0) == 2
    assert _tier(strong, review_cap=1) == 1
    assert _tier(Reliability.from_beta(2, 2, 2), base_tier=3) == 3  # too thin: operator's
    assert _tier(Reliability.from_beta(3, 30, 2)) == 0


# -- the model ----------------------------------------------------------------------------
def _fact(i: int, partner: str, claims: set[str], outcome: str | None = None,
          importance: float = 1.0, echo: bool = False) -> Fact:
    return Fact(i, partner, f"indicator--{i}", i, i, importance, echo, False, outcome,
                i if outcome else None, frozenset(claims))


def test_confirmations_and_refutations_move_reliability() -> None:
    facts = [_fact(i, "fr", {f"c{i}"}, "confirmed") for i in range(9)]
    facts += [_fact(9, "fr", {"c9"}, "refuted")]
    r = Model(facts, [], 10, CFG).reliability("fr")
    assert r.mean == pytest.approx(10 / 12)
    assert r.low < r.mean < r.high and r.n == pytest.approx(10, rel=1e-6)


def test_forgetting_halves_old_evidence() -> None:
    half = int(CFG.half_life_us)
    facts = [_fact(0, "fr", {"a"}, "refuted")]
    r = Model(facts, [], half, CFG).reliability("fr")
    assert r.n == pytest.approx(0.5, rel=1e-3)


def test_collusion_discount_shrinks_with_exclusive_joint_claims() -> None:
    facts, links = [], []
    for k in range(10):
        a, b = _fact(2 * k, "c1", {f"x{k}"}), _fact(2 * k + 1, "c2", {f"x{k}"})
        facts += [a, b]
        links.append(Link(a.id, b.id, True, "independent"))
    m = Model(facts, links, 100, CFG)
    assert m.pair_weight("c1", "c2") == pytest.approx(1 / 13)
    # the same pair, with a third source on every joint claim, keeps its weight
    third = [_fact(100 + k, "fr", {f"x{k}"}) for k in range(10)]
    m2 = Model(facts + third, links, 100, CFG)
    assert m2.pair_weight("c1", "c2") == pytest.approx(11 / 13)


def test_echo_facts_are_not_evidence() -> None:
    facts = [_fact(1, "launder", {"a"}, "confirmed", echo=True)]
    r = Model(facts, [], 10, CFG).reliability("launder")
    assert r.n == pytest.approx(0.0)


# -- the hot path's shortcuts equal the plain rules ------------------------------------------
def _ref_importance(body: dict[str, object], config: TrustConfig) -> float:
    """importance_of as first written (set comprehensions over copies of the lists)."""
    def strings(value: object) -> list[str]:
        return [x for x in value if isinstance(x, str)] if isinstance(value, list) else []

    kind = str(body.get("type", ""))
    value = config.type_importance.get(kind, 0.75)
    labels = {str(x).lower() for x in strings(body.get("labels"))}
    labels |= {str(x).lower() for x in strings(body.get("indicator_types"))}
    if labels & config.high_labels or body.get("relationship_type") in (
            "attributed-to", "targets", "compromises", "impersonates"):
        value *= 2.0
    if labels & config.low_labels:
        value *= 0.5
    confidence = body.get("confidence")
    if isinstance(confidence, int) and not isinstance(confidence, bool):
        value *= 1.25 if confidence >= 80 else 0.8 if confidence <= 20 else 1.0
    for key in [f"type:{kind}", *(f"label:{x}" for x in sorted(labels))]:
        value *= config.importance_overrides.get(key, 1.0)
    return max(0.25, min(4.0, value))


def _ref_topics(body: dict[str, object], claims: tuple[str, ...],
                config: TrustConfig) -> tuple[str, ...]:
    out: list[str] = []
    if "type" in config.topics:
        out.append(f"type:{body.get('type')}")
    labels = body.get("labels")
    if "label" in config.topics and isinstance(labels, list):
        out += [f"label:{x.lower()}" for x in labels if isinstance(x, str)]
    for claim in claims:  # every claim split, observables included
        for part in claim.split("|ent|") if claim.startswith("rel|") else [claim]:
            bits = part.removeprefix("rel|").removeprefix("ent|").split("|")
            if len(bits) >= 2 and bits[0] == "actor" and "actor" in config.topics:
                out.append(f"actor:{bits[1]}")
            if len(bits) >= 2 and bits[0] == "location" and "region" in config.topics:
                out.append(f"region:{bits[1]}")
    return tuple(dict.fromkeys(out))


_LABEL = st.sampled_from(["Malicious-Activity", "anomalous-activity", "benign", "c2", "ÉTÉ",
                          "unknown", "attribution"]) | st.integers() | st.none()
_CONFIGS = [CFG, TrustConfig(clock=lambda: 0, topics=("type", "label", "actor", "region"),
                             importance_overrides={"label:c2": 3.0, "type:indicator": 0.5,
                                                   "label:benign": 2.0})]


@given(st.fixed_dictionaries({}, optional={
    "type": st.sampled_from(["indicator", "threat-actor", "relationship", "location", "note"]),
    "labels": st.lists(_LABEL, max_size=4) | _LABEL,
    "indicator_types": st.lists(_LABEL, max_size=3) | _LABEL,
    "confidence": st.integers(-5, 105) | st.booleans() | st.none(),
    "relationship_type": st.sampled_from(["targets", "uses", "indicates"]),
    "name": st.sampled_from(["APT 1", "Fancy Bear"]),
    "aliases": st.lists(st.sampled_from(["Sofacy", "APT28"]), max_size=2),
    "country": st.sampled_from(["FR", "de"]),
    "pattern": st.sampled_from(["[ipv4-addr:value = '198.51.100.1']",
                                "[domain-name:value = 'c2.example.net']"]),
    "pattern_type": st.just("stix"),
}), st.sampled_from(_CONFIGS))
def test_importance_and_topics_equal_the_plain_rules(body: dict[str, object],
                                                     config: TrustConfig) -> None:
    found = extract(body, lambda _ref: None, config)
    assert importance_of(body, config) == _ref_importance(body, config)
    assert found.importance == _ref_importance(body, config)
    assert found.topics == _ref_topics(body, found.claims, config)
