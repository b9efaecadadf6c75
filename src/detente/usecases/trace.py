"""Tracing a leaked artifact: fingerprint trace over this node's releases, with ledger
inclusion proofs for the releases it matched, and a `trace` entry in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detente.fingerprint import Artifact, TraceReport
from detente.ledger import Entry
from detente.node import Node
from detente.release import ReleaseRecord, iter_release_records

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


def _proofs(node: Node, records: list[ReleaseRecord], report: TraceReport) -> list[dict[str, Any]]:
    accused = {s.partner for s in report.accused}
    matched = {e.object_key for e in report.evidence}
    ledger = node.ledger
    size = ledger.size()
    out: list[dict[str, Any]] = []
    for r in records:
        if r.partner not in accused or r.object_key not in matched or r.ledger_index is None:
            continue
        proof = ledger.inclusion_proof(r.ledger_index, size)
        out.append({
            "partner": r.partner, "object_key": r.object_key,
            "fingerprint_id": r.fingerprint_id, "ledger_index": r.ledger_index,
            "tree_size": size, "proof": [h.hex() for h in proof],
        })
    return out


def trace_artifact(node: Node, data: bytes, fmt: str | None = None,
                   *, record: bool = True) -> TraceOutcome:
    """Trace ``data`` (a bundle, JSON, CSV, text excerpt or indicator list) to recipients."""
    artifact = Artifact.from_bytes(data, fmt)
    records = list(iter_release_records(node.store.engine, fingerprinted_only=True))
    report = node.fingerprinter.trace(artifact, records)
    proofs = _proofs(node, records, report)
    index: int | None = None
    if record:
        accused = ",".join(s.partner for s in report.accused) or "nobody"
        detail = f"{report.verdict}: accused {accused}; {report.positions_read} positions read"
        index = node.ledger.append(Entry(kind="trace", time=datetime.now(UTC),
                                         detail=detail[:2000]))
    checkpoint = node.ledger.checkpoint().to_note() if proofs else None
    return TraceOutcome(report, proofs, checkpoint, index)
