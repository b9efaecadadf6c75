"""The UI's reads of earned trust, deconfliction and the ledger, in one place.

Each function calls its capability directly.  :class:`Missing` is an empty state said
plainly (what is absent, and what to do next): e.g. a partner whose reliability has no
trend yet because no evidence about it has been refreshed.  Nothing here makes data up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detente.deconflict import Budgets
from detente.errors import NotFoundError
from detente.federation.psi.budgets import BudgetTable
from detente.node import Node
from detente.partners import TIER_NAMES, Partner
from detente.trust import Grade, HistoryItem, PartnerTrust, Review

__all__ = [
    "CREDIBILITY_NAMES",
    "GRADE_NAMES",
    "Missing",
    "Note",
    "PartnerFigures",
    "TrendPoint",
    "checkpoint_notes",
    "credibility",
    "credibility_order",
    "deconflict_runner",
    "echoes",
    "evidence_timeline",
    "partner_figures",
    "partner_trust",
    "reliability_trend",
    "reviews",
]

GRADE_NAMES = {
    "A": "completely reliable", "B": "usually reliable", "C": "fairly reliable",
    "D": "not usually reliable", "E": "unreliable", "F": "reliability cannot be judged",
}
CREDIBILITY_NAMES = {
    1: "confirmed by other sources", 2: "probably true", 3: "possibly true",
    4: "doubtful", 5: "improbable", 6: "truth cannot be judged",
}


@dataclass(frozen=True, slots=True)
class Missing:
    """A capability that is not there yet, said plainly: what, which call, what to do."""

    title: str
    needs: str
    next_step: str = ""


@dataclass(frozen=True, slots=True)
class Note:
    """The capability answered, but has nothing to say about this item (and why)."""

    text: str


@dataclass(frozen=True, slots=True)
class TrendPoint:
    time: datetime
    value: float
    low: float
    high: float


def micros_time(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e6, UTC)


# -- earned trust -----------------------------------------------------------------------

def partner_trust(node: Node, partner: str) -> PartnerTrust:
    """Tier, grade A–F, reliability, evidence counts and credit."""
    return node.trust.summary(partner)


#: the lower bound of the 90% interval each grade needs (trust.grading.source_grade)
_GRADE_FLOORS = (("A", 0.85), ("B", 0.70), ("C", 0.50))


@dataclass(frozen=True, slots=True)
class PartnerFigures:
    """A partner's tier, grade, report counts and credit, each with its explanation."""

    tier: str
    tier_why: str
    grade: str
    grade_why: str
    reports: str
    corroboration: str
    credit: str
    credit_why: str


def _tier_why(p: Partner, used: int, trust: PartnerTrust) -> str:
    earned = trust.tier
    if p.min_tier is not None and used == p.min_tier and earned < p.min_tier:
        return (f"an operator floor: the evidence earns tier {earned}, but the operator "
                f"keeps it at least {p.min_tier}" + (f" ({p.cap_reason})" if p.cap_reason
                                                       else ""))
    if p.max_tier is not None and used == p.max_tier and earned > p.max_tier:
        return (f"an operator cap: the evidence earns tier {earned}, but the operator "
                f"allows at most {p.max_tier}" + (f" ({p.cap_reason})" if p.cap_reason
                                                    else ""))
    why = (f"at the last re-evaluation: {trust.tier_reason}" if trust.tier_reason
           else "no evidence weighed yet")
    if "operator's tier stands" in why or not trust.tier_reason:
        return (f"the operator's starting tier ({p.base_tier} · {TIER_NAMES[p.base_tier]}), "
                f"kept as a floor while the partner's reports hold up — {why}")
    return f"earned from the evidence — {why}"


def _grade_why(trust: PartnerTrust) -> str:
    r = trust.reliability
    if trust.grade == "F":
        return (f"too little evidence to judge (weight {r.n:.1f}); the grade is earned "
                "from corroborated, confirmed and refuted reports only")
    floor = next((f for g, f in _GRADE_FLOORS if g == trust.grade), None)
    better = [(g, f) for g, f in _GRADE_FLOORS if floor is None or f > floor]
    step = f"; {better[-1][0]} needs ≥ {better[-1][1]:.2f}" if better else ""
    return (f"earned from the evidence alone: the 90% interval's lower bound is "
            f"{r.low:.2f} (mean {r.mean:.2f}, evidence weight {r.n:.1f}){step}")


