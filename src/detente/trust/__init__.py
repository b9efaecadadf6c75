"""Earned trust: evidence about partners' reports, reliability, Admiralty grades, tiers
and credit.  See ``docs/trust.md``.

The seams others call: :class:`TrustEngine` (``observe``, ``confirm``, ``refute``,
``expire``, ``refresh``, ``tier`` — the partner book's ``TierSource`` —, ``tier_changes``,
``grade``, ``reliability``, ``source_grade``, ``credit``, ``history``, ``reviews``).
"""

from detente.trust.admiralty import CREDIBILITY_NAMES, GRADE_NAMES, confidence_of, credibility_of
from detente.trust.config import TrustConfig
from detente.trust.correlation import Correlation
from detente.trust.engine import ReliabilityPoint, TrustEngine
from detente.trust.errors import TrustConfigError, TrustError, UnknownObjectError
from detente.trust.grading import Grade
from detente.trust.model import Counts, Reliability
from detente.trust.records import (
    Credit,
    HistoryItem,
    Observation,
    PartnerTrust,
    Review,
    TierChange,
)

__all__ = [
    "CREDIBILITY_NAMES",
    "GRADE_NAMES",
    "Correlation",
    "Counts",
    "Credit",
    "Grade",
    "HistoryItem",
    "Observation",
    "PartnerTrust",
    "Reliability",
    "ReliabilityPoint",
    "Review",
    "TierChange",
    "TrustConfig",
    "TrustConfigError",
    "TrustEngine",
    "TrustError",
    "UnknownObjectError",
    "confidence_of",
    "credibility_of",
]
