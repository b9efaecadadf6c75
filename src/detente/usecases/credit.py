"""Credit you can check: per partner, what it gave us, each item with the ledger entry
that proves it (``detente credit``).

Four kinds of credit, each from the package that owns it: **first reports** and
**independent corroborations** and **confirmations** (the trust engine's record: a partner's
report that was first on a claim, later corroborated by an independent source or confirmed
by our analysts), **RFI answers** to our questions (``detente.rfi``) and **proven priority**
(partners' claims verified here, ``detente.priority``). The proofs are ledger entries about
that partner — the ``receipt`` of each credited report, the ``rfi-answer`` and ``priority``
entries — which the partner reads in full from our ledger (``/ledger/entries`` shows every
partner its own entries) and checks against our signed checkpoints like any other entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from detente.node import Node

__all__ = ["CreditLine", "credit_report"]

#: ledger leaves read per step when collecting proofs (bounded memory at any size)
_CHUNK = 20_000


@dataclass
class CreditLine:
    partner: str
    first_reports: int
    corroborated: int
    confirmed: int
    rfi_answers: int
    proven_priority: int
    value: float
    #: (what, object id, ledger index) for every credited item found in the ledger
    proofs: list[tuple[str, str, int]] = field(default_factory=list)
    #: answers offering an object of the partner's that was later confirmed
    rfi_answers_confirmed: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "first_reports": self.first_reports,
                "corroborated": self.corroborated, "confirmed": self.confirmed,
                "rfi_answers": self.rfi_answers,
                "rfi_answers_confirmed": self.rfi_answers_confirmed,
                "proven_priority": self.proven_priority,
                "value": round(self.value, 3),
                "proofs": [{"what": w, "object_id": o, "ledger_index": i}
                           for w, o, i in self.proofs]}


def credit_report(node: Node, partner: str | None = None, *, proofs: bool = True,
                  on_progress: Callable[[int, int], None] | None = None) -> list[CreditLine]:
    """One line per partner (or for ``partner``), with the ledger entries proving it."""
    names = [partner] if partner else [p.name for p in node.partners.all()]
    if partner:
        node.partners.get(partner)  # an unknown name is a clear error
    lines: dict[str, CreditLine] = {}
    credited: dict[str, set[str]] = {}
    for name in names:
        c = node.trust.credit(name)
        answers = node.rfis.credited(name)
        lines[name] = CreditLine(name, c.first_reports, c.corroborated, c.confirmed,
                                 len(answers), node.claims.proven(name), c.value)
        credited[name] = set(c.credited_ids)
        lines[name].proofs += [("rfi-answer", a, i) for a, _rfi, _p, i in answers]
        lines[name].rfi_answers_confirmed = _confirmed_answers(node, name, answers)
    if proofs:
        _receipts(node, credited, lines, on_progress)
    return list(lines.values())


def _confirmed_answers(node: Node, partner: str,
                       answers: list[tuple[str, str, str, int]]) -> int:
    """How many of ``answers`` offered one of the partner's objects that was confirmed
    since (the answer note's ``object_refs`` after the question)."""
    offered: dict[str, list[str]] = {}
    for answer_id, _rfi, _p, _i in answers:
        note = node.store.get(answer_id)
        refs = note.body.get("object_refs", []) if note is not None else []
        offered[answer_id] = [r for r in refs[1:] if isinstance(r, str)]
    confirmed = node.trust.confirmed(partner, (r for refs in offered.values() for r in refs))
    return sum(1 for refs in offered.values() if confirmed.intersection(refs))


def _receipts(node: Node, credited: dict[str, set[str]], lines: dict[str, CreditLine],
              on_progress: Callable[[int, int], None] | None) -> None:
    """Find the receipt of every credited first report and every priority entry."""
    size = node.ledger.size()
    wanted = {b'"kind":"receipt"', b'"kind":"priority"'}
    for start in range(0, size, _CHUNK):
        for i, body in node.ledger.canonical_entries(start, min(size, start + _CHUNK)):
            if not any(w in body for w in wanted):
                continue
            doc = orjson.loads(body)
            who, oid = doc.get("partner"), doc.get("object_id")
            if who not in lines or not isinstance(oid, str):
                continue
            if doc["kind"] == "priority":
                lines[who].proofs.append(("priority", oid, i))
            elif oid in credited[who]:
                lines[who].proofs.append(("first report", oid, i))
                credited[who].discard(oid)  # its first receipt is the proof
        if on_progress is not None:
            on_progress(min(size, start + _CHUNK), size)
