"""The Admiralty code: source reliability A–F, information credibility 1–6, and the
STIX 2.1 Appendix A mapping between credibility and the STIX ``confidence`` property.

STIX 2.1 (OASIS Standard), Appendix A "Confidence Scales", Admiralty Credibility:

=============================== ===================== ===========================
Admiralty credibility           STIX confidence value STIX confidence → credibility
=============================== ===================== ===========================
6 - Truth cannot be judged      (not present)         N/A
5 - Improbable                  10                    0-19
4 - Doubtful                    30                    20-39
3 - Possibly true               50                    40-59
2 - Probably true               70                    60-79
1 - Confirmed by other sources  90                    80-100
=============================== ===================== ===========================

So credibility 6 has *no* confidence value: the property is absent, which is why
:func:`confidence_of` returns ``None`` for it.
"""

from __future__ import annotations

from detente.trust.errors import TrustError

__all__ = ["CREDIBILITY_NAMES", "GRADE_NAMES", "confidence_of", "credibility_of"]

CREDIBILITY_NAMES = {
    1: "confirmed by other sources", 2: "probably true", 3: "possibly true",
    4: "doubtful", 5: "improbable", 6: "truth cannot be judged",
}

GRADE_NAMES = {
    "A": "completely reliable", "B": "usually reliable", "C": "fairly reliable",
    "D": "not usually reliable", "E": "unreliable", "F": "reliability cannot be judged",
}

_TO_CONFIDENCE = {1: 90, 2: 70, 3: 50, 4: 30, 5: 10}


def confidence_of(credibility: int) -> int | None:
    """The STIX ``confidence`` for an Admiralty credibility (None: property not present)."""
    if credibility not in CREDIBILITY_NAMES:
        raise TrustError(f"credibility must be 1-6, got {credibility!r}")
    return _TO_CONFIDENCE.get(credibility)


def credibility_of(confidence: int | None) -> int:
    """The Admiralty credibility a STIX ``confidence`` value stands for (absent → 6)."""
    if confidence is None:
        return 6
    if isinstance(confidence, bool) or not isinstance(confidence, int) \
            or not 0 <= confidence <= 100:
        raise TrustError(f"STIX confidence must be an integer 0-100, got {confidence!r}")
    for credibility, low in ((1, 80), (2, 60), (3, 40), (4, 20)):
        if confidence >= low:
            return credibility
    return 5
