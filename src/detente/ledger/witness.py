"""Witnessing other nodes' logs (C2SP tlog-witness semantics) and equivocation evidence.

A witness remembers, per origin, the last checkpoint it cosigned (``ledger_witnessed``)
and the LARGEST signed checkpoint it has seen of that log at all (``ledger_seen``: from
witnessing, gossip or ``log verify``). Every later view must be consistent with the
largest one seen: a larger checkpoint extends it, a smaller one is a prefix of it (the log
proves it), so a log that truncates its unwitnessed tail cannot go unnoticed. It cosigns a
new checkpoint only if it is provably an extension; a log that shows two different trees
to two parties (a split view) is caught as soon as one witness sees both. The evidence kept
(:mod:`detente.ledger.evidence`) is checkable by anyone holding the origin's public key:
the two signed notes and the log's own signed answer to the consistency request.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from nacl.signing import SigningKey, VerifyKey

from detente.ledger import schema
from detente.ledger.checkpoint import Checkpoint, Cosignature
from detente.ledger.errors import (
    ConsistencyProofError,
    EquivocationError,
    ReferenceMovedError,
    SignatureError,
    StaleCheckpointError,
)
from detente.ledger.evidence import (
    CONFLICTING_ROOT,
    INCONSISTENT,
    ROLLBACK,
    Evidence,
    EvidenceError,
    SignedExchange,
)
from detente.ledger.note import check_name
from detente.ledger.proofs import verify_consistency
from detente.store.engine import writer

__all__ = ["CONFLICTING_ROOT", "INCONSISTENT", "REFUSED", "ROLLBACK", "Equivocation", "Witness",
           "WitnessedTree", "list_alarms"]

REFUSED = None
"""As a consistency proof: the log answered (signed) that it has no tree of the larger size."""


@dataclass(frozen=True, slots=True)
class WitnessedTree:
    """A tree of another log this witness checked: ``size`` leaves, ``root``, at ``at``."""

    origin: str
    size: int
    root: bytes
    at: float


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
    document: str | None = None

    def evidence(self) -> Evidence:
        """The third-party-checkable evidence file (``detente log evidence``)."""
        if self.document is not None:
            try:
                return Evidence.from_json(self.document.encode())
            except EvidenceError:
                pass  # a row written by hand: fall back to what the alarm row says
        return Evidence(self.origin, self.kind, self.detected_at, self.detail, self.first_note,
                        self.second_note)


def _encode_proof(proof: Sequence[bytes]) -> str:
    return "\n".join(base64.b64encode(p).decode() for p in proof)


def _decode_proof(text: str) -> tuple[bytes, ...]:
    return tuple(base64.b64decode(line) for line in text.split("\n") if line)


def list_alarms(engine: sa.Engine) -> list[Equivocation]:
    """All equivocation evidence stored in this node's database, oldest first."""
    t, ev = schema.equivocations, schema.evidence
    query = (sa.select(t, ev.c.document).select_from(t.outerjoin(ev, ev.c.id == t.c.id))
             .order_by(t.c.id))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
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
            r.document,
        )
        for r in rows
    ]


_ANY: Any = object()


