"""Tracing a leaked artifact: fingerprint trace over this node's releases, with ledger
inclusion proofs for the releases it matched, and a `trace` entry in the ledger.

The release records hold each partner's exact view and fingerprint record, derived again
from the class view kept at rest (``docs/release.md``, "At rest"): the node's keyed
fingerprinter is deterministic, and a record that does not derive to the bytes its release
entry logged is left out (it proves nothing).  Each proof is two-level: release entry →
release batch → log (``detente.ledger.batch``); a recorded trace also appends the accused
releases' entries to the log on their own, so its evidence is one plain inclusion proof
per release."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detente.fingerprint import Artifact, TraceReport
from detente.ledger import BatchProof, Entry, verify_release
from detente.node import Node
from detente.release import ReleaseRecord, iter_release_records
from detente.release.proofs import prove_release

__all__ = ["TraceOutcome", "trace_artifact"]


@dataclass(frozen=True)
class TraceOutcome:
    report: TraceReport
    #: per matched release sent to an accused partner: its ledger inclusion proof
    proofs: list[dict[str, Any]]
    checkpoint: str | None
    ledger_index: int | None

    def to_json(self) -> dict[str, Any]:
        doc = self.report.to_json()
        doc["ledger_proofs"] = self.proofs
        doc["checkpoint"] = self.checkpoint
        doc["trace_ledger_index"] = self.ledger_index
        return doc


def _proofs(node: Node, records: list[ReleaseRecord], report: TraceReport,
            unfold: bool) -> list[dict[str, Any]]:
    """Per matched release to an accused partner: its two-level proof (release entry →
    release batch → log, checked here), and — ``unfold`` — the release entry appended to
    the log on its own, so the evidence is one plain RFC 9162 inclusion proof of a
    ``release`` entry naming the partner (``ledger_index``, ``proof``) that anyone can check
    with no knowledge of batches; the batch proof shows it was logged when released."""
    accused = {s.partner for s in report.accused}
    matched = {e.object_key for e in report.evidence}
    ledger = node.ledger
    size, root = ledger.size(), ledger.root()
    found: list[tuple[ReleaseRecord, BatchProof]] = []
    for r in records:
        if r.partner not in accused or r.object_key not in matched or r.ledger_index is None:
            continue
        proof = prove_release(node.store.engine, ledger, r.released_at, r.ledger_index, size)
        verify_release(proof, root)
        found.append((r, proof))
    if not found:
        return []
    unfolded: Sequence[int | None] = [None] * len(found)
    if unfold:
        unfolded = ledger.append_many([p.release for _r, p in found])
    size = ledger.size()
    out: list[dict[str, Any]] = []
    for (r, p), index in zip(found, unfolded, strict=True):
        doc: dict[str, Any] = {"partner": r.partner, "object_key": r.object_key,
                               "fingerprint_id": r.fingerprint_id, **p.to_json()}
        doc["batch_index"] = p.batch_index
        doc["batch_tree_size"], doc["batch_log_proof"] = doc.pop("tree_size"), doc.pop("proof")
        if index is None:  # not recorded: the batch entry is the leaf proved
            index, leaf_proof = p.batch_index, list(p.log_path)
            size_of = p.tree_size
        else:
            leaf_proof, size_of = ledger.inclusion_proof(index, size), size
        doc.update({"ledger_index": index, "tree_size": size_of,
                    "proof": [h.hex() for h in leaf_proof]})
        out.append(doc)
    return out


def trace_artifact(node: Node, data: bytes, fmt: str | None = None,
                   *, record: bool = True) -> TraceOutcome:
    """Trace ``data`` (a bundle, JSON, CSV, text excerpt or indicator list) to recipients."""
    artifact = Artifact.from_bytes(data, fmt)
    records = list(iter_release_records(node.store.engine, fingerprinted_only=True,
                                        source=node.releaser.views))
    report = node.fingerprinter.trace(artifact, records)
    proofs = _proofs(node, records, report, unfold=record)
    index: int | None = None
    if record:
        accused = ",".join(s.partner for s in report.accused) or "nobody"
        detail = f"{report.verdict}: accused {accused}; {report.positions_read} positions read"
        index = node.ledger.append(Entry(kind="trace", time=datetime.now(UTC),
                                         detail=detail[:2000]))
    checkpoint = node.ledger.checkpoint().to_note() if proofs else None
    return TraceOutcome(report, proofs, checkpoint, index)
