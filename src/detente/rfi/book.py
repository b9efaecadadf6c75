"""RFI notes: building questions and answers, reading them back, crediting answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from detente.errors import NotFoundError, UsageError, ValidationError
from detente.ledger import Entry, Ledger
from detente.policy.releasability import releasability_marking
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.vocab import TLP_2_0_IDS
from detente.store.base import LOCAL, Query, Store, StoredObject
from detente.store.engine import writer

__all__ = ["ANSWER_LABEL", "QUESTION_LABEL", "Rfi", "RfiBook", "RfiError", "answer_note",
           "metadata", "question_note"]

QUESTION_LABEL = "detente-rfi"
ANSWER_LABEL = "detente-rfi-answer"
MAX_TEXT = 8000

metadata = sa.MetaData()

credits = sa.Table(
    "rfi_credits", metadata,
    sa.Column("answer_id", sa.Text, primary_key=True),
    sa.Column("rfi_id", sa.Text, nullable=False),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)


class RfiError(ValidationError):
    """An RFI or an answer cannot be made as asked."""


def _text(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise UsageError(f"the {what} is empty")
    if len(text) > MAX_TEXT:
        raise UsageError(f"the {what} is {len(text)} characters; at most {MAX_TEXT}")
    return text


def _deadline(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"deadline {value!r} is not a date or time (e.g. 2026-12-31 or "
                       "2026-12-31T18:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stix_now() -> str:
    """Now as a STIX timestamp to the millisecond."""
    return format_micros(now_micros())[:23] + "Z"


def _marking(level: str) -> str:
    mid = TLP_2_0_IDS.get(level.lower().removeprefix("tlp:"))
    if mid is None:
        raise UsageError(f"marking {level!r} is not a TLP level",
                       hint="one of " + ", ".join(f"TLP:{k.upper()}" for k in TLP_2_0_IDS))
    return mid


def question_note(author: str, text: str, to: Sequence[str], *, about: Sequence[str] = (),
                  marking: str = "amber", deadline: str | None = None
                  ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(note, releasability marking) of a new RFI from ``author`` to the identities or
    partner names ``to``."""
    if not to:
        raise RfiError("an RFI names the partners it asks (--to)")
    now = _stix_now()
    rel = releasability_marking(releasable_to=sorted(set(to)), onward="denied",
                                created_by_ref=author)
    note: dict[str, Any] = {
        "type": "note", "spec_version": "2.1", "id": f"note--{uuid.uuid4()}",
        "created": now, "modified": now, "created_by_ref": author,
        "abstract": "Request for information", "content": _text(text, "question"),
        "object_refs": list(dict.fromkeys(about)) or [author], "labels": [QUESTION_LABEL],
        "object_marking_refs": [_marking(marking), rel["id"]],
    }
    when = _deadline(deadline)
    if when:
        note["x_detente_deadline"] = when
    return note, rel


