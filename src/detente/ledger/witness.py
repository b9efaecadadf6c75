"""Witnessing other nodes' logs (C2SP tlog-witness semantics) and equivocation evidence.

A witness remembers, per origin, the last checkpoint it cosigned. It cosigns a new
checkpoint only if it is provably an extension of that one; a log that shows two different
trees to two parties (a split view) is caught as soon as one witness sees both. The evidence
kept is self-contained and checkable by anyone holding the origin's public key: the two
signed notes and the proof that was offered.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from nacl.signing import SigningKey, VerifyKey

from detente.ledger import schema
from detente.ledger.checkpoint import Checkpoint, Cosignature
from detente.ledger.errors import (
    ConsistencyProofError,
    EquivocationError,
    SignatureError,
    StaleCheckpointError,
)
from detente.ledger.note import check_name
from detente.ledger.proofs import verify_consistency
from detente.store.engine import writer

__all__ = ["CONFLICTING_ROOT", "INCONSISTENT", "Equivocation", "Witness", "list_alarms"]

CONFLICTING_ROOT = "conflicting-root"
"""Two signed checkpoints of the same size with different roots: conclusive."""
INCONSISTENT = "inconsistent"
"""A consistency proof between two signed checkpoints failed; conclusive unless the origin
produces a valid proof between the same two checkpoints (which it cannot for a split view)."""


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Stored evidence: the checkpoint seen first, the conflicting one, the proof offered."""

    id: int
    origin: str
    kind: str
    detected_at: str
    first_note: str
    second_note: str
    proof: tuple[bytes, ...]
    detail: str


def _encode_proof(proof: Sequence[bytes]) -> str:
    return "\n".join(base64.b64encode(p).decode() for p in proof)


def _decode_proof(text: str) -> tuple[bytes, ...]:
    return tuple(base64.b64decode(line) for line in text.split("\n") if line)


def list_alarms(engine: sa.Engine) -> list[Equivocation]:
    """All equivocation evidence stored in this node's database, oldest first."""
    t = schema.equivocations
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.id)).all()
    return [
        Equivocation(
            r.id,
            r.origin,
            r.kind,
            r.detected_at,
            r.first_note,
            r.second_note,
            _decode_proof(r.proof),
            r.detail,
        )
        for r in rows
    ]


class Witness:
    """Cosigns checkpoints of the ``origins`` it knows, refusing any split view."""

    def __init__(
        self,
        engine: sa.Engine,
        name: str,
        signing_key: SigningKey,
        origins: Mapping[str, Mapping[str, VerifyKey]],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = writer(engine)  # its transactions write (SQLite: BEGIN IMMEDIATE)
        self.name = check_name(name)
        self._key = signing_key
        self._origins = {origin: dict(keys) for origin, keys in origins.items()}
        self._clock = clock
        schema.metadata.create_all(self._engine, tables=[schema.witnessed, schema.equivocations])

    @property
    def verify_key(self) -> VerifyKey:
        return self._key.verify_key

    def last_seen(self, origin: str) -> Checkpoint | None:
        """The last checkpoint of ``origin`` this witness cosigned."""
        t = schema.witnessed
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(t.c.note).where(t.c.origin == origin)).first()
        if row is None:
            return None
        return Checkpoint.from_note(row.note, self._origins.get(origin, {}))

    def observe(
        self, checkpoint: Checkpoint, consistency_proof: Sequence[bytes] = ()
    ) -> Cosignature:
        """Cosign ``checkpoint`` if it extends the last one seen from its origin.

        ``consistency_proof`` goes from the last seen size to ``checkpoint.size`` (or, for an
        older checkpoint offered by gossip, from ``checkpoint.size`` to the last seen size).
        Raises :class:`EquivocationError` after storing the evidence, or
        :class:`StaleCheckpointError` for an older but consistent checkpoint.
        """
        # (1) only known origins, signed by their own keys (checked again here: fail closed)
        keys = self._origins.get(checkpoint.origin)
        if not keys:
            raise SignatureError(
                f"witness {self.name!r} does not know origin {checkpoint.origin!r}"
            )
        checkpoint.verify(keys)
        with self._engine.begin() as conn:
            # (2) the last seen checkpoint, locked against a concurrent observe
            last = self._locked_last(conn, checkpoint.origin)
            problem = None if last is None else self._compare(last, checkpoint, consistency_proof)
            # (3) remember the new checkpoint, unless it conflicts
            if problem is None:
                self._remember(conn, checkpoint, replace_row=last is not None)
        if last is not None and problem is not None:
            kind, detail = problem
            evidence = self._record(last, checkpoint, consistency_proof, kind, detail)
            raise EquivocationError(
                f"{checkpoint.origin!r} equivocated: {detail}", evidence_id=evidence
            )
        # (4) cosign
        return Cosignature.create(checkpoint, self._key, self.name, int(self._clock()))

    def _locked_last(self, conn: sa.Connection, origin: str) -> Checkpoint | None:
        t = schema.witnessed
        query = sa.select(t.c.note).where(t.c.origin == origin).with_for_update()
        row = conn.execute(query).first()
        return None if row is None else Checkpoint.from_note(row.note, self._origins[origin])

    @staticmethod
    def _compare(
        last: Checkpoint, new: Checkpoint, proof: Sequence[bytes]
    ) -> tuple[str, str] | None:
        """``None`` if ``new`` may be cosigned; raises for stale; else (kind, detail)."""
        if new.size == last.size:
            if new.root != last.root:
                return CONFLICTING_ROOT, f"two roots for size {new.size}"
            return None
        old, young = (last, new) if new.size > last.size else (new, last)
        try:
            verify_consistency(old.size, young.size, old.root, young.root, proof)
        except ConsistencyProofError as exc:
            return INCONSISTENT, f"size {old.size} to {young.size}: {exc.message}"
        if new.size < last.size:
            raise StaleCheckpointError(
                f"checkpoint {new.size} of {new.origin!r} is older than cosigned {last.size}"
            )
        return None

    def _remember(self, conn: sa.Connection, cp: Checkpoint, *, replace_row: bool) -> None:
        t = schema.witnessed
        values = {"size": cp.size, "root": cp.root, "note": cp.to_note()}
        if replace_row:
            conn.execute(t.update().where(t.c.origin == cp.origin).values(**values))
        else:
            conn.execute(t.insert().values(origin=cp.origin, **values))

    def _record(
        self, first: Checkpoint, second: Checkpoint, proof: Sequence[bytes], kind: str, detail: str
    ) -> int:
        when = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = {
            "origin": first.origin,
            "kind": kind,
            "detected_at": when,
            "first_note": first.to_note(),
            "second_note": second.to_note(),
            "proof": _encode_proof(proof),
            "detail": detail,
        }
        with self._engine.begin() as conn:
            result = conn.execute(schema.equivocations.insert().values(**row))
            key = result.inserted_primary_key
        return int(key[0]) if key is not None else 0
