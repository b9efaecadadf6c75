"""Witnessing a partner's log over HTTP (called by sync after each pull, and by hand).

``witness_partner(node, partner, client)``:

  (1) fetch the partner's latest checkpoint and verify it is signed by the partner's key
      (key name and origin ``detente/<partner>``);
  (2) fetch the consistency proof between it and the LARGEST checkpoint of that log we
      have seen (witnessed, gossiped or fetched by ``log verify``), keeping the partner's
      signed answer — a signed 404 ("no tree of that size") when its log was rolled back;
  (3) ``Witness.observe`` it: an answer that does not reconcile is asked again (a fresh
      request, up to :data:`ATTEMPTS`), so a transient or truncated answer never becomes
      an alarm; only then a split view, a rewritten or rolled-back history stores the
      evidence (:mod:`detente.ledger.evidence`: checkable with the partner's key alone) and
      raises the alarm that ``detente log status`` shows;
  (4) hand our cosignature back to the partner;
  (5) gossip: compare the partner's own record of the *other* logs it witnessed with ours;
      a checkpoint that cannot be reconciled with what we cosigned is equivocation by that
      log's origin (its consistency proof is fetched from the origin itself).

Hostile answers (malformed notes or proofs, bad signatures) raise a
:class:`detente.errors.DetenteError` naming what was wrong; equivocation does not raise:
it is recorded (evidence + alarm) and reported in the :class:`WitnessResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from detente.errors import DetenteError
from detente.federation.http.client import (
    PartnerClient,
    PartnerRefusedError,
    SyncError,
    open_partner_client,
)
from detente.federation.witnessing.evidence import exchange_of
from detente.federation.witnessing.names import (
    known_partner_of_origin,
    node_witness,
    origin_of,
    partner_key,
)
from detente.ledger import (
    REFUSED,
    Checkpoint,
    CheckpointError,
    Cosignature,
    EquivocationError,
    ProofError,
    ReferenceMovedError,
    SignedExchange,
    StaleCheckpointError,
    Witness,
    wire,
)
from detente.ledger.evidence import CONFLICTING_ROOT
from detente.node import Node

__all__ = ["ATTEMPTS", "WitnessResult", "fetch_checkpoint", "fetch_consistency", "reconcile",
           "witness_partner"]

#: how many times an answer that does not reconcile is asked again before it is evidence
ATTEMPTS = 3

ClientFactory = Callable[[str], AbstractContextManager[PartnerClient]]


@dataclass
class WitnessResult:
    """What one witnessing round found. ``equivocations`` are evidence ids (alarms)."""

    partner: str
    origin: str
    size: int = 0
    previous_size: int | None = None
    cosigned: bool = False
    stale: bool = False
    equivocations: list[int] = field(default_factory=list)
    gossip_checked: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.cosigned and not self.equivocations and not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "origin": self.origin, "size": self.size,
                "previous_size": self.previous_size, "cosigned": self.cosigned,
                "stale": self.stale, "equivocations": self.equivocations,
                "gossip_checked": self.gossip_checked, "problems": self.problems}




def fetch_checkpoint(node: Node, partner: str, client: PartnerClient) -> Checkpoint:
    """(1) The partner's latest checkpoint, signed by the partner's own key."""
    doc = client.get_json("/ledger/checkpoint")
    note = wire.read_note(doc, f"{partner}'s checkpoint")
    origin = origin_of(partner)
    checkpoint = Checkpoint.from_note(note, {origin: partner_key(node, partner)})
    if checkpoint.origin != origin:
        raise CheckpointError(f"{partner} sent a checkpoint of {checkpoint.origin!r}, "
                              f"not of its own log {origin!r}")
    return checkpoint


def fetch_consistency(partner: str, client: PartnerClient, old: int, new: int) -> list[bytes]:
    """(2) The consistency proof between two sizes of the partner's log (empty if equal)."""
    if old == new:
        return []
    small, large = min(old, new), max(old, new)
    doc = client.get_json("/ledger/proofs/consistency",
                   {"old": small, "new": large})
    return wire.read_consistency(doc, small, large, f"consistency proof from {partner}")


def _signed_proof(partner: str, client: PartnerClient, reference: Checkpoint | None,
                  cp: Checkpoint) -> tuple[list[bytes] | None, SignedExchange | None]:
    """(2) The consistency proof between ``reference`` and ``cp`` with the partner's signed
    answer; :data:`REFUSED` when the partner signed "no tree of that size" for the larger
    one, and the larger one is a checkpoint it signed before (a rollback)."""
    if reference is None or reference.size == cp.size:
        return [], None
    small, large = sorted((reference.size, cp.size))
    try:
        reply = client.get_reply("/ledger/proofs/consistency", {"old": small, "new": large})
    except PartnerRefusedError as exc:
        if exc.status == 404 and exc.reply is not None and large == reference.size:
            return REFUSED, exchange_of(exc.reply)
        raise
    proof = wire.read_consistency(reply.json(), small, large,
                                  f"consistency proof from {partner}")
    return proof, exchange_of(reply)


