"""Requests for information as the CLI (``detente rfi``) and the web UI both make them: ask
named partners, ask privately only the partners that hold an observable, answer, close.

A **private RFI** (:func:`ask_private`) first runs one private set intersection with each
candidate partner over the single observable ``V`` (default intersection mode, the node's
ordinary deconfliction service, under that partner's budget):

  (1) encode ``V`` as deconfliction items (``TYPE:VALUE`` or a simple STIX pattern);
  (2) for each candidate, one PSI session over those items only; every session is recorded
      in both ledgers (mode, sizes, count, outcome — never items);
  (3) a candidate holds ``V`` when the session counts a match; a session that fails or is
      refused decides nothing, and that partner is not asked (fail closed);
  (4) one RFI note per holder, each releasable to that holder alone (a marking naming
      several holders would tell each holder who else holds ``V``: the marking's id is a
      hash of its audience), carrying ``V`` and the session's pointer.

A candidate that does not hold ``V`` receives nothing: no note, no marking, no release
row; what it saw is one deconfliction session of ``len(items)`` items with no match, like
any other. See ``docs/rfi.md`` ("Private RFIs") for what each side learns.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from detente.deconflict import Item, from_pattern, observable
from detente.deconflict.errors import EncodingError
from detente.errors import DetenteError, NotFoundError, UsageError, ValidationError
from detente.federation.exchange.local import ingest_local
from detente.federation.psi.remote import DeconflictOutcome, ItemsSpec, run_query
from detente.node import Node
from detente.partners import Partner
from detente.rfi import Rfi, RfiError, answer_note, question_note

__all__ = ["MAX_PRIVATE_ITEMS", "PRIVATE_MODES", "Asked", "PrivateAsked", "Probe",
           "answer", "ask", "ask_private", "close", "observable_items", "store_local"]

#: PSI modes a private RFI may decide in (the requester learns membership of V in both)
PRIVATE_MODES = ("intersection", "pointer")
#: an observable that encodes to more items (a CIDR block) is refused: a wide query would
#: exhaust partners' budgets and say little about who holds what
MAX_PRIVATE_ITEMS = 16
Query = Callable[[Node, str, str, ItemsSpec], DeconflictOutcome]


def store_local(node: Node, *objs: dict[str, Any]) -> None:
    """Our own objects through the one intake path (validated, stored, ledger receipts)."""
    summary = ingest_local(node, [(str(o["id"]), o) for o in objs], strict=True)
    if summary.rejected:
        raise ValidationError("; ".join(r.reason for r in summary.rejected))


@dataclass(frozen=True)
class Asked:
    id: str
    to: list[str]
    deadline: str | None


def _check_about(node: Node, about: Sequence[str]) -> None:
    for ref in about:
        if node.store.get(ref) is None:
            raise NotFoundError(f"no object {ref} in this node (about)")


def _recipient(p: Partner) -> str:
    return p.identity_id or p.name


def ask(node: Node, text: str, to: Sequence[str], *, about: Sequence[str] = (),
        marking: str = "amber", deadline: str | None = None) -> Asked:
    """Ask the named partners (and only them): one note, releasable to exactly them."""
    names = list(dict.fromkeys(n.strip() for n in to if n.strip()))
    partners = [node.partners.get(n) for n in names]
    _check_about(node, about)
    note, rel = question_note(node.identity_id, text, [_recipient(p) for p in partners],
                              about=about, marking=marking, deadline=deadline)
    store_local(node, rel, note)
    return Asked(str(note["id"]), names, note.get("x_detente_deadline"))


def observable_items(text: str) -> tuple[Item, ...]:
    """The deconfliction items of one observable: ``TYPE:VALUE`` (``ipv4-addr:198.51.100.3``,
    ``domain-name:example.org``, ``url:https://…``, ``email-addr:…``,
    ``file:SHA-256:HEX``) or a simple STIX pattern (``[domain-name:value = '…']``)."""
    value = text.strip()
    try:
        if value.startswith("["):
            items = from_pattern(value)
        else:
            kind, sep, rest = value.partition(":")
            if kind == "file":
                algo, sep, rest = rest.partition(":")
                kind = f"file:{algo}"
            if not sep or not rest:
                raise UsageError(f"observable {text!r} is not TYPE:VALUE or a STIX pattern",
                                 hint="e.g. --observable domain-name:amaq.example")
            items = observable(kind, rest)
    except EncodingError as exc:
        raise UsageError(f"observable {text!r}: {exc.message}") from None
    if len(items) > MAX_PRIVATE_ITEMS:
        raise UsageError(f"observable {text!r} stands for {len(items)} items; a private RFI "
                         f"asks about at most {MAX_PRIVATE_ITEMS}",
                         hint="name one address, not a block")
    return items


@dataclass(frozen=True)
class Probe:
    """One candidate's PSI session: whether it holds the observable (None: undecided)."""

    partner: str
    holds: bool | None
    session_id: str | None = None
    ledger_index: int | None = None
    error: str | None = None
    #: pointer mode: the handle the holder's box gave us in that session
    handle: str | None = None
    rfi: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "holds": self.holds, "session_id": self.session_id,
                "ledger_index": self.ledger_index, "error": self.error, "rfi": self.rfi}


