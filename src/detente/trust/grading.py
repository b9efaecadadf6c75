"""Admiralty grades: a partner's source reliability A–F, and one object's information
credibility 1–6 with the reasons, as pure rules over what the model inferred.

Credibility, in order (the first rule that applies decides, then the caps):

(1) refuted by us (a sighting marked false-positive, or an analyst) → 5 improbable;
(2) confirmed by us (our own sighting, or an analyst) → 1 confirmed;
(3) an echo of what we released to that partner → 6: it adds no evidence;
(4) independent corroboration: summed weight ≥ 1.5 from ≥ 2 sources → 1, ≥ 0.6 → 2,
    ≥ 0.1 → 3;
(5) reputation alone: source grade A/B → 2, C → 3, D → 4, E → 5, F → 6;
    the better of (4) and (5) stands, then the caps:
(6) a high-importance assertion not corroborated to 2 or better is graded no better than
    3 when the partner is below tier 3, has an open review, or has too few good
    high-importance reports of its own (trust earned on trivial reports does not carry
    over to important ones: the on-off defence).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from detente.trust.admiralty import CREDIBILITY_NAMES, confidence_of
from detente.trust.config import TrustConfig
from detente.trust.model import Reliability, Support

__all__ = ["Grade", "GradeInputs", "credibility", "source_grade"]

_REPUTATION = {"A": 2, "B": 2, "C": 3, "D": 4, "E": 5, "F": 6}
_ORDER = "ABCDEF"


def source_grade(rel: Reliability, config: TrustConfig) -> str:
    """A–F from the posterior: F when the evidence is too thin to judge."""
    if rel.n < config.min_evidence:
        return "F"
    if rel.low >= 0.85:
        return "A"
    if rel.low >= 0.70:
        return "B"
    if rel.low >= 0.50:
        return "C"
    return "D" if rel.mean >= 0.40 else "E"


def worse(a: str, b: str) -> str:
    return a if _ORDER.index(a) >= _ORDER.index(b) else b


@dataclass(frozen=True, slots=True)
class Grade:
    """One object's credibility, its STIX confidence (Appendix A; None = not present)."""

    object_id: str
    partner: str
    credibility: int
    confidence: int | None
    reasons: list[str]
    source_grade: str

    @property
    def admiralty(self) -> str:
        return f"{self.source_grade}{self.credibility}"

    @property
    def meaning(self) -> str:
        return CREDIBILITY_NAMES[self.credibility]


@dataclass(frozen=True, slots=True)
class GradeInputs:
    partner: str
    importance: float
    outcome: str | None
    echo: bool
    support: Support
    source_grade: str
    tier: int
    review_open: bool
    important_good: int
    local: bool = False
    notes: list[str] = field(default_factory=list)


def _by_corroboration(s: Support, config: TrustConfig) -> int | None:
    if s.weight >= config.confirm_weight and len(s.sources) >= config.confirm_sources:
        return 1
    if s.weight >= config.probable_weight:
        return 2
    if s.weight >= config.possible_weight:
        return 3
    return None


def _support_reason(s: Support) -> str:
    if not s.sources:
        return "no independent corroboration"
    parts = ", ".join(f"{p} ({e:.2f})" for p, e in s.sources)
    return f"independently corroborated by {parts}: weight {s.weight:.2f}"


def _caps(g: GradeInputs, cred: int, corr: int | None,
          config: TrustConfig) -> tuple[int, list[str]]:
    if g.importance < config.high_importance or (corr is not None and corr <= 2) or cred >= 3:
        return cred, []
    why = []
    if g.tier < 3:
        why.append(f"{g.partner} is below tier 3 (tier {g.tier})")
    if g.review_open:
        why.append(f"{g.partner} is under review after a refuted important report")
    if g.important_good < config.important_record:
        why.append(f"{g.partner} has {g.important_good} good high-importance reports, "
                   f"fewer than {config.important_record}")
    if not why or g.local:
        return cred, []
    return 3, [f"high-importance and uncorroborated: no better than 3 ({'; '.join(why)})"]


def credibility(g: GradeInputs, config: TrustConfig) -> tuple[int, list[str]]:
    """The credibility and the reasons, per the rules in the module docstring."""
    reasons = list(g.notes)
    if g.outcome == "refuted":
        return 5, [*reasons, "refuted by us"]
    if g.outcome == "confirmed":
        return 1, [*reasons, "confirmed by us"]
    if g.echo:
        return 6, [*reasons, f"echo: {g.partner} sent back what we had released to it "
                   "(circular reporting is no evidence)"]
    for p, why in g.support.excluded:
        reasons.append(f"{p} also reports it but does not count: {why}")
    corr = _by_corroboration(g.support, config)
    reasons.append(_support_reason(g.support))
    rep = 3 if g.local else _REPUTATION[g.source_grade]
    reasons.append("our own report" if g.local else
                   f"source grade {g.source_grade}: on reputation alone {rep}")
    cred = min(corr or 6, rep)
    cred, capped = _caps(g, cred, corr, config)
    return cred, reasons + capped


def make_grade(object_id: str, g: GradeInputs, config: TrustConfig) -> Grade:
    cred, reasons = credibility(g, config)
    return Grade(object_id, g.partner, cred, confidence_of(cred), reasons,
                 "-" if g.local else g.source_grade)
