"""Errors of the ledger: every failure names the step that failed.

Proofs, checkpoints, signatures and entries may all come from a partner, so anything
malformed or tampered with surfaces as one of these, never as ``KeyError``/``ValueError``.
"""

from __future__ import annotations

from detente.errors import ConflictError, StoreError, ValidationError

__all__ = [
    "CheckpointError",
    "ConsistencyProofError",
    "EntryError",
    "EquivocationError",
    "InclusionProofError",
    "LedgerError",
    "LedgerStoreError",
    "ProofError",
    "ReferenceMovedError",
    "SignatureError",
    "StaleCheckpointError",
]


class LedgerError(ValidationError):
    """Base of the ledger's validation failures (hostile or malformed input)."""


class EntryError(LedgerError):
    """A ledger entry is malformed (bad kind, time, id, hash or encoding)."""


class ProofError(LedgerError):
    """A Merkle proof does not verify or is malformed."""


class InclusionProofError(ProofError):
    """An inclusion proof (RFC 9162 §2.1.3) does not verify."""


class ConsistencyProofError(ProofError):
    """A consistency proof (RFC 9162 §2.1.4) does not verify."""


class CheckpointError(LedgerError):
    """A checkpoint note is malformed (C2SP tlog-checkpoint / signed-note)."""


class SignatureError(LedgerError):
    """No valid signature from a known key, or a signature that does not verify."""


class LedgerStoreError(StoreError):
    """The ledger's tables are missing, inconsistent, or a read asked past the end."""


class StaleCheckpointError(ConflictError):
    """A witness was shown a checkpoint smaller than one it already cosigned."""


class ReferenceMovedError(ConflictError):
    """Another round moved the largest checkpoint seen of a log while a proof was asked
    against the old one: ask again (never an alarm)."""


class EquivocationError(ConflictError):
    """A log showed two views that cannot both be true; the evidence has been stored."""

    def __init__(self, message: str, *, evidence_id: int | None = None) -> None:
        super().__init__(message, hint="the evidence is listed by Ledger.alarms()")
        self.evidence_id = evidence_id