def answer_note(author: str, rfi: StoredObject, asker: str, offered: Sequence[str],
                text: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(note, marking) of an answer to ``rfi`` for the partner ``asker``."""
    if not offered and not (text or "").strip():
        raise RfiError("an answer offers objects (--with ID) or text (--text), or both")
    now = _stix_now()
    rel = releasability_marking(releasable_to=[asker], onward="denied", created_by_ref=author)
    levels = [m for m in rfi.body.get("object_marking_refs", []) if m in
              TLP_2_0_IDS.values()]
    note: dict[str, Any] = {
        "type": "note", "spec_version": "2.1", "id": f"note--{uuid.uuid4()}",
        "created": now, "modified": now, "created_by_ref": author,
        "abstract": "Answer to a request for information",
        "content": _text(text or "", "answer") if (text or "").strip() else
        f"{len(offered)} object(s) offered",
        "object_refs": [rfi.id, *dict.fromkeys(offered)], "labels": [ANSWER_LABEL],
        "object_marking_refs": [levels[0] if levels else TLP_2_0_IDS["amber"], rel["id"]],
    }
    return note, rel


@dataclass
class Rfi:
    """One RFI as this node sees it (ours or a partner's), with the answers it holds."""

    note: StoredObject
    answers: list[StoredObject] = field(default_factory=list)

    @property
    def ours(self) -> bool:
        return self.note.provenance.origin == LOCAL

    @property
    def body(self) -> dict[str, Any]:
        return self.note.body

    @property
    def closed(self) -> bool:
        return self.body.get("x_detente_status") == "closed"

    @property
    def deadline(self) -> str | None:
        value = self.body.get("x_detente_deadline")
        return value if isinstance(value, str) else None

    @property
    def observable(self) -> str | None:
        """A private RFI's observable (the canonical items its holders were asked about)."""
        value = self.body.get("x_detente_observable")
        return value if isinstance(value, str) else None

    @property
    def overdue(self) -> bool:
        return bool(self.deadline and not self.closed and
                    self.deadline < datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self) -> dict[str, Any]:
        b = self.body
        return {"id": self.note.id, "from": self.note.provenance.origin,
                "question": b.get("content"), "about": b.get("object_refs", []),
                "deadline": self.deadline, "closed": self.closed, "overdue": self.overdue,
                "private_observable": self.observable,
                "asked": b.get("created"),
                "answers": [{"id": a.id, "from": a.provenance.origin,
                             "text": a.body.get("content"),
                             "offered": a.body.get("object_refs", [])[1:]}
                            for a in self.answers]}


def _labelled(obj: StoredObject, label: str) -> bool:
    labels = obj.body.get("labels")
    return isinstance(labels, list) and label in labels


class RfiBook:
    def __init__(self, store: Store, ledger: Ledger) -> None:
        self.store = store
        self.ledger = ledger

    def _notes(self) -> list[StoredObject]:
        return list(self.store.iter_all(Query(types=("note",))))

    def all(self) -> list[Rfi]:
        """Every RFI held here, ours and partners', oldest first, with their answers."""
        notes = self._notes()
        rfis = {n.id: Rfi(n) for n in notes if _labelled(n, QUESTION_LABEL)}
        for n in notes:
            refs = n.body.get("object_refs") or []
            if _labelled(n, ANSWER_LABEL) and refs and refs[0] in rfis:
                rfis[refs[0]].answers.append(n)
        return sorted(rfis.values(), key=lambda r: str(r.body.get("created")))

    def get(self, rfi_id: str) -> Rfi:
        for r in self.all():
            if r.note.id == rfi_id:
                return r
        raise NotFoundError(f"no RFI {rfi_id} on this node", hint="detente rfi list")

    def closed_version(self, rfi: Rfi) -> dict[str, Any]:
        """The next version of our RFI, closed."""
        if not rfi.ours:
            raise RfiError(f"{rfi.note.id} is {rfi.note.provenance.origin}'s RFI: only its "
                           "author closes it")
        if rfi.closed:
            raise RfiError(f"{rfi.note.id} is already closed")
        body = dict(rfi.body)
        body["modified"] = _stix_now()
        body["x_detente_status"] = "closed"
        return body

    def credit_answers(self, objects: Iterable[StoredObject]) -> list[int]:
        """Credit, once, every answer among ``objects`` that a partner gave to one of our
        RFIs: a ``rfi-answer`` ledger entry about that partner. Returns the ledger indices."""
        answers = [o for o in objects if o.type == "note" and o.provenance.origin != LOCAL
                   and _labelled(o, ANSWER_LABEL)]
        out: list[int] = []
        for a in answers:
            refs = a.body.get("object_refs") or []
            question = self.store.get(refs[0]) if refs else None
            if question is None or question.provenance.origin != LOCAL or \
                    not _labelled(question, QUESTION_LABEL):
                continue
            with writer(self.store.engine).begin() as conn:
                if conn.execute(sa.select(credits.c.answer_id).where(
                        credits.c.answer_id == a.id)).first() is not None:
                    continue
                index = self.ledger.append(Entry(
                    kind="rfi-answer", time=datetime.now(UTC), partner=a.provenance.origin,
                    object_id=a.id, detail=f"answer to {question.id}"), conn)
                conn.execute(credits.insert().values(
                    answer_id=a.id, rfi_id=question.id, partner=a.provenance.origin,
                    ledger_index=index, at=now_micros()))
            out.append(index)
        return out

    def credited(self, partner: str | None = None) -> list[tuple[str, str, str, int]]:
        """(answer id, RFI id, partner, ledger index) of every credited answer."""
        c = credits.c
        stmt = sa.select(c.answer_id, c.rfi_id, c.partner, c.ledger_index).order_by(c.at)
        if partner is not None:
            stmt = stmt.where(c.partner == partner)
        with self.store.engine.connect() as conn:
            return [(r.answer_id, r.rfi_id, r.partner, int(r.ledger_index))
                    for r in conn.execute(stmt)]
