"""Cosignatures partners handed back for this node's checkpoints (table ``ledger_cosignatures``).

A witness's cosignature is stored only after it verified against that partner's key, over
a checkpoint this node signed itself; the latest checkpoint is then served with every
cosignature collected for its tree (C2SP tlog-cosignature lines after the log's own).
"""

from __future__ import annotations

import sqlalchemy as sa

from detente.federation.schema import cosignatures
from detente.ledger import Checkpoint, Cosignature
from detente.store.engine import writer

__all__ = ["CosignatureBook", "cosignatures"]




class CosignatureBook:
    """Stores verified cosignatures and attaches them to a checkpoint of the same tree."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def add(self, checkpoint: Checkpoint, cosig: Cosignature) -> None:
        """Keep ``cosig`` (already verified by the caller); a newer one replaces an older."""
        t = cosignatures
        key = (t.c.size == checkpoint.size) & (t.c.witness == cosig.name)
        values = {"root": checkpoint.root, "key_hash": cosig.key_hash,
                  "timestamp": cosig.timestamp, "signature": cosig.signature}
        with writer(self._engine).begin() as conn:
            row = conn.execute(sa.select(t.c.timestamp).where(key)).first()
            if row is None:
                conn.execute(t.insert().values(size=checkpoint.size, witness=cosig.name,
                                               **values))
            elif row.timestamp <= cosig.timestamp:
                conn.execute(t.update().where(key).values(**values))

    def for_checkpoint(self, checkpoint: Checkpoint) -> list[Cosignature]:
        t = cosignatures
        query = sa.select(t).where(t.c.size == checkpoint.size, t.c.root == checkpoint.root)
        with self._engine.connect() as conn:
            rows = conn.execute(query.order_by(t.c.witness)).all()
        return [Cosignature(r.witness, bytes(r.key_hash), int(r.timestamp), bytes(r.signature))
                for r in rows]

    def attach(self, checkpoint: Checkpoint) -> Checkpoint:
        """``checkpoint`` with every stored cosignature of its tree appended."""
        for cosig in self.for_checkpoint(checkpoint):
            checkpoint = checkpoint.with_cosignature(cosig)
        return checkpoint

    def witnesses(self, checkpoint: Checkpoint) -> list[str]:
        return [c.name for c in self.for_checkpoint(checkpoint)]
