"""Opinions between partners: STIX 2.1 ``opinion`` objects about each other's reports —
building ours for exactly an object's audience, reading partners' as evidence (the trust
engine), and the holds on reports we refuted (the release path).  See ``docs/trust.md``,
"Opinions"."""

from detente.opinions.opinion import (
    OPINION_VALUES,
    OpinionRecord,
    Stance,
    opinion_object,
    refuted_audiences,
    stance_of,
    value_for,
)

__all__ = ["OPINION_VALUES", "OpinionRecord", "Stance", "opinion_object", "refuted_audiences",
           "stance_of", "value_for"]
