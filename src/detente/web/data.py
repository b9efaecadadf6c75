"""Adapters between the UI and capabilities that may not be present on every node.

Each function calls one capability *if it exists* and otherwise returns :class:`Missing`,
which the page renders as an explanatory empty state.  Nothing here makes data up.  The
calls, for whoever changes those capabilities:

============================  ====================================================
adapter                       calls
============================  ====================================================
:func:`partner_trust`         ``node.trust.summary(partner)`` → ``PartnerTrust``
:func:`reliability_trend`     ``node.trust.reliability_history(partner)`` → items with
                              ``time`` (µs) and ``reliability`` (``.mean``, ``.low``,
                              ``.high``) — **not in the engine yet**: renders Missing
:func:`evidence_timeline`     ``node.trust.history(partner)`` → ``HistoryItem``
:func:`echoes`                the ``echo`` items of ``node.trust.history(partner)``
:func:`reviews`               ``node.trust.reviews(open_only=False)``
:func:`credibility`           ``node.trust.grade(object_id)`` → ``Grade``
:func:`deconflict_runner`     ``detente.actions.deconflict.run_query(node, partner,
                              mode, ItemsSpec)`` → ``DeconflictOutcome``
:func:`checkpoint_notes`      ``node.ledger.checkpoints(limit)`` if present, else the
                              ``ledger_checkpoints`` table, read only
============================  ====================================================
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detente.errors import NotFoundError
from detente.node import Node

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


_TRUST_NEXT = ("Earned trust comes from detente.trust; until this node has it, tiers are "
               "the ones set with `detente partner add --tier` / `partner set-tier`.")


def _trust_call(node: Node, method: str, title: str) -> Callable[..., Any] | Missing:
    trust = getattr(node, "trust", None)
    fn = getattr(trust, method, None) if trust is not None else None
    if not callable(fn):
        return Missing(title, f"node.trust.{method}()", _TRUST_NEXT)
    return fn  # type: ignore[no-any-return]


def micros_time(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e6, UTC)


# -- earned trust -----------------------------------------------------------------------

def partner_trust(node: Node, partner: str) -> Any:
    """``PartnerTrust`` (tier, grade A–F, reliability, counts, credit), or Missing."""
    fn = _trust_call(node, "summary", "Earned trust is not computed on this node")
    return fn if isinstance(fn, Missing) else fn(partner)


def reliability_trend(node: Node, partner: str) -> list[TrendPoint] | Missing:
    fn = _trust_call(node, "reliability_history", "No reliability trend yet")
    if isinstance(fn, Missing):
        return Missing(fn.title, fn.needs,
                       "The trust engine reports a partner's reliability now (shown above) "
                       "but does not keep it over time yet; the chart appears once it does.")
    points = [TrendPoint(micros_time(int(i.time)), float(i.reliability.mean),
                         float(i.reliability.low), float(i.reliability.high)) for i in fn(partner)]
    return sorted(points, key=lambda p: p.time)


def evidence_timeline(node: Node, partner: str) -> list[Any] | Missing:
    """``HistoryItem`` (time µs, kind, object_id, detail), newest first."""
    fn = _trust_call(node, "history", "No evidence timeline on this node")
    return fn if isinstance(fn, Missing) else list(fn(partner))


def echoes(history: list[Any] | Missing) -> list[Any] | Missing:
    """The history items the engine flagged as echoes of our own releases."""
    if isinstance(history, Missing):
        return Missing("Echo detection is not available", history.needs, history.next_step)
    return [item for item in history if item.kind == "echo"]


def reviews(node: Node, partner: str) -> list[Any] | Missing:
    fn = _trust_call(node, "reviews", "No reviews on this node")
    if isinstance(fn, Missing):
        return fn
    return [r for r in fn(open_only=False) if r.partner == partner]


def credibility(node: Node, object_id: str) -> Any:
    """``Grade`` (credibility 1–6, reasons, source grade), a Note, or Missing."""
    fn = _trust_call(node, "grade", "Credibility is not computed on this node")
    if isinstance(fn, Missing):
        return fn
    try:
        return fn(object_id)
    except NotFoundError as exc:
        return Note(f"Not graded: {exc.message}" + (f" ({exc.hint})." if exc.hint else "."))


def credibility_order(node: Node, object_ids: Iterable[str]) -> dict[str, int] | Missing:
    """Credibility of each graded object (1 best), for ordering the inbox."""
    out = {}
    for oid in object_ids:
        grade = credibility(node, oid)
        if isinstance(grade, Missing):
            return grade
        if not isinstance(grade, Note):
            out[oid] = int(grade.credibility)
    return out


# -- private deconfliction --------------------------------------------------------------

def deconflict_runner() -> Callable[..., Any] | Missing:
    """``detente.actions.deconflict.run_query`` when the HTTP wiring exists."""
    if importlib.util.find_spec("detente.deconflict") is None:
        return Missing("Private deconfliction is not installed", "detente.deconflict")
    try:
        module: Any = importlib.import_module("detente.actions.deconflict")
    except ModuleNotFoundError as exc:
        if exc.name != "detente.actions.deconflict":
            raise
        module = None
    fn = getattr(module, "run_query", None)
    if not callable(fn):
        return Missing(
            "Queries to partners are not wired on this node",
            "detente.actions.deconflict.run_query(node, partner, mode, items)",
            "The PSI protocol exists (detente.deconflict); carrying its messages to a "
            "partner over HTTP does not. Your items were checked and encoded, nothing was sent.")
    return fn  # type: ignore[no-any-return]


# -- ledger -----------------------------------------------------------------------------

def checkpoint_notes(node: Node, limit: int = 20) -> list[str]:
    """Signed checkpoint notes of this node's log, newest first."""
    return node.ledger.checkpoints(limit)


def partner_budgets(node: Node) -> Any:
    """The deconfliction budgets this node gives partners (``Budgets``): the operator's
    table (``detente.federation.deconflict_budgets.BudgetTable``) when present, else the
    protocol's defaults."""
    try:
        module: Any = importlib.import_module("detente.federation.deconflict_budgets")
    except ModuleNotFoundError:
        from detente.deconflict import Budgets

        return Budgets()
    return module.BudgetTable(node.store.engine).budgets()
