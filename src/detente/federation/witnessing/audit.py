"""``detente log verify``: check a partner's log against what we witnessed and received.

``verify_partner_log(node, partner, client)``:

  (1) fetch the partner's latest checkpoint, signed by its key; verify the cosignatures
      it carries from witnesses we know;
  (2) check it is consistent with the LARGEST checkpoint of that log we have seen
      (witnessed, gossiped, or fetched by an earlier ``log verify``), and remember it when it
      is larger: a smaller one must be proved a prefix of the larger, so a log that truncated
      its unwitnessed tail fails here. An answer that does not reconcile is asked again
      before it becomes evidence (the partner's signed answers, checkable by anyone with its
      key: ``detente log check-evidence``) and raises the alarm;
  (3) fetch every leaf up to the checkpoint (ours in full, others' as hashes), check each
      entry of ours hashes to its leaf, and recompute the root from all leaves;
  (4) check the inclusion proof of every ``release`` entry addressed to us, and of every
      ``release-batch`` entry addressed to us, whose release entries we then fetch
      (``/ledger/batch``) and check against the batch's root and size (the two-level proof
      of :mod:`detente.ledger.batch`);
  (5) match every object version we hold from that partner (``origin = partner``) to a
      release entry: the entry's ``view_hash`` is SHA-256 of the exact bytes the partner
      served, and we compare it with SHA-256 of the bytes we stored (``StoredObject.raw``);
  (6) check the **credit** the partner's log gives us, entry by entry (each is one of the
      leaves of step 3, so it is in the checkpointed tree): a ``receipt`` must name a
      version we released to that partner with the very view hash we served (our release
      records), an ``rfi-answer`` one of our own answer notes, a ``priority`` entry the
      commitment of one of our claims. What matches is tallied (``credit``); anything else
      is a problem — a receipt of something we never sent could later be used against us.
      ``detente credit`` at the partner lists the ledger index of each proof, so the
      figures it shows us can be checked against this tally. A receipt of a release made
      outside the release path (a revealed claim) matches our plain ``release`` entry.

On (5): intake re-serialises what it validates (``orjson.dumps`` of the parsed object),
and the release path serves ``orjson.dumps`` of the view, so for views made by detente the
stored bytes equal the served bytes and the hashes compare directly (tests pin it). A
version whose bytes differ is reported as a *mismatch*, one with no release entry as
*unaccounted* (the partner's log does not show it ever sent it).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from detente.federation.http.client import PartnerClient
from detente.federation.witnessing.names import node_witness, origin_of, witness_keys
from detente.federation.witnessing.witness import fetch_checkpoint, reconcile
from detente.ledger import (
    BATCH_KIND,
    Checkpoint,
    Entry,
    EquivocationError,
    ProofError,
    verify_inclusion,
    wire,
)
from detente.ledger.hashing import fold_right, node_hash
from detente.node import Node
from detente.release import iter_release_records
from detente.store.base import LOCAL, Query

__all__ = ["LogVerification", "verify_partner_log"]

_PAGE = 1000


@dataclass
class LogVerification:
    partner: str
    origin: str
    size: int = 0
    witnessed_size: int | None = None
    consistent: bool | None = None
    root_matches: bool = False
    cosigned_by: list[str] = field(default_factory=list)
    our_entries: int = 0
    releases_included: int = 0
    received: int = 0
    matched: int = 0
    mismatched: list[str] = field(default_factory=list)
    unaccounted: list[str] = field(default_factory=list)
    equivocations: list[int] = field(default_factory=list)
    #: (6) entries of the partner's log crediting us, per kind, each checked
    credit: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (self.root_matches and self.consistent is not False and not self.problems
                and not self.mismatched and not self.unaccounted)

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "origin": self.origin, "ok": self.ok,
                "size": self.size, "witnessed_size": self.witnessed_size,
                "consistent": self.consistent, "root_matches": self.root_matches,
                "cosigned_by": self.cosigned_by, "our_entries": self.our_entries,
                "releases_included": self.releases_included, "received": self.received,
                "matched": self.matched, "mismatched": self.mismatched,
                "unaccounted": self.unaccounted, "equivocations": self.equivocations,
                "credit": self.credit, "problems": self.problems}


def _root(leaves: list[bytes]) -> bytes:
    """RFC 9162 root of the leaf hashes, from the right-edge frontier (O(log n) memory)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    stack: list[bytes] = []
    for seq, h in enumerate(leaves):
        s = seq
        while s & 1:
            h = node_hash(stack.pop(), h)
            s >>= 1
        stack.append(h)
    return fold_right(stack)


