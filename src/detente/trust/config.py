"""The parameters of the trust model, declared once with their meaning and default.

Every number here is discussed in ``docs/trust.md``; the defaults are what the benchmark
(``bench/trust.py``) was run with.  Times are in seconds unless the name says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from detente.stix.timestamps import now_micros
from detente.trust.errors import TrustConfigError

__all__ = ["DAY", "TOPIC_KINDS", "TrustConfig"]

DAY = 86_400.0

#: what a topic can be keyed on: object type, label, threat actor, region
TOPIC_KINDS = frozenset({"type", "label", "actor", "region"})

_TYPE_IMPORTANCE: Mapping[str, float] = {
    "indicator": 1.0, "malware": 1.0, "tool": 0.75, "vulnerability": 1.0,
    "attack-pattern": 0.75, "threat-actor": 1.5, "intrusion-set": 1.5, "campaign": 1.5,
    "identity": 0.75, "location": 0.75, "infrastructure": 1.0, "sighting": 1.0,
    "relationship": 1.0, "observed-data": 0.75,
}
_HIGH_LABELS = frozenset({"attribution", "critical", "imminent", "targeting", "high",
                          "high-impact", "apt", "sabotage", "attack-planning"})
_LOW_LABELS = frozenset({"scanning", "scanner", "spam", "benign", "low", "informational",
                         "commodity", "trivial"})
_VOCABULARY_SOURCES = frozenset({"mitre-attack", "mitre-mobile-attack", "mitre-ics-attack",
                                 "capec", "cve", "cwe", "nvd"})


@dataclass(frozen=True)
class TrustConfig:
    # -- the Beta model ---------------------------------------------------------------
    #: Beta prior of every partner's reliability (uniform: no opinion before evidence)
    prior_alpha: float = 1.0
    prior_beta: float = 1.0
    #: forgetting: evidence loses half its weight after this many days
    half_life_days: float = 180.0
    #: likelihood ratio P(corroborated | true) / P(corroborated | false) of one fully
    #: independent, fully reliable corroborating source
    corroboration_lr: float = 8.0
    #: likelihood ratio of expiring with no outcome at all (true claims are seen more)
    expiry_lr: float = 0.5
    #: weight of a corroboration by a source that reported the claim *before* this one
    #: (copying a public claim is cheap; the first report is what earns credit)
    late_weight: float = 0.5
    #: EM iterations of the joint fixed point (reliabilities weight corroborations)
    iterations: int = 3
    #: weight of a partner's opinion about a report (times the report's importance) once
    #: our verdict resolves the report; other partners' opinions resolve it more weakly
    #: (each agreeing or disputing partner weighs its pair weight times its reliability)
    opinion_weight: float = 0.5
    # -- collusion: pairwise discount ------------------------------------------------
    #: Beta prior of a pair's "joint claims also supported by a third party" rate;
    #: (1, 2) makes a first joint claim with no third support weigh 1/4
    pair_prior_good: float = 1.0
    pair_prior_bad: float = 2.0
    # -- collusion: cliques (``trust/cliques.py``) -----------------------------------
    #: two partners count as one source when their joint claims exceed independent
    #: reporting (given each claim's popularity) with p <= alpha / pairs tested ...
    clique_alpha: float = 1e-3
    #: ... on at least this many joint claims ...
    clique_min_joint: int = 5
    #: ... and at least this many times the number independent reporting would give
    clique_min_lift: float = 2.0
    # -- importance ---------------------------------------------------------------------
    type_importance: Mapping[str, float] = field(default_factory=lambda: dict(_TYPE_IMPORTANCE))
    high_labels: frozenset[str] = _HIGH_LABELS
    low_labels: frozenset[str] = _LOW_LABELS
    #: analyst's setting: importance multipliers by object type or label
    importance_overrides: Mapping[str, float] = field(default_factory=dict)
    #: an assertion at or above this importance is "high-importance"
    high_importance: float = 2.0
    # -- grades -------------------------------------------------------------------------
    #: credibility 1 by corroboration: summed source weight and distinct sources
    confirm_weight: float = 1.5
    confirm_sources: int = 2
    #: credibility 2 / 3 by corroboration: summed source weight
    probable_weight: float = 0.6
    possible_weight: float = 0.1
    #: source grade F below this much (decayed, weighted) evidence
    min_evidence: float = 3.0
    #: a high-importance claim needs this many good high-importance reports from the
    #: partner before its reputation alone can make it better than "possibly true"
    important_record: int = 3
    #: external-reference sources that are vocabularies, not reporting
    vocabulary_sources: frozenset[str] = _VOCABULARY_SOURCES
    # -- tiers --------------------------------------------------------------------------
    #: below this much evidence the operator's tier (set at ``partner add``) stands
    judge_evidence: float = 5.0
    #: (evidence, lower bound of 90% interval, days in good standing, reciprocity,
    #: good high-importance reports) needed for tiers 2, 3, 4
    tier_rules: tuple[tuple[float, float, float, float, int], ...] = (
        (8.0, 0.55, 7.0, 0.0, 0),
        (25.0, 0.70, 30.0, 0.25, 3),
        (80.0, 0.85, 120.0, 0.33, 10),
    )
    #: the operator's tier (``partner add --tier``) stays a floor while the reliability
    #: mean is at least this
    keep_operator_tier: float = 0.5
    #: below this reliability mean a judged partner is tier 0
    tier0_below: float = 0.35
    #: while a review is open the tier is at most this (and below the tier it had)
    review_max_tier: int = 1
    #: this many protocol deviations (e.g. abandoned deconfliction sessions) within
    #: ``deviation_window_days`` open a review; fewer are evidence in the ledger only (a
    #: network failure can abandon one session; a pattern is a partner's choice)
    deviations_for_review: int = 2
    deviation_window_days: float = 30.0
    # -- topics and time ---------------------------------------------------------------
    topics: tuple[str, ...] = ("type", "actor", "region")
    #: the clock (µs since the epoch); the benchmark passes a simulated one
    clock: Callable[[], int] = now_micros

    def __post_init__(self) -> None:
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise TrustConfigError("prior_alpha and prior_beta must be positive")
        if self.half_life_days <= 0:
            raise TrustConfigError("half_life_days must be positive")
        if self.deviations_for_review < 1 or self.deviation_window_days <= 0:
            raise TrustConfigError("deviations_for_review must be >= 1 and "
                                   "deviation_window_days positive")
        if self.corroboration_lr <= 1 or not 0 < self.expiry_lr <= 1:
            raise TrustConfigError("corroboration_lr must be > 1 and expiry_lr in (0, 1]")
        if not 0 <= self.opinion_weight <= 10:
            raise TrustConfigError("opinion_weight must be in [0, 10]")
        if not 0 < self.late_weight <= 1:
            raise TrustConfigError("late_weight must be in (0, 1]")
        if not 0 < self.clique_alpha < 1 or self.clique_min_joint < 1 \
                or self.clique_min_lift < 1:
            raise TrustConfigError("clique_alpha must be in (0, 1), clique_min_joint >= 1 and "
                              "clique_min_lift >= 1")
        unknown = set(self.topics) - TOPIC_KINDS
        if unknown:
            raise TrustConfigError(f"unknown topic kinds {sorted(unknown)}",
                              hint=f"use some of {sorted(TOPIC_KINDS)}")
        if len(self.tier_rules) != 3:
            raise TrustConfigError("tier_rules needs one rule for each of tiers 2, 3 and 4")

    @property
    def half_life_us(self) -> float:
        return self.half_life_days * DAY * 1e6
