"""Trust tiers 0–4 from the evidence, as a pure rule.

A partner's earned tier needs all of: enough evidence, a high enough *lower bound* of the
reliability interval (so thin evidence cannot earn much), time in good standing (since its
first report, its last refuted high-importance report or its last review), reciprocity
(what it gave, valued by outcomes, against what we gave it) and, for tiers 3 and 4, a
record of good high-importance reports.  Below ``judge_evidence`` the operator's tier
stands; after that it remains a floor while the partner's reliability stays at or above
``keep_operator_tier`` (the operator's starting trust is kept while behaviour is good,
and lost when it is not).  An open review caps the tier below what it was when the review
opened.  Trust is thus slow to build (every condition, with standing time) and fast to
lose (one refuted important report drops the tier at once).
"""

from __future__ import annotations

from dataclasses import dataclass

from detente.trust.config import TrustConfig
from detente.trust.model import Reliability

__all__ = ["TierInputs", "earned_tier"]


@dataclass(frozen=True, slots=True)
class TierInputs:
    reliability: Reliability
    standing_days: float
    reciprocity: float
    important_good: int
    base_tier: int
    review_cap: int | None = None


def _evidence_tier(i: TierInputs, config: TrustConfig) -> tuple[int, str]:
    r = i.reliability
    if r.mean < config.tier0_below:
        return 0, f"reliability {r.mean:.2f} is below {config.tier0_below}"
    tier, why = 1, "probation: evidence does not yet meet tier 2"
    for level, (n, low, days, recip, important) in enumerate(config.tier_rules, start=2):
        missing = [name for name, ok in (
            (f"evidence {r.n:.1f} < {n}", r.n >= n),
            (f"reliability low bound {r.low:.2f} < {low}", r.low >= low),
            (f"{i.standing_days:.0f} days in good standing < {days}", i.standing_days >= days),
            (f"reciprocity {i.reciprocity:.2f} < {recip}", i.reciprocity >= recip),
            (f"{i.important_good} good important reports < {important}",
             i.important_good >= important),
        ) if not ok]
        if missing:
            return tier, f"tier {level} needs: {'; '.join(missing)}" if tier > 1 or level == 2 \
                else why
        tier, why = level, f"meets every condition of tier {level}"
    return tier, why


def earned_tier(i: TierInputs, config: TrustConfig) -> tuple[int, str]:
    """The earned tier and why."""
    if i.reliability.n < config.judge_evidence:
        tier, why = i.base_tier, (f"too little evidence ({i.reliability.n:.1f} < "
                                  f"{config.judge_evidence}): the operator's tier stands")
    else:
        tier, why = _evidence_tier(i, config)
        if tier < i.base_tier and i.reliability.mean >= config.keep_operator_tier:
            tier, why = i.base_tier, f"the operator's tier stands ({why})"
    if i.review_cap is not None and tier > i.review_cap:
        return i.review_cap, f"under review after a refuted important report (cap {i.review_cap})"
    return tier, why