def _check_consistency(node: Node, partner: str, client: PartnerClient, cp: Checkpoint,
                       out: LogVerification) -> None:
    """(2) Against the largest checkpoint seen; a failure becomes evidence."""
    witness = node_witness(node)
    largest = witness.largest_seen(cp.origin)
    out.witnessed_size = None if largest is None else largest.size
    try:
        reconcile(witness, partner, client, cp, cosign=False)
    except EquivocationError as eq:
        out.consistent = False
        out.problems.append(f"not consistent with the largest checkpoint seen: {eq.message}")
        out.equivocations.extend([eq.evidence_id] if eq.evidence_id is not None else [])
        return
    if largest is not None:
        out.consistent = True


def _leaves(partner: str, client: PartnerClient, size: int) -> Iterator[tuple[int, bytes, Any]]:
    """(3) Every leaf [0, size) as served: index, leaf hash, entry text or None."""
    start = 0
    while start < size:
        doc = client.get_json("/ledger/entries",
                       {"start": start, "end": size, "limit": _PAGE})
        for row in wire.read_entries(doc, start, partner):
            yield row.index, row.leaf_hash, row.entry
            start += 1


def _our_entries(partner: str, client: PartnerClient, cp: Checkpoint,
                 out: LogVerification) -> list[tuple[int, Entry]]:
    leaves: list[bytes] = []
    ours: list[tuple[int, Entry]] = []
    for index, leaf, text in _leaves(partner, client, cp.size):
        leaves.append(leaf)
        if text is None:
            continue
        entry = Entry.from_json(text.encode())
        if entry.leaf_hash != leaf:
            raise ProofError(f"entry {index} of {partner} does not hash to its leaf")
        ours.append((index, entry))
    out.root_matches = _root(leaves) == cp.root
    if not out.root_matches:
        out.problems.append(f"the leaves {partner} served do not make its checkpoint's root")
    out.our_entries = len(ours)
    return ours


def _check_inclusion(partner: str, client: PartnerClient, cp: Checkpoint, index: int,
                     entry: Entry) -> None:
    """(4) One release entry is in the checkpointed tree."""
    doc = client.get_json("/ledger/proofs/inclusion",
                   {"index": index, "size": cp.size})
    proof = wire.read_inclusion(doc, index, cp.size, f"inclusion proof of leaf {index}")
    verify_inclusion(entry.leaf_hash, index, cp.size, proof, cp.root)


def _batch_releases(partner: str, client: PartnerClient, index: int, batch: Entry
                    ) -> list[Entry]:
    """(4) The release entries under one of our release batches, checked against it."""
    doc = client.get_json("/ledger/batch", {"index": index})
    return wire.read_batch(doc, index, batch, f"release batch {index} of {partner}")


def _check_received(node: Node, partner: str, releases: list[Entry],
                    out: LogVerification) -> None:
    """(5) Every version we hold from the partner has a release entry with its hash."""
    served: dict[tuple[str, str | None], set[str]] = {}
    for e in releases:
        if e.object_id is not None and e.view_hash is not None:
            served.setdefault((e.object_id, e.object_version), set()).add(e.view_hash)
    query = Query(versions=("all",), origins=(partner,))
    for obj in node.store.iter_all(query, page_size=_PAGE):
        out.received += 1
        hashes = served.get((obj.id, obj.version or None))
        label = f"{obj.id} {obj.version}".strip()
        if hashes is None:
            out.unaccounted.append(label)
        elif hashlib.sha256(obj.raw).hexdigest() in hashes:
            out.matched += 1
        else:
            out.mismatched.append(label)


CREDIT_KINDS = ("receipt", "rfi-answer", "priority")
_NEVER_SENT = "records a receipt of a version we never released to it with that view hash"
_SCAN = 20_000


