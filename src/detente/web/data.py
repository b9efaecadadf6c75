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
from detente.trust import Grade, HistoryItem, PartnerTrust, Review

__all__ = [
    "CREDIBILITY_NAMES", "GRADE_NAMES", "Missing", "Note", "TrendPoint", "checkpoint_notes",
    "credibility", "credibility_order", "deconflict_runner", "echoes", "evidence_timeline",
    "partner_trust", "reliability_trend", "reviews",
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
    """Credibility of each graded object (1 best), for ordering the inbox."""
    out = {}
    for oid in object_ids:
        grade = credibility(node, oid)
        if not isinstance(grade, Note):
            out[oid] = int(grade.credibility)
    return out


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