@dataclass
class PrivateAsked:
    observable: str
    mode: str
    probes: list[Probe] = field(default_factory=list)

    @property
    def holders(self) -> list[str]:
        return [p.partner for p in self.probes if p.holds]

    @property
    def rfis(self) -> dict[str, str]:
        return {p.partner: p.rfi for p in self.probes if p.rfi}

    def to_json(self) -> dict[str, Any]:
        return {"observable": self.observable, "mode": self.mode, "holders": self.holders,
                "rfis": self.rfis, "probes": [p.to_json() for p in self.probes]}


def _probe(node: Node, name: str, mode: str, spec: ItemsSpec, query: Query) -> Probe:
    """(2)-(3) One session with ``name``; any failure decides nothing."""
    try:
        out = query(node, name, mode, spec)
    except DetenteError as exc:
        return Probe(name, None, error=exc.message)
    handle = out.pointers[0].handle if out.pointers else None
    return Probe(name, out.count > 0, out.session_id, out.ledger_index, handle=handle)


def ask_private(node: Node, text: str, observable_text: str, *, to: Sequence[str] = (),
                about: Sequence[str] = (), marking: str = "amber",
                deadline: str | None = None, mode: str = "intersection",
                query: Query | None = None) -> PrivateAsked:
    """Ask ``text`` about one observable of only the partners (among ``to``, default all)
    that hold it, decided by PSI in ``mode`` (steps (1)-(4) of the module docstring)."""
    if mode not in PRIVATE_MODES:
        raise UsageError(f"a private RFI decides in {' or '.join(PRIVATE_MODES)} mode, "
                         f"not {mode!r}")
    items = observable_items(observable_text)  # (1)
    names = list(dict.fromkeys(n.strip() for n in to if n.strip())) or \
        [p.name for p in node.partners.all()]
    partners = {n: node.partners.get(n) for n in names}
    if not partners:
        raise UsageError("no partner to ask", hint="detente partner add …")
    _check_about(node, about)
    question_note(node.identity_id, text, ["check"], about=about, marking=marking,
                  deadline=deadline)  # bad text, marking or deadline: refused before any PSI
    spec = ItemsSpec("observables", items)
    done = PrivateAsked(" OR ".join(f"{i.kind}:{i.value}" for i in items), mode)
    for name, partner in partners.items():
        probe = _probe(node, name, mode, spec, query or run_query)  # (2)-(3)
        if probe.holds:
            asked = _ask_holder(node, partner, text, done.observable, probe, about=about,
                                marking=marking, deadline=deadline)
            probe = dataclasses.replace(probe, rfi=asked)
        done.probes.append(probe)
    return done


def _ask_holder(node: Node, partner: Partner, text: str, observable_text: str, probe: Probe,
                *, about: Sequence[str], marking: str, deadline: str | None) -> str:
    """(4) The holder's own note, releasable to it alone."""
    note, rel = question_note(node.identity_id, text, [_recipient(partner)], about=about,
                              marking=marking, deadline=deadline)
    note["x_detente_observable"] = observable_text
    if probe.handle:  # pointer mode: the holder's contact desk can resolve the handle
        note["x_detente_pointer"] = {"session_id": probe.session_id, "handle": probe.handle}
    store_local(node, rel, note)
    return str(note["id"])


def answer(node: Node, rfi_id: str, offered: Sequence[str], text: str | None
           ) -> tuple[str, str]:
    """Answer a partner's RFI: (answer note id, asker's name). Every object offered must be
    one the release policy releases to the asker."""
    r = node.rfis.get(rfi_id)
    if r.ours:
        raise RfiError(f"{rfi_id} is our own RFI: partners answer it")
    asker = node.partners.get(r.note.provenance.origin)
    offered = list(dict.fromkeys(o.strip() for o in offered if o.strip()))
    for oid in offered:
        obj = node.store.get(oid)
        if obj is None:
            raise NotFoundError(f"no object {oid} in this node (offered)")
        decision = node.releaser.decide(obj, asker)
        if not decision.allowed:
            raise RfiError(f"the release policy does not release {oid} to {asker.name}: "
                           + "; ".join(decision.reasons),
                           hint=f"detente policy explain {oid} --partner {asker.name}")
    note, rel = answer_note(node.identity_id, r.note, _recipient(asker), offered, text)
    store_local(node, rel, note)
    return str(note["id"]), asker.name


def close(node: Node, rfi_id: str) -> Rfi:
    """Close one of our RFIs: a new version of its note, released to the partners asked."""
    r = node.rfis.get(rfi_id)
    store_local(node, node.rfis.closed_version(r))
    return node.rfis.get(rfi_id)