def _same(a: Checkpoint | None, b: Checkpoint | None) -> bool:
    return a is b is None or (a is not None and b is not None and a.same_tree(b))


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
        schema.metadata.create_all(self._engine, tables=[
            schema.witnessed, schema.seen, schema.equivocations, schema.evidence,
            schema.witness_history])

    @property
    def verify_key(self) -> VerifyKey:
        return self._key.verify_key

    def last_seen(self, origin: str) -> Checkpoint | None:
        """The last checkpoint of ``origin`` this witness cosigned."""
        with self._engine.connect() as conn:
            return self._read(conn, schema.witnessed, origin)

    def largest_seen(self, origin: str) -> Checkpoint | None:
        """The largest signed checkpoint of ``origin`` seen so far (cosigned or not): the
        one every later view must be consistent with."""
        with self._engine.connect() as conn:
            return self._largest(conn, origin, self._read(conn, schema.witnessed, origin))

    def first_covering(self, origin: str, index: int) -> WitnessedTree | None:
        """The earliest checkpoint of ``origin`` this witness checked that holds leaf
        ``index`` (size > index): proof that the leaf existed by then."""
        h = schema.witness_history.c
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(h.size, h.root, h.at).where(
                h.origin == origin, h.size > index).order_by(h.at, h.id).limit(1)).first()
        return None if row is None else WitnessedTree(origin, int(row.size), bytes(row.root),
                                                      float(row.at))

    def _read(self, conn: sa.Connection, t: sa.Table, origin: str, *,
              lock: bool = False) -> Checkpoint | None:
        query = sa.select(t.c.note).where(t.c.origin == origin)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            return None
        return Checkpoint.from_note(row.note, self._origins.get(origin, {}))

    def _largest(self, conn: sa.Connection, origin: str, last: Checkpoint | None, *,
                 lock: bool = False) -> Checkpoint | None:
        seen = self._read(conn, schema.seen, origin, lock=lock)
        if seen is None or (last is not None and last.size > seen.size):
            return last  # rows written before ledger_seen existed
        return seen

    def observe(
        self, checkpoint: Checkpoint, consistency_proof: Sequence[bytes] | None = (), *,
        reference: Checkpoint | None = _ANY, response: SignedExchange | None = None,
    ) -> Cosignature:
        """Cosign ``checkpoint`` if it extends the largest one seen from its origin.

        ``consistency_proof`` goes between the largest seen size and ``checkpoint.size``
        (smaller first), as the origin answered it (``response``: its signed answer, kept as
        evidence); :data:`REFUSED` when the origin answered that it has no tree of the
        larger size. ``reference`` is the checkpoint the proof was asked against: if another
        round moved it meanwhile, :class:`ReferenceMovedError` (ask again), never an alarm.
        Raises :class:`EquivocationError` after storing the evidence, or
        :class:`StaleCheckpointError` for an older but consistent checkpoint.
        """
        self._check(checkpoint, consistency_proof, reference, response, cosign=True)
        # (5) cosign
        return Cosignature.create(checkpoint, self._key, self.name, int(self._clock()))

    def see(
        self, checkpoint: Checkpoint, consistency_proof: Sequence[bytes] | None = (), *,
        reference: Checkpoint | None = _ANY, response: SignedExchange | None = None,
    ) -> None:
        """Remember ``checkpoint`` without cosigning it (``log verify``): the same checks as
        :meth:`observe`, and an older checkpoint proved to be a prefix is fine."""
        self._check(checkpoint, consistency_proof, reference, response, cosign=False)

    def _check(self, checkpoint: Checkpoint, proof: Sequence[bytes] | None,
               reference: Checkpoint | None, response: SignedExchange | None, *,
               cosign: bool) -> None:
        # (1) only known origins, signed by their own keys (checked again here: fail closed)
        keys = self._origins.get(checkpoint.origin)
        if not keys:
            raise SignatureError(
                f"witness {self.name!r} does not know origin {checkpoint.origin!r}"
            )
        checkpoint.verify(keys)
        with self._engine.begin() as conn:
            # (2) the last cosigned and the largest seen, locked against a concurrent round
            last = self._read(conn, schema.witnessed, checkpoint.origin, lock=True)
            largest = self._largest(conn, checkpoint.origin, last, lock=True)
            if reference is not _ANY and not _same(reference, largest):
                raise ReferenceMovedError(
                    f"the largest checkpoint seen of {checkpoint.origin!r} changed meanwhile")
            # (3) every view must be consistent with the largest one seen
            problem = None if largest is None else self.conflict(largest, checkpoint, proof)
            if problem is None:
                if cosign and largest is not None and checkpoint.size < largest.size:
                    raise StaleCheckpointError(
                        f"checkpoint {checkpoint.size} of {checkpoint.origin!r} is older than "
                        f"one seen ({largest.size})")
                # (4) remember it: the largest seen, and what we cosign
                if largest is None or checkpoint.size > largest.size:
                    self._store(conn, schema.seen, checkpoint)
                    conn.execute(schema.witness_history.insert().values(
                        origin=checkpoint.origin, size=checkpoint.size,
                        root=checkpoint.root, at=self._clock()))
                if cosign:
                    self._store(conn, schema.witnessed, checkpoint)
        if largest is not None and problem is not None:
            kind, detail = problem
            evidence = self._record(largest, checkpoint, proof, kind, detail, response)
            raise EquivocationError(
                f"{checkpoint.origin!r} equivocated: {detail}", evidence_id=evidence
            )

    @staticmethod
    def conflict(
        reference: Checkpoint, new: Checkpoint, proof: Sequence[bytes] | None
    ) -> tuple[str, str] | None:
        """``None`` if ``new`` can be reconciled with ``reference``, else (kind, detail)."""
        if new.size == reference.size:
            if new.root != reference.root:
                return CONFLICTING_ROOT, f"two roots for size {new.size}"
            return None
        old, young = (reference, new) if new.size > reference.size else (new, reference)
        if proof is REFUSED:
            if young is reference:
                return ROLLBACK, (f"it signed a tree of size {young.size}, and now has no "
                                  f"such tree (size {old.size}): its log was rolled back")
            return INCONSISTENT, (f"size {old.size} to {young.size}: it refused to prove "
                                  "consistency with a checkpoint it had just signed")
        try:
            verify_consistency(old.size, young.size, old.root, young.root, proof)
        except ConsistencyProofError as exc:
            return INCONSISTENT, f"size {old.size} to {young.size}: {exc.message}"
        return None

    @staticmethod
    def _store(conn: sa.Connection, t: sa.Table, cp: Checkpoint) -> None:
        values = {"size": cp.size, "root": cp.root, "note": cp.to_note()}
        done = conn.execute(t.update().where(t.c.origin == cp.origin).values(**values))
        if not done.rowcount:
            conn.execute(t.insert().values(origin=cp.origin, **values))

    def _record(
        self, first: Checkpoint, second: Checkpoint, proof: Sequence[bytes] | None, kind: str,
        detail: str, response: SignedExchange | None,
    ) -> int:
        when = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = {
            "origin": first.origin,
            "kind": kind,
            "detected_at": when,
            "first_note": first.to_note(),
            "second_note": second.to_note(),
            "proof": _encode_proof(proof or ()),
            "detail": detail,
        }
        document = Evidence(first.origin, kind, when, detail, row["first_note"],
                            row["second_note"], response).to_json().decode()
        with self._engine.begin() as conn:
            result = conn.execute(schema.equivocations.insert().values(**row))
            key = result.inserted_primary_key
            ident = int(key[0]) if key is not None else 0
            conn.execute(schema.evidence.insert().values(id=ident, document=document))
        return ident
