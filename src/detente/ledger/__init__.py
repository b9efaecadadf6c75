"""The ledger: an append-only Merkle log (RFC 9162) with C2SP checkpoints and witnessing.

Every release, receipt and deconfliction query is an :class:`Entry`; partners verify
inclusion and consistency with the pure functions :func:`verify_inclusion` and
:func:`verify_consistency`, and witness each other's :class:`Checkpoint` with a
:class:`Witness`, which stores equivocation evidence when a log shows a split view.
"""

from detente.ledger.batch import BATCH_KIND, BatchProof, batch_path, batch_root, verify_release
from detente.ledger.checkpoint import Checkpoint, Cosignature
from detente.ledger.entry import KNOWN_KINDS, Entry
from detente.ledger.errors import (
    CheckpointError,
    ConsistencyProofError,
    EntryError,
    EquivocationError,
    InclusionProofError,
    LedgerError,
    LedgerStoreError,
    ProofError,
    ReferenceMovedError,
    SignatureError,
    StaleCheckpointError,
)
from detente.ledger.evidence import Evidence, EvidenceError, SignedExchange, Verdict
from detente.ledger.ledger import EMPTY_ROOT, Ledger, LedgerStatus
from detente.ledger.note import format_vkey, parse_vkey
from detente.ledger.proofs import verify_consistency, verify_inclusion
from detente.ledger.visibility import VisibleEntry
from detente.ledger.witness import REFUSED, Equivocation, Witness, WitnessedTree, list_alarms

__all__ = [
    "BATCH_KIND",
    "EMPTY_ROOT",
    "KNOWN_KINDS",
    "REFUSED",
    "BatchProof",
    "Checkpoint",
    "CheckpointError",
    "ConsistencyProofError",
    "Cosignature",
    "Entry",
    "EntryError",
    "Equivocation",
    "EquivocationError",
    "Evidence",
    "EvidenceError",
    "InclusionProofError",
    "Ledger",
    "LedgerError",
    "LedgerStatus",
    "LedgerStoreError",
    "ProofError",
    "ReferenceMovedError",
    "SignatureError",
    "SignedExchange",
    "StaleCheckpointError",
    "Verdict",
    "VisibleEntry",
    "Witness",
    "WitnessedTree",
    "batch_path",
    "batch_root",
    "format_vkey",
    "list_alarms",
    "parse_vkey",
    "verify_consistency",
    "verify_inclusion",
    "verify_release",
]