def partner_figures(p: Partner, used: int, trust: PartnerTrust) -> PartnerFigures:
    """Explained figures: the tier the policy uses beside the grade earned from evidence,
    report counts that add up, and what credit is."""
    c, credit = trust.counts, trust.credit
    weighed = c.assertions - c.not_counted
    reports = (f"{c.assertions} reports: {c.confirmed} confirmed, {c.refuted} refuted, "
               f"{c.expired} expired, {c.awaiting} awaiting a verdict, {c.not_counted} "
               f"not weighed (echoes of our own releases, revoked, or no claim; "
               f"{c.echoes} echoes)")
    corroboration = (f"Separately from verdicts: {c.corroborated} of the {weighed} weighed "
                     f"reports are corroborated by an independent source.")
    credited = f"{credit.corroborated} corroborated later, {credit.confirmed} confirmed"
    if credit.first_reports == 0 and weighed == 0:
        credit_why = "nothing it sent has been weighed yet, so it has no first report"
    elif credit.first_reports == 0:
        credit_why = ("no first report yet: for every claim it sent, another source "
                      "reported it earlier")
    elif credit.value == 0:
        credit_why = (f"none of its {credit.first_reports} first reports has yet been "
                      "corroborated by another source or confirmed by us")
    else:
        credit_why = (f"the summed importance (0.25–4 each) of its first reports later "
                      f"borne out: {credit.first_reports} first reports, {credited} "
                      "(a report may be both)")
    if credit.median_lead_s is not None:
        credit_why += f"; median lead over the next source {credit.median_lead_s / 3600:.1f} h"
    return PartnerFigures(
        f"{used} · {TIER_NAMES[used]}", _tier_why(p, used, trust),
        f"{trust.grade} · {GRADE_NAMES.get(trust.grade, '')}", _grade_why(trust),
        reports, corroboration, f"{credit.value:.1f}", credit_why)


def reliability_trend(node: Node, partner: str) -> list[TrendPoint] | Missing:
    """The partner's reliability over time, or an empty state when there is no trend."""
    points = [TrendPoint(micros_time(p.time), p.reliability.mean, p.reliability.low,
                         p.reliability.high) for p in node.trust.reliability_history(partner)]
    if len(points) < 2:
        return Missing("No reliability trend yet", "two refreshes of its evidence",
                       "A trend appears once evidence about this partner has been weighed "
                       "twice (each sync, verdict or sighting weighs it).")
    return points


def evidence_timeline(node: Node, partner: str) -> list[HistoryItem]:
    """Evidence about the partner, newest first."""
    return list(node.trust.history(partner))


def echoes(history: list[HistoryItem]) -> list[HistoryItem]:
    """The history items the engine flagged as echoes of our own releases."""
    return [item for item in history if item.kind == "echo"]


def reviews(node: Node, partner: str) -> list[Review]:
    return [r for r in node.trust.reviews(open_only=False) if r.partner == partner]


def credibility(node: Node, object_id: str) -> Grade | Note:
    """Credibility 1–6 with its reasons and the source grade, or why it is not graded."""
    try:
        return node.trust.grade(object_id)
    except NotFoundError as exc:
        return Note(f"Not graded: {exc.message}" + (f" ({exc.hint})." if exc.hint else "."))


def credibility_order(node: Node, object_ids: Iterable[str]) -> dict[str, int]:
    """Credibility of each graded object (1 best), for ordering the inbox: graded at
    once, nothing stored (a page view writes no grade)."""
    return node.trust.credibility_of(object_ids)


# -- private deconfliction --------------------------------------------------------------

def deconflict_runner() -> Callable[..., Any]:
    """The requester side of private deconfliction over signed HTTP."""
    from detente.federation.psi.remote import run_query

    return run_query


# -- ledger -----------------------------------------------------------------------------

def checkpoint_notes(node: Node, limit: int = 20) -> list[str]:
    """Signed checkpoint notes of this node's log, newest first."""
    return node.ledger.checkpoints(limit)


def partner_budgets(node: Node) -> Budgets:
    """The deconfliction budgets this node gives partners (the operator's table)."""
    return BudgetTable(node.store.engine).budgets()
