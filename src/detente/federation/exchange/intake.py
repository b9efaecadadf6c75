"""The intake path: what a partner pushes (or what we pull from it) enters only here.

``receive(node, partner, objects, signature)``:

  (1) validate each object (STIX 2.1, one entry point: :func:`detente.stix.validate`);
  (2) refuse what a partner may not say: objects claiming to be created by this node,
      and new versions of objects this node created;
  (3) store the rest with provenance (origin = the partner, received_at, the request's
      signature) and append a ledger ``receipt`` entry for each stored version, in one
      transaction;
  (4) after commit, run the intake hooks (echo detection, corroboration) on what was
      stored: ``node.intake_hooks`` if the node has them, or ``hooks=`` here.

The TAXII inbox and the sync client (pull) both call it, so they behave identically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from detente.errors import DetenteError
from detente.ledger import Entry
from detente.node import Node
from detente.stix.model import StixObject
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.validate import validate
from detente.store.base import LOCAL, Outcome, Provenance, PutResult

__all__ = ["Detail", "IntakeHook", "IntakeResult", "Received", "receive"]


@dataclass(frozen=True, slots=True)
class Detail:
    """One TAXII status detail: id, version and a message."""

    id: str
    version: str
    message: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"id": self.id, "version": self.version}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class Received:
    """A version stored by this intake (what the hooks see)."""

    object: StixObject
    date_added: int


@dataclass
class IntakeResult:
    partner: str
    received_at: int
    successes: list[Detail] = field(default_factory=list)
    failures: list[Detail] = field(default_factory=list)
    stored: list[Received] = field(default_factory=list)
    duplicates: int = 0

    @property
    def total(self) -> int:
        return len(self.successes) + len(self.failures)


#: runs after the intake transaction commits, with what it stored (echo detection plugs in)
IntakeHook = Callable[[Node, str, Sequence[Received]], None]


def receive(node: Node, partner: str, objects: Sequence[Any], signature: str | None,
            *, hooks: Sequence[IntakeHook] | None = None) -> IntakeResult:
    """Validate, store with provenance and record receipts; never raises for bad objects."""
    node.partners.get(partner)  # a removed partner cannot push
    result = IntakeResult(partner, now_micros())
    valid = _validated(objects, result)                       # (1)
    valid = _admissible(node, valid, result)                  # (2)
    if valid:
        _store(node, partner, valid, signature, result)       # (3)
    if result.stored:
        chosen = hooks if hooks is not None else getattr(node, "intake_hooks", ())
        for hook in chosen:                                   # (4)
            hook(node, partner, result.stored)
    return result


def _guess(obj: Any) -> tuple[str, str]:
    """id and version of a (possibly invalid) object, for the status resource."""
    if not isinstance(obj, dict):
        return "unknown", ""
    oid = obj.get("id") if isinstance(obj.get("id"), str) else "unknown"
    version = obj.get("modified") or obj.get("created") or ""
    return str(oid)[:300], str(version)[:64] if isinstance(version, str) else ""


def _validated(objects: Sequence[Any], result: IntakeResult) -> list[StixObject]:
    valid: list[StixObject] = []
    for obj in objects:
        try:
            valid.append(validate(obj))
        except DetenteError as exc:
            oid, version = _guess(obj)
            result.failures.append(Detail(oid, version, exc.message))
        except (ValueError, TypeError, KeyError, RecursionError):
            oid, version = _guess(obj)
            result.failures.append(Detail(oid, version, "object could not be validated"))
    return valid


def _version_of(obj: StixObject, fallback: int) -> str:
    body = obj.body
    value = body.get("modified") or body.get("created")
    return value if isinstance(value, str) else format_micros(fallback)


def _admissible(node: Node, valid: list[StixObject], result: IntakeResult) -> list[StixObject]:
    ours = node.identity_id
    local = held_ids(node, {o.id for o in valid}, (LOCAL,))
    kept: list[StixObject] = []
    for obj in valid:
        if obj.created_by_ref == ours:
            reason = f"{obj.id} claims to be created by this node ({ours}); refused"
        elif obj.id in local:
            reason = f"{obj.id} was created on this node: partners cannot add versions of it"
        else:
            kept.append(obj)
            continue
        result.failures.append(Detail(obj.id, _version_of(obj, result.received_at), reason))
    return kept


def held_ids(node: Node, ids: set[str], origins: tuple[str, ...] = ()) -> set[str]:
    """Those of ``ids`` the store holds any version of (from ``origins`` only, if given)."""
    return node.store.held(ids, origins)


def _store(node: Node, partner: str, valid: list[StixObject], signature: str | None,
           result: IntakeResult) -> None:
    prov = Provenance(origin=partner, origin_identity=node.partners.get(partner).identity_id,
                      received_at=result.received_at, signature=signature)
    with node.store.transaction() as conn:
        outcomes = node.store.put_many(valid, prov, conn=conn)
        entries = [_receipt(partner, valid[r.index]) for r in outcomes
                   if r.outcome is Outcome.STORED]
        if entries:
            node.ledger.append_many(entries, conn)
    for r in outcomes:
        _record(result, valid[r.index], r)


def _record(result: IntakeResult, obj: StixObject, r: PutResult) -> None:
    version = _version_of(obj, r.date_added or result.received_at)
    if r.outcome is Outcome.STORED:
        assert r.date_added is not None
        result.stored.append(Received(obj, r.date_added))
        result.successes.append(Detail(obj.id, version))
    elif r.outcome is Outcome.DUPLICATE:
        result.duplicates += 1
        result.successes.append(Detail(obj.id, version, "already stored"))
    else:
        result.failures.append(Detail(obj.id, version, r.reason or "refused by the store"))


def _receipt(partner: str, obj: StixObject) -> Entry:
    return Entry(kind="receipt", time=datetime.now(UTC), partner=partner, object_id=obj.id,
                 object_version=obj.version or None,
                 view_hash=hashlib.sha256(obj.raw).hexdigest())
