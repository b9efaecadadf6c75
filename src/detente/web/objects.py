"""The object page: content, markings, "who can see this and why" (with whether each
partner's view is fingerprinted), releases with proofs, relationships in both directions,
sightings, and the other reports sharing one of its observables (correlation)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from detente.errors import NotFoundError
from detente.ledger import Checkpoint, verify_inclusion
from detente.ledger.errors import LedgerError
from detente.node import Node
from detente.partners import TIER_NAMES
from detente.policy import explain
from detente.stix.vocab import tlp_level
from detente.store.base import LOCAL, StoredObject
from detente.web import data
from detente.web.facts import display_name, fmt_micros, fmt_stix, names_of, release_records

__all__ = ["CorrelationRow", "MarkingLine", "MatrixRow", "RelationshipRow", "ReleaseRow",
           "SightingRow", "object_page"]

#: types whose objects can be sighted (a sighting names an SDO)
_NOT_SIGHTABLE = frozenset({"relationship", "sighting", "marking-definition",
                            "language-content", "extension-definition"})


@dataclass(frozen=True, slots=True)
class MarkingLine:
    id: str
    label: str
    scope: str


@dataclass(frozen=True, slots=True)
class MatrixRow:
    partner: str
    tier: str
    verdict: str
    reasons: tuple[str, ...]
    removed: tuple[str, ...]
    onward: str
    attribution: str
    explanation: tuple[str, ...]
    #: whether the view this partner receives carries its fingerprint, and why
    fingerprinted: bool | None
    fingerprint_why: str


@dataclass(frozen=True, slots=True)
class ReleaseRow:
    partner: str
    version: str
    released: str
    withdrawn: bool
    fingerprint_id: str | None
    ledger_index: int | None
    proof: str


def _marking_label(node: Node, marking_id: str) -> str:
    level = tlp_level(marking_id)
    if level:
        return f"TLP:{level.upper()}"
    stored = node.store.get(marking_id)
    if stored is None:
        return "unknown marking (not in this node's store: the policy denies)"
    return str(stored.body.get("name") or marking_id)


def markings(node: Node, body: dict[str, Any]) -> list[MarkingLine]:
    out = [MarkingLine(m, _marking_label(node, m), "whole object")
           for m in body.get("object_marking_refs") or []]
    for g in body.get("granular_markings") or []:
        ref = g.get("marking_ref") or ""
        label = _marking_label(node, ref) if ref else f"language {g.get('lang')}"
        out.append(MarkingLine(ref, label, ", ".join(g.get("selectors") or [])))
    return out


def matrix(node: Node, object_id: str) -> list[MatrixRow]:
    rows = []
    fingerprinter = node.fingerprinter
    for partner, d in node.releaser.matrix(object_id):
        tier = node.partners.tier_of(partner)
        if d.allowed and d.view is not None:
            fp = fingerprinter.decide(dict(d.view))
            marked: bool | None = fp.fingerprinted
            why = fp.reason
        else:
            marked, why = None, "nothing released, so nothing to fingerprint"
        rows.append(MatrixRow(partner.name, f"{tier} {TIER_NAMES[tier]}", str(d.verdict),
                              d.reasons, d.removed, d.onward, d.attribution,
                              tuple(explain(d)), marked, why))
    return rows


@dataclass(frozen=True, slots=True)
class RelationshipRow:
    id: str
    kind: str  # the relationship_type
    outgoing: bool  # this object is the source
    other_id: str
    other_name: str
    other_type: str
    reporter: str


@dataclass(frozen=True, slots=True)
class SightingRow:
    id: str
    reporter: str
    count: int | None
    first_seen: str
    last_seen: str
    false_positive: bool
    where: tuple[tuple[str, str], ...]  # (id, name) of where_sighted_refs
    note: str


@dataclass(frozen=True, slots=True)
class CorrelationRow:
    observable: str
    object_id: str
    name: str
    type: str
    reporter: str
    reported: str
    outcome: str | None
    echo: bool


def reporter(origin: str) -> str:
    return "us" if origin == LOCAL else origin


def _referring(node: Node, object_id: str) -> tuple[list[StoredObject], list[StoredObject]]:
    found = node.store.referring(object_id, ("relationship", "sighting"))
    rels = [o for o in found if o.type == "relationship"
            and object_id in (o.body.get("source_ref"), o.body.get("target_ref"))]
    sights = [o for o in found if o.type == "sighting"
              and o.body.get("sighting_of_ref") == object_id]
    return rels, sights


def relationships(node: Node, object_id: str, rels: list[StoredObject]
                  ) -> list[RelationshipRow]:
    ends = [(r, r.body.get("source_ref") == object_id) for r in rels]
    others = [str(r.body.get("target_ref" if out else "source_ref")) for r, out in ends]
    names = names_of(node, others)
    rows = [RelationshipRow(r.id, str(r.body.get("relationship_type", "related-to")), out,
                            other, names.get(other, other), other.split("--")[0],
                            reporter(r.provenance.origin))
            for (r, out), other in zip(ends, others, strict=True)]
    rows.sort(key=lambda x: (not x.outgoing, x.kind, x.other_name.casefold()))
    return rows


def sightings(node: Node, sights: list[StoredObject]) -> list[SightingRow]:
    from detente.trust.intake import is_false_positive

    where = names_of(node, (w for s in sights for w in s.body.get("where_sighted_refs") or []))
    rows = []
    for s in sights:
        b = s.body
        count = b.get("count")
        rows.append(SightingRow(
            s.id, reporter(s.provenance.origin), count if isinstance(count, int) else None,
            fmt_stix(b.get("first_seen")), fmt_stix(b.get("last_seen")),
            is_false_positive(b),
            tuple((w, where.get(w, w)) for w in b.get("where_sighted_refs") or []),
            str(b.get("description") or "")))
    return list(reversed(rows))  # newest first


def correlations(node: Node, object_id: str) -> tuple[list[str], list[CorrelationRow], bool]:
    from detente.trust.correlation import observable_label

    claims, found, cut = node.trust.correlations(object_id)
    names = names_of(node, (c.object_id for c in found))
    rows = [CorrelationRow(c.observable, c.object_id, names.get(c.object_id, c.object_id),
                           c.type, reporter(c.partner), fmt_micros(c.time), c.outcome, c.echo)
            for c in found]
    return [observable_label(c) for c in claims], rows, cut


class _Prover:
    """Inclusion proofs against the latest signed checkpoint (or, past it, the head)."""

    def __init__(self, node: Node) -> None:
        self.ledger = node.ledger
        self.checkpoint: Checkpoint | None = node.ledger.latest_checkpoint()
        self.head = node.ledger.size()
        self._head_root: bytes | None = None  # computed once, for the first row past it

    def __call__(self, index: int | None) -> str:
        if index is None:
            return "no ledger entry"
        signed = self.checkpoint is not None and index < self.checkpoint.size
        if self.checkpoint and signed:
            size, root = self.checkpoint.size, self.checkpoint.root
        else:
            if self._head_root is None:
                self._head_root = self.ledger.root(self.head)
            size, root = self.head, self._head_root
        try:
            entry = self.ledger.entry(index)
            proof = self.ledger.inclusion_proof(index, size)
            verify_inclusion(entry.leaf_hash, index, size, proof, root)
        except LedgerError as exc:
            return f"proof FAILED: {exc.message}"
        where = "signed checkpoint" if signed else "current head (not yet checkpointed)"
        return f"included: {len(proof)}-hash proof verified against the {where} of size {size}"


def releases(node: Node, object_id: str) -> list[ReleaseRow]:
    prove = _Prover(node)
    return [ReleaseRow(r.partner, fmt_stix(r.version), fmt_micros(r.released_at), r.withdrawn,
                       r.fingerprint_id, r.ledger_index, prove(r.ledger_index))
            for r in release_records(node, object_id=object_id)]


def object_page(node: Node, object_id: str) -> dict[str, Any]:
    stored = node.store.get(object_id)
    if stored is None:
        raise NotFoundError(f"no object {object_id} in this node",
                            hint="pick one from the objects list")
    body = stored.body
    rels, sights = _referring(node, object_id)
    observables, correlated, cut = correlations(node, object_id)
    return {
        "obj": stored, "title": display_name(stored), "body": body,
        "content": orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(),
        "origin": stored.provenance.origin,
        "received": fmt_micros(stored.provenance.received_at or stored.date_added),
        "versions": [v.version for v in node.store.versions(object_id)],
        "relationships": relationships(node, object_id, rels),
        "sightings": sightings(node, sights),
        "observables": observables, "correlations": correlated, "correlations_cut": cut,
        "sightable": stored.type not in _NOT_SIGHTABLE and "created" in body,
        "markings": markings(node, body), "matrix": matrix(node, object_id),
        "releases": releases(node, object_id),
        "credibility": data.credibility(node, object_id),
        "has_partners": bool(node.partners.all()),
    }
