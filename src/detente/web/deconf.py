"""The deconfliction page: encode the analyst's items, run a query with a partner or a
coalition run with several, and show the budgets in play (what we give partners, what we
used of theirs today)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from detente.deconflict import (
    Budget,
    BudgetExceeded,
    Item,
    Mode,
    SqlBudgetBook,
    from_pattern,
    name,
    observable,
)
from detente.deconflict.items import NAME_KINDS
from detente.errors import DetenteError, ValidationError
from detente.node import Node
from detente.store.engine import writer
from detente.web import data
from detente.web.facts import ledger_tail

__all__ = [
    "ITEM_KINDS",
    "MODES",
    "BudgetRow",
    "CoalitionAnswer",
    "QueryAnswer",
    "budget_rows",
    "coalition_runner",
    "encode_items",
    "run",
    "run_coalition",
]

MAX_LINES = 10_000
OWN = "own-observables"
OBSERVABLE_KINDS = ("ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr",
                    "file:SHA-256", "file:MD5", "stix-pattern")
ITEM_KINDS = (*OBSERVABLE_KINDS, *sorted(NAME_KINDS), OWN)

MODES = {
    Mode.INTERSECTION.value: "intersection — you learn which of your items the partner holds",
    Mode.CARDINALITY.value: "cardinality — you learn only how many are shared",
    Mode.POINTER.value: "pointer — for each match, whom to call (not which item)",
    Mode.MUTUAL.value: "mutual — both sides learn the shared items",
}


@dataclass(frozen=True, slots=True)
class QueryAnswer:
    sent: int
    partner_size: int | None
    count: int
    matches: tuple[str, ...] | None
    pointers: tuple[str, ...] | None
    ledger_index: int | None


@dataclass(frozen=True, slots=True)
class BudgetRow:
    partner: str
    given: Budget
    used_by_them: int
    items_by_them: int
    asked_by_us: int
    refused_to_us: int


def _one(kind: str, line: str) -> tuple[Item, ...]:
    if kind == "stix-pattern":
        return from_pattern(line)
    if kind in NAME_KINDS:
        return (name(kind, line),)
    return observable(kind, line)


def encode_items(kind: str, text: str) -> dict[Item, str]:
    """Items (each with the line it came from), one or a few (small CIDR) per line."""
    if kind not in ITEM_KINDS or kind == OWN:
        raise ValidationError(f"unknown item kind {kind!r}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValidationError("no items given", hint="one value per line")
    if len(lines) > MAX_LINES:
        raise ValidationError(f"{len(lines)} lines is more than {MAX_LINES}")
    items: dict[Item, str] = {}
    for n, line in enumerate(lines, 1):
        try:
            for item in _one(kind, line):
                items.setdefault(item, line)
        except DetenteError as exc:
            raise ValidationError(f"line {n}: {exc.message}", hint=exc.hint) from None
    return items


def _spec(node: Node, kind: str, text: str) -> Any:
    from detente.federation.psi.remote import ItemsSpec

    if kind == OWN:
        return ItemsSpec.observables(node)
    items = encode_items(kind, text)
    return ItemsSpec("names" if kind in NAME_KINDS else "observables", tuple(items), items)


def run(node: Node, partner: str, mode: str, kind: str,
        text: str) -> tuple[QueryAnswer, int]:
    """(the answer, number of items encoded)."""
    if mode not in MODES:
        raise ValidationError(f"unknown mode {mode!r}")
    node.partners.get(partner)  # NotFoundError for an unknown partner
    runner = data.deconflict_runner()
    spec = _spec(node, kind, text)
    out = runner(node, partner, mode, spec)
    pointers = None if out.pointers is None else tuple(
        f"{p.handle} — contact {p.contact}" for p in out.pointers)
    return QueryAnswer(out.sent, out.responder_size, out.count, out.matches, pointers,
                       out.ledger_index), len(spec.items)


def refusal_text(exc: DetenteError) -> str:
    if isinstance(exc, BudgetExceeded):
        return f"Refused by the partner's budget ({exc.reason}): {exc.message}"
    return exc.message


def _our_sessions_today(node: Node) -> dict[str, tuple[int, int]]:
    """Per partner: (queries we made today, of which refused), from our ledger."""
    today = datetime.now(UTC).date().isoformat()
    out: dict[str, tuple[int, int]] = {}
    for _i, e in ledger_tail(node):
        if e.kind != "deconfliction" or not e.partner or not str(e.time).startswith(today):
            continue
        try:
            doc = orjson.loads(e.detail or "{}")
        except orjson.JSONDecodeError:
            continue
        if isinstance(doc, dict) and doc.get("role") == "requester":
            asked, refused = out.get(e.partner, (0, 0))
            out[e.partner] = (asked + 1, refused + int(doc.get("outcome") == "refused"))
    return out


def budget_rows(node: Node) -> list[BudgetRow]:
    budgets = data.partner_budgets(node)
    book = SqlBudgetBook(writer(node.store.engine))
    today = datetime.now(UTC).date()
    ours = _our_sessions_today(node)
    rows = []
    for p in node.partners.all():
        used = book.usage(p.name, today)
        asked, refused = ours.get(p.name, (0, 0))
        rows.append(BudgetRow(p.name, budgets.for_partner(p.name), used.queries, used.items,
                              asked, refused))
    return rows


@dataclass(frozen=True, slots=True)
class CoalitionAnswer:
    run_id: str
    participants: tuple[str, ...]
    reconstructor: str
    reconstructor_holds_items: bool
    threshold: int
    sent: int
    matched: tuple[str, ...]
    pointers: dict[str, list[str]]
    ledger_index: int | None
    seconds: float


def coalition_runner() -> Any:
    """The initiator of a coalition run over signed HTTP (tests replace it)."""
    from detente.federation.psi.coalition import run_coalition as runner

    return runner


def run_coalition(node: Node, partners: list[str], threshold: str, kind: str, text: str,
                  pointer: bool, reconstructor: str | None = None) -> CoalitionAnswer:
    """One coalition run with ``partners`` (docs/deconfliction.md, Coalition
    deconfliction): which of our items at least ``threshold`` of us hold. ``reconstructor``
    is a partner taking part with no items (required at T >= 3)."""
    from detente.federation.psi.coalition import check_roles

    if not partners:
        raise ValidationError("choose at least one partner to run with")
    for p in partners:
        node.partners.get(p)
    if not threshold.isdigit() or not 2 <= int(threshold) <= len(partners) + 1:
        raise ValidationError(f"threshold must be a number from 2 to {len(partners) + 1}")
    check_roles(node, sorted(partners), int(threshold), reconstructor)
    spec = _spec(node, kind, text)
    out = coalition_runner()(node, sorted(partners), int(threshold), spec,
                             mode="pointer" if pointer else "membership",
                             reconstructor=reconstructor)
    pointers = {label: [f"{p.node}: {p.contact} (handle {p.handle})" for p in found]
                for label, found in out.pointers.items()}
    return CoalitionAnswer(out.spec.run_id.hex(), tuple(out.spec.participants),
                           out.spec.reconstructor, out.spec.holding_reconstructor,
                           int(threshold), len(spec.items), tuple(out.matched), pointers,
                           out.ledger_index, out.seconds)
