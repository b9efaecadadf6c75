"""Our claims, and the verifications partners' claims got here (tables ``priority_…``)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from detente.errors import NotFoundError
from detente.ledger import Ledger
from detente.priority.commitment import SALT_BYTES, claim_entry, commitment
from detente.store.engine import writer

__all__ = ["ClaimBook", "ClaimRecord", "Verification", "metadata"]

metadata = sa.MetaData()

claims = sa.Table(
    "priority_claims", metadata,
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("salt", sa.LargeBinary, nullable=False),
    sa.Column("commitment", sa.LargeBinary, nullable=False),
    sa.Column("ledger_index", sa.BigInteger, nullable=False),
    sa.Column("claimed_at", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("object_id", "version"),
)

verified = sa.Table(
    "priority_verified", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("commitment", sa.LargeBinary, nullable=False),
    sa.Column("claim_index", sa.BigInteger, nullable=False),
    sa.Column("witnessed_size", sa.BigInteger, nullable=False),
    sa.Column("witnessed_at", sa.Float, nullable=False),
    # our own first report of the same content (µs), None if we never reported it
    sa.Column("own_first_at", sa.BigInteger),
    sa.Column("verified_at", sa.Float, nullable=False),
    sa.UniqueConstraint("partner", "commitment", name="uq_priority_verified"),
)


@dataclass(frozen=True)
class ClaimRecord:
    object_id: str
    version: str
    salt: bytes
    commitment: bytes
    ledger_index: int
    claimed_at: float

    def to_json(self) -> dict[str, Any]:
        return {"object_id": self.object_id, "version": self.version,
                "commitment": self.commitment.hex(), "ledger_index": self.ledger_index,
                "claimed_at": datetime.fromtimestamp(self.claimed_at, UTC).isoformat()}


@dataclass(frozen=True)
class Verification:
    """A partner's claim checked here: its commitment sat in a tree of the partner's log
    that our witness checked at ``witnessed_at``; ``before_ours``: before our own first
    report of that content (or we never reported it)."""

    partner: str
    object_id: str
    version: str
    commitment: bytes
    claim_index: int
    witnessed_size: int
    witnessed_at: float
    own_first_at: int | None
    verified_at: float

    @property
    def before_ours(self) -> bool:
        return self.own_first_at is None or self.witnessed_at * 1_000_000 < self.own_first_at

    def to_json(self) -> dict[str, Any]:
        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, UTC).isoformat()

        return {"partner": self.partner, "object_id": self.object_id,
                "version": self.version, "commitment": self.commitment.hex(),
                "claim_index": self.claim_index, "witnessed_size": self.witnessed_size,
                "witnessed_at": iso(self.witnessed_at),
                "own_first_at": None if self.own_first_at is None
                else iso(self.own_first_at / 1e6),
                "before_ours": self.before_ours, "verified_at": iso(self.verified_at)}


class ClaimBook:
    def __init__(self, engine: sa.Engine, ledger: Ledger) -> None:
        self.engine = engine
        self.ledger = ledger

    def claim(self, object_id: str, version: str, body: Any) -> tuple[ClaimRecord, bool]:
        """Commit to one object version (once: claiming it again returns the first claim).
        Returns the claim and whether it is new."""
        existing = self.get(object_id, version)
        if existing is not None:
            return existing, False
        salt = secrets.token_bytes(SALT_BYTES)
        digest = commitment(salt, body)
        now = datetime.now(UTC)
        with writer(self.engine).begin() as conn:
            index = self.ledger.append(claim_entry(digest, now), conn)
            conn.execute(claims.insert().values(
                object_id=object_id, version=version, salt=salt, commitment=digest,
                ledger_index=index, claimed_at=now.timestamp()))
        record = self.get(object_id, version)
        assert record is not None
        return record, True

    def get(self, object_id: str, version: str | None = None) -> ClaimRecord | None:
        """The claim on that version (or the latest claim on the object)."""
        c = claims.c
        stmt = sa.select(claims).where(c.object_id == object_id)
        if version is not None:
            stmt = stmt.where(c.version == version)
        with self.engine.connect() as conn:
            row = conn.execute(stmt.order_by(c.claimed_at.desc()).limit(1)).first()
        return None if row is None else _claim(row)

    def require(self, object_id: str) -> ClaimRecord:
        found = self.get(object_id)
        if found is None:
            raise NotFoundError(f"this node has no claim on {object_id}",
                                hint=f"detente claim {object_id}")
        return found

    def all(self) -> list[ClaimRecord]:
        with self.engine.connect() as conn:
            return [_claim(r) for r in conn.execute(
                sa.select(claims).order_by(claims.c.claimed_at))]

    def record(self, v: Verification) -> bool:
        """Keep a verification (once per partner and commitment); True if new."""
        with writer(self.engine).begin() as conn:
            seen = conn.execute(sa.select(verified.c.id).where(
                verified.c.partner == v.partner,
                verified.c.commitment == v.commitment)).first()
            if seen is not None:
                return False
            conn.execute(verified.insert().values(
                partner=v.partner, object_id=v.object_id, version=v.version,
                commitment=v.commitment, claim_index=v.claim_index,
                witnessed_size=v.witnessed_size, witnessed_at=v.witnessed_at,
                own_first_at=v.own_first_at,
                verified_at=v.verified_at))
        return True

    def verifications(self, partner: str | None = None) -> list[Verification]:
        stmt = sa.select(verified).order_by(verified.c.id)
        if partner is not None:
            stmt = stmt.where(verified.c.partner == partner)
        with self.engine.connect() as conn:
            return [Verification(
                r.partner, r.object_id, r.version, bytes(r.commitment), int(r.claim_index),
                int(r.witnessed_size), float(r.witnessed_at),
                None if r.own_first_at is None else int(r.own_first_at),
                float(r.verified_at)) for r in conn.execute(stmt)]

    def proven(self, partner: str) -> int:
        """Claims of ``partner`` verified here as made before our own first report."""
        return sum(v.before_ours for v in self.verifications(partner))


def _claim(row: Any) -> ClaimRecord:
    return ClaimRecord(row.object_id, row.version, bytes(row.salt), bytes(row.commitment),
                       int(row.ledger_index), float(row.claimed_at))
