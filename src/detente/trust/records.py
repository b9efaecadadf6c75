"""What the engine returns: observations, tier changes, credit, reviews, history."""

from __future__ import annotations

from dataclasses import dataclass

from detente.trust.model import Counts, Reliability

__all__ = ["Credit", "HistoryItem", "Observation", "PartnerTrust", "Review", "TierChange"]


@dataclass(frozen=True, slots=True)
class Observation:
    """What ``observe`` made of one stored object.

    ``effect`` is ``assertion``, ``confirms``/``refutes`` (our own sighting of
    ``target``), ``derived-from`` (a declared derivation, recorded) or ``ignored``.
    """

    object_id: str
    version: str
    partner: str
    effect: str
    claims: tuple[str, ...] = ()
    importance: float = 0.0
    echo: bool = False
    echo_reason: str | None = None
    corroborates: tuple[str, ...] = ()
    not_independent: tuple[tuple[str, str], ...] = ()
    target: str | None = None


@dataclass(frozen=True, slots=True)
class TierChange:
    partner: str
    old: int
    new: int
    reason: str


@dataclass(frozen=True, slots=True)
class Credit:
    """First reports (intake order) later corroborated or confirmed, and lead time."""

    partner: str
    first_reports: int
    corroborated: int
    confirmed: int
    median_lead_s: float | None
    value: float
    #: object ids of the credited first reports (later corroborated or confirmed)
    credited_ids: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Review:
    id: int
    partner: str
    object_id: str
    opened_at: int
    reason: str
    tier_before: int
    tier_cap: int
    closed_at: int | None
    closed_why: str | None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    time: int
    kind: str
    object_id: str | None
    detail: str


@dataclass(frozen=True, slots=True)
class PartnerTrust:
    partner: str
    tier: int
    grade: str
    reliability: Reliability
    counts: Counts
    credit: Credit
    reviews_open: int
    #: why the stored tier is what it is (the last refresh's reason); "" before any
    tier_reason: str = ""
