"""The object page: content, markings, "who can see this and why", releases with proofs."""

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
from detente.web import data
from detente.web.facts import display_name, fmt_micros, release_records

__all__ = ["MarkingLine", "MatrixRow", "ReleaseRow", "object_page"]


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
    for partner, d in node.releaser.matrix(object_id):
        tier = node.partners.tier_of(partner)
        rows.append(MatrixRow(partner.name, f"{tier} {TIER_NAMES[tier]}", str(d.verdict),
                              d.reasons, d.removed, d.onward, d.attribution,
                              tuple(explain(d))))
    return rows


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
    return [ReleaseRow(r.partner, r.version, fmt_micros(r.released_at), r.withdrawn,
                       r.fingerprint_id, r.ledger_index, prove(r.ledger_index))
            for r in release_records(node) if r.object_id == object_id]


def object_page(node: Node, object_id: str) -> dict[str, Any]:
    stored = node.store.get(object_id)
    if stored is None:
        raise NotFoundError(f"no object {object_id} in this node",
                            hint="pick one from the objects list")
    body = stored.body
    return {
        "obj": stored, "title": display_name(stored), "body": body,
        "content": orjson.dumps(body, option=orjson.OPT_INDENT_2).decode(),
        "origin": stored.provenance.origin,
        "received": fmt_micros(stored.provenance.received_at or stored.date_added),
        "versions": [v.version for v in node.store.versions(object_id)],
        "markings": markings(node, body), "matrix": matrix(node, object_id),
        "releases": releases(node, object_id),
        "credibility": data.credibility(node, object_id),
        "has_partners": bool(node.partners.all()),
    }
