"""Shared helpers for the deconfliction tests: run whole sessions over bytes."""

from __future__ import annotations

from collections.abc import Iterable

from detente.deconflict import (
    Budget,
    Budgets,
    Item,
    MemoryBudgetBook,
    Mode,
    OpeningMessage,
    Pointer,
    QueryMessage,
    Requester,
    Responder,
    ResponseMessage,
    Result,
    RevealMessage,
)

GENEROUS = Budgets(Budget(items_per_query=10_000, queries_per_day=10_000, max_set_ratio=1e9))


def items(values: Iterable[str], kind: str = "domain-name") -> list[Item]:
    return [Item(kind, v) for v in values]


def pointers_for(responder_items: Iterable[Item]) -> dict[Item, Pointer]:
    return {i: Pointer(f"op-{i.value}", "duty-officer@fr.example") for i in responder_items}


def responder(responder_items: list[Item], **kwargs: object) -> Responder:
    kwargs.setdefault("book", MemoryBudgetBook())
    kwargs.setdefault("budgets", GENEROUS)
    kwargs.setdefault("pointers", pointers_for(responder_items))
    return Responder(responder_items, **kwargs)  # type: ignore[arg-type]


def run_session(
    req_items: list[Item], resp: Responder, mode: Mode, partner: str = "us"
) -> tuple[Result, Result | None, Requester]:
    """One session with every message serialised and parsed; returns (requester result,
    responder result in the modes with a reveal, the requester)."""
    req = Requester(req_items, mode=mode, partner="fr")
    query = QueryMessage.from_bytes(req.start().to_bytes())
    response = ResponseMessage.from_bytes(resp.answer(query, partner=partner).to_bytes())
    if mode is Mode.INTERSECTION:
        return req.finish(response), None, req
    reveal = RevealMessage.from_bytes(req.reveal(response).to_bytes())
    theirs, opening = resp.conclude(reveal, partner=partner)
    return req.conclude(OpeningMessage.from_bytes(opening.to_bytes())), theirs, req