def reconcile(witness: Witness, partner: str, client: PartnerClient, cp: Checkpoint, *,
              cosign: bool) -> Cosignature | None:
    """(2)-(3) Reconcile ``cp`` with the largest checkpoint of its log seen so far and
    remember it (``cosign``: and cosign it). Raises :class:`EquivocationError` (evidence
    stored) only after :data:`ATTEMPTS` answers failed to reconcile; a fetch that keeps
    failing raises its own error, which is no evidence."""
    for attempt in range(1, ATTEMPTS + 1):
        final = attempt == ATTEMPTS
        reference = witness.largest_seen(cp.origin)
        try:
            proof, answer = _signed_proof(partner, client, reference, cp)
        except (SyncError, ProofError):
            if final:
                raise
            continue  # a truncated, unsigned or malformed answer: ask again
        problem = None if reference is None else Witness.conflict(reference, cp, proof)
        if problem is not None and problem[0] != CONFLICTING_ROOT and not final:
            continue  # ask again before anything becomes an alarm
        try:
            if cosign:
                return witness.observe(cp, proof, reference=reference, response=answer)
            witness.see(cp, proof, reference=reference, response=answer)
            return None
        except ReferenceMovedError:
            if final:
                raise
    return None  # not reached: the final attempt returns or raises


def _observe(result: WitnessResult, step: Callable[[], Cosignature | None], *,
             gossip: bool = False) -> Cosignature | None:
    """(3) Observe; the cosignature, or None. Equivocation is recorded (evidence id), not
    raised; an older consistent checkpoint is a problem of the partner's own answer, and
    harmless in gossip (another witness may simply be behind us)."""
    try:
        return step()
    except EquivocationError as exc:
        if exc.evidence_id is not None:
            result.equivocations.append(exc.evidence_id)
        result.problems.append(exc.message)
    except StaleCheckpointError as exc:
        if not gossip:
            result.stale = True
            result.problems.append(exc.message)
    return None


def witness_partner(node: Node, partner_name: str, client: PartnerClient, *,
                    clients: ClientFactory | None = None) -> WitnessResult:
    """Witness ``partner_name``'s log through ``client`` (steps (1)-(5) above).

    ``clients(name)`` opens a client to another partner for gossip checks (default: a
    signed client to that partner's URL)."""
    witness = node_witness(node)
    origin = origin_of(partner_name)
    result = WitnessResult(partner_name, origin)
    checkpoint = fetch_checkpoint(node, partner_name, client)  # (1)
    result.size = checkpoint.size
    last = witness.largest_seen(origin)
    result.previous_size = None if last is None else last.size
    cosig = _observe(result, lambda: reconcile(  # (2), (3)
        witness, partner_name, client, checkpoint, cosign=True))
    if cosig is not None:
        client.post_json("/ledger/cosignatures",  # (4)
                  {"note": checkpoint.with_cosignature(cosig).to_note()})
        result.cosigned = True
    try:
        _gossip(node, witness, partner_name, client, clients, result)  # (5)
    except DetenteError as exc:
        result.problems.append(f"gossip from {partner_name} failed: {exc.message}")
    return result


def _gossip(node: Node, witness: Witness, via: str, client: PartnerClient,
            clients: ClientFactory | None, result: WitnessResult) -> None:
    doc = client.get_json("/ledger/witnessed")
    listed = doc.get("checkpoints")
    if not isinstance(listed, list):
        raise CheckpointError(f"{via} sent a malformed list of witnessed checkpoints")
    for item in listed[:256]:
        if not isinstance(item, dict) or not isinstance(item.get("origin"), str):
            continue
        other = known_partner_of_origin(node, item["origin"])
        if other is None or other in (via, node.name):
            continue
        try:
            _check_gossip(node, witness, other, item.get("note"), clients, result)
            result.gossip_checked.append(other)
        except DetenteError as exc:
            result.problems.append(f"gossip from {via} about {other}: {exc.message}")


def _check_gossip(node: Node, witness: Witness, other: str, note: Any,
                  clients: ClientFactory | None, result: WitnessResult) -> None:
    if not isinstance(note, str):
        raise CheckpointError("gossiped checkpoint has no note")
    origin = origin_of(other)
    gossiped = Checkpoint.from_note(note, {origin: partner_key(node, other)})
    last = witness.largest_seen(origin)
    if last is None or last.same_tree(gossiped):
        return  # nothing of ours to compare with, or the same tree
    if gossiped.size == last.size:  # two roots for one size: no proof to ask for
        _observe(result, lambda: witness.observe(gossiped, (), reference=last), gossip=True)
        return
    opener = clients or (lambda name: open_partner_client(node, name))
    with opener(other) as other_client:
        _observe(result, lambda: reconcile(witness, other, other_client, gossiped,
                                           cosign=True), gossip=True)