def _credited(node: Node, entry: Entry) -> str | None:
    """(6) Why one ``rfi-answer`` or ``priority`` entry about us does not match what we
    did (None: it does).  Receipts are matched in bulk by :func:`_check_credit`."""
    oid = entry.object_id
    if oid is None:
        return "names no object"
    if entry.kind == "rfi-answer":
        obj = node.store.get(oid)
        ours = obj is not None and obj.provenance.origin == LOCAL and obj.type == "note"
        return None if ours else "credits an answer that is not one of our notes"
    # by commitment, not version: a claim covers content, and the version revealed may be a
    # later one (declassified: new markings, new `modified`, same committed content)
    try:
        said = orjson.loads(entry.detail or "{}").get("commitment")
    except (orjson.JSONDecodeError, AttributeError):
        said = None
    made = {c.commitment.hex() for c in node.claims.all() if c.object_id == oid}
    return None if said in made else "certifies a priority claim we never made"


_Sent = set[tuple[str | None, str | None, str | None]]


def _released_to(node: Node, partner: str) -> _Sent:
    """(object, version, view hash) of every release row to ``partner``: one streaming
    read of its rows (class views not derived), however many receipts there are."""
    return {(r.object_id, r.version or None, r.view_hash) for r in iter_release_records(
        node.store.engine, partner=partner, derive=False)}


def _logged_releases(node: Node, partner: str, receipts: list[tuple[int, Entry]]) -> _Sent:
    """(object, version, view hash) of our plain ``release`` entries to ``partner`` about
    the objects of ``receipts``: releases made outside the release path (a claim revealed,
    ``detente claim reveal``) have a ledger entry but no release row. One streaming pass,
    only when some receipt matched no release row."""
    ids = {e.object_id.encode() for _i, e in receipts if e.object_id}
    found: _Sent = set()
    size = node.ledger.size()
    for start in range(0, size, _SCAN):
        for _i, body in node.ledger.canonical_entries(start, min(size, start + _SCAN)):
            if b'"kind":"release"' not in body or not any(i in body for i in ids):
                continue
            e = Entry.from_json(body)
            if e.partner == partner:
                found.add((e.object_id, e.object_version, e.view_hash))
    return found


def _check_credit(node: Node, partner: str, ours: list[tuple[int, Entry]],
                  out: LogVerification) -> None:
    """(6) Every entry of the partner's log that credits us matches what we did."""
    def credit(entry: Entry) -> None:
        out.credit[entry.kind] = out.credit.get(entry.kind, 0) + 1

    receipts: list[tuple[int, Entry]] = []
    for index, entry in ours:
        if entry.kind == "receipt":
            receipts.append((index, entry))
        elif entry.kind in CREDIT_KINDS:
            why = _credited(node, entry)
            if why is None:
                credit(entry)
            else:
                out.problems.append(f"entry {index} ({entry.kind} of {entry.object_id}) {why}")
    if not receipts:
        return
    sent = _released_to(node, partner)
    unmatched = [(i, e) for i, e in receipts
                 if (e.object_id, e.object_version, e.view_hash) not in sent]
    logged = _logged_releases(node, partner, unmatched) if unmatched else set()
    for index, entry in receipts:
        key = (entry.object_id, entry.object_version, entry.view_hash)
        if key in sent or key in logged:
            credit(entry)
        else:
            out.problems.append(
                f"entry {index} ({entry.kind} of {entry.object_id}) {_NEVER_SENT}")


def verify_partner_log(node: Node, partner: str, client: PartnerClient) -> LogVerification:
    """Steps (1)-(6) of the module docstring for one partner."""
    out = LogVerification(partner, origin_of(partner))
    cp = fetch_checkpoint(node, partner, client)  # (1)
    out.size = cp.size
    keys = {**witness_keys(node), origin_of(node.name): node.verify_key}
    out.cosigned_by = sorted(c.name for c in cp.cosignatures(keys))
    _check_consistency(node, partner, client, cp, out)  # (2)
    ours = _our_entries(partner, client, cp, out)  # (3)
    releases = [e for _i, e in ours if e.kind == "release"]
    for index, entry in ours:  # (4)
        if entry.kind == "release":
            _check_inclusion(partner, client, cp, index, entry)
            out.releases_included += 1
        elif entry.kind == BATCH_KIND:
            _check_inclusion(partner, client, cp, index, entry)
            members = _batch_releases(partner, client, index, entry)
            releases += members
            out.releases_included += len(members)
    _check_received(node, partner, releases, out)  # (5)
    _check_credit(node, partner, ours, out)  # (6)
    return out
