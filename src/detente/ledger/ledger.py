"""The node's append-only Merkle log, persisted with SQLAlchemy Core.

Appends are batched: one transaction per batch, the batch's hashes computed in Python from
the right-edge frontier kept in ``ledger_head``, rows written with one ``executemany``. A
batch is stored whole or not at all, so a process killed at any moment leaves a consistent
log, and :meth:`Ledger.append_many` can join a caller's transaction (the release path writes
its release record and the ledger entry together). Reads go through the raw DBAPI
connection: proofs read O(log n) rows by primary key, and on SQLite a read must not open a
write transaction (detente's engine begins every SQLAlchemy transaction IMMEDIATE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from nacl.signing import SigningKey

from detente.errors import UsageError
from detente.ledger import schema
from detente.ledger.checkpoint import Checkpoint
from detente.ledger.entry import Entry
from detente.ledger.errors import EntryError, LedgerStoreError
from detente.ledger.hashing import HASH_SIZE, fold_right, subtrees
from detente.ledger.note import check_name
from detente.ledger.proofs import Node, assemble, consistency_ranges, inclusion_ranges
from detente.ledger.visibility import VisibleEntry, visible_to
from detente.ledger.witness import Equivocation, list_alarms
from detente.store.engine import is_postgres, make_engine, writer

__all__ = ["EMPTY_ROOT", "Ledger", "LedgerStatus"]

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""RFC 9162: the hash of an empty tree is the hash of the empty string."""

_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class LedgerStatus:
    origin: str
    size: int
    root: bytes
    checkpoint: Checkpoint | None
    alarms: int


class Ledger:
    """An append-only log of :class:`Entry` with proofs, checkpoints and alarms."""

    def __init__(
        self,
        engine: sa.Engine,
        origin: str,
        *,
        signing_key: SigningKey | None = None,
        key_name: str | None = None,
    ) -> None:
        self._engine = writer(engine)  # its transactions write (SQLite: BEGIN IMMEDIATE)
        self.origin = origin
        self._key = signing_key
        self.key_name = check_name(key_name or origin)
        self._pg = is_postgres(engine)
        self._ph = "%s" if self._pg else "?"
        schema.metadata.create_all(self._engine)
        self._ensure_head()

    @classmethod
    def open(cls, url: str, origin: str, **kwargs: Any) -> Ledger:
        """Open (creating if needed) the ledger stored at ``url``."""
        return cls(make_engine(url), origin, **kwargs)

    def _ensure_head(self) -> None:
        for _attempt in range(2):
            try:
                with self._engine.begin() as conn:
                    row = conn.execute(sa.select(schema.head.c.origin)).one_or_none()
                    if row is None:
                        conn.execute(
                            schema.head.insert().values(
                                id=1, origin=self.origin, size=0, root=EMPTY_ROOT, frontier=b""
                            )
                        )
                        return
            except sa.exc.IntegrityError:
                continue  # another process created it first: read it again
            if row.origin != self.origin:
                raise LedgerStoreError(f"this database holds the ledger of {row.origin!r}")
            return

    # -- appending ------------------------------------------------------------------------

    def append(self, entry: Entry, conn: sa.Connection | None = None) -> int:
        """Append one entry; returns its index."""
        return self.append_many([entry], conn).start

    def append_many(self, entries: Sequence[Entry], conn: sa.Connection | None = None) -> range:
        """Append a batch atomically; returns the indices it got.

        With ``conn`` (a Connection already in a transaction) the batch is written inside
        the caller's transaction and becomes visible when, and only if, the caller commits.
        """
        for e in entries:
            if not isinstance(e, Entry):
                raise EntryError(f"ledger entries must be Entry, not {type(e).__name__}")
        if conn is None:
            with self._engine.begin() as own:
                return self._append(own, entries)
        if not conn.in_transaction():
            raise UsageError("append_many(conn=...) needs a connection inside a transaction")
        return self._append(conn, entries)

    def _append(self, conn: sa.Connection, entries: Sequence[Entry]) -> range:
        # (1) lock the head and read the size and right-edge frontier
        lock = " FOR UPDATE" if self._pg else ""
        row = conn.exec_driver_sql(
            f"SELECT size, frontier FROM ledger_head WHERE id = 1{lock}"  # noqa: S608
        ).one()
        start: int = row[0]
        stack = self._decode_frontier(start, row[1])
        if not entries:
            return range(start, start)
        # (2) hash the batch: each leaf, then every subtree it completes (a binary counter:
        # leaf ``seq`` completes one subtree per trailing one bit of ``seq``)
        rows, seq, sha, push, pop = [], start, _sha256, stack.append, stack.pop
        for e in entries:
            data = e.canonical
            h = sha(b"\x00" + data).digest()
            blob = h
            if seq & 1:
                parts, s = [h], seq
                while s & 1:
                    h = sha(b"\x01" + pop() + h).digest()
                    parts.append(h)
                    s >>= 1
                blob = b"".join(parts)
            push(h)
            rows.append((seq, e.kind, e.partner, data, blob))
            seq += 1
        # (3) write the rows, (4) move the head; both commit together
        ph = self._ph
        conn.exec_driver_sql(
            f"INSERT INTO ledger_entries (seq, kind, partner, entry, hashes) "  # noqa: S608
            f"VALUES ({ph}, {ph}, {ph}, {ph}, {ph})",
            rows,
        )
        conn.exec_driver_sql(
            f"UPDATE ledger_head SET size = {ph}, root = {ph}, frontier = {ph} WHERE id = 1",  # noqa: S608
            (seq, fold_right(stack), b"".join(stack)),
        )
        return range(start, seq)

    @staticmethod
    def _decode_frontier(size: int, blob: bytes) -> list[bytes]:
        if len(blob) != size.bit_count() * HASH_SIZE:
            raise LedgerStoreError(f"ledger head frontier does not match size {size}")
        return [bytes(blob[i : i + HASH_SIZE]) for i in range(0, len(blob), HASH_SIZE)]

    # -- reading --------------------------------------------------------------------------

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            yield cur
            cur.close()
        finally:
            raw.close()

    def _head(self, cur: Any) -> tuple[int, bytes]:
        cur.execute("SELECT size, root FROM ledger_head WHERE id = 1")
        size, root = cur.fetchone()
        return int(size), bytes(root)

    def _checked_size(self, cur: Any, size: int | None) -> int:
        current = self._head(cur)[0]
        if size is None:
            return current
        if not isinstance(size, int) or not 0 <= size <= current:
            raise LedgerStoreError(f"size {size!r} is outside the log (size {current})")
        return size

    def _lookup(self, cur: Any, nodes: list[Node]) -> dict[Node, bytes]:
        seqs = sorted({((i + 1) << h) - 1 for h, i in nodes})
        found: dict[int, bytes] = {}
        for chunk in range(0, len(seqs), 500):
            part = seqs[chunk : chunk + 500]
            marks = ", ".join([self._ph] * len(part))
            cur.execute(f"SELECT seq, hashes FROM ledger_entries WHERE seq IN ({marks})", part)  # noqa: S608
            found.update((int(s), bytes(b)) for s, b in cur.fetchall())
        out = {}
        for h, i in nodes:
            blob = found.get(((i + 1) << h) - 1, b"")
            value = blob[h * HASH_SIZE : (h + 1) * HASH_SIZE]
            if len(value) != HASH_SIZE:
                raise LedgerStoreError(f"subtree hash ({h}, {i}) is missing from the ledger")
            out[(h, i)] = value
        return out

    def size(self) -> int:
        """The number of committed entries."""
        with self._cursor() as cur:
            return self._head(cur)[0]

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the tree of ``size`` (default: now)."""
        with self._cursor() as cur:
            if size is None:
                return self._head(cur)[1]
            size = self._checked_size(cur, size)
            if size == 0:
                return EMPTY_ROOT
            nodes = list(subtrees(0, size))
            found = self._lookup(cur, nodes)
            return fold_right([found[n] for n in nodes])

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``."""
        with self._cursor() as cur:
            size = self._checked_size(cur, size)
            if not isinstance(index, int) or not 0 <= index < size:
                raise LedgerStoreError(f"leaf {index!r} is outside a tree of size {size}")
            return assemble(inclusion_ranges(index, size), lambda n: self._lookup(cur, n))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        with self._cursor() as cur:
            new_size = self._checked_size(cur, new_size)
            if not isinstance(old_size, int) or not 0 <= old_size <= new_size:
                raise LedgerStoreError(f"old size {old_size!r} is outside 0..{new_size}")
            ranges = consistency_ranges(old_size, new_size)
            return assemble(ranges, lambda n: self._lookup(cur, n))

    def leaf_hash(self, index: int) -> bytes:
        return self._lookup_one(index)[1]

    def entry(self, index: int) -> Entry:
        """Entry ``index``, re-validated from its stored canonical bytes."""
        return self._lookup_one(index)[0]

    def _lookup_one(self, index: int) -> tuple[Entry, bytes]:
        found = self.entries(index, index + 1)
        if not found:
            raise LedgerStoreError(f"leaf {index!r} is not in the ledger")
        return found[0][1], found[0][1].leaf_hash

    def entries(self, start: int = 0, end: int | None = None) -> list[tuple[int, Entry]]:
        """Entries ``[start, end)`` with their indices."""
        return [(i, Entry.from_json(body)) for i, _p, body, _h in self._rows(start, end)]

    def entries_for(
        self, partner: str, start: int = 0, end: int | None = None
    ) -> list[VisibleEntry]:
        """Leaves ``[start, end)`` as ``partner`` may see them (see :mod:`.visibility`)."""
        out = []
        for i, owner, body, hashes in self._rows(start, end):
            if owner == partner:
                out.append(visible_to(partner, i, Entry.from_json(body)))
            else:
                out.append(VisibleEntry(i, hashes[:HASH_SIZE], None))
        return out

    def _rows(self, start: int, end: int | None) -> list[tuple[int, str | None, bytes, bytes]]:
        with self._cursor() as cur:
            end = self._checked_size(cur, end)
            ph = self._ph
            cur.execute(
                "SELECT seq, partner, entry, hashes FROM ledger_entries "  # noqa: S608
                f"WHERE seq >= {ph} AND seq < {ph} ORDER BY seq",
                (start, end),
            )
            return [(int(s), p, bytes(e), bytes(h)) for s, p, e, h in cur.fetchall()]

    # -- checkpoints and status -----------------------------------------------------------

    def checkpoint(self) -> Checkpoint:
        """Sign the current head as a C2SP checkpoint and keep it."""
        if self._key is None:
            raise UsageError("this ledger has no signing key: it cannot sign checkpoints")
        with self._cursor() as cur:
            size, root = self._head(cur)
        signed = Checkpoint.sign(self.origin, size, root, self._key, self.key_name)
        with self._engine.begin() as conn:
            exists = conn.execute(
                sa.select(schema.checkpoints.c.size).where(schema.checkpoints.c.size == size)
            ).first()
            if exists is None:
                conn.execute(schema.checkpoints.insert().values(size=size, note=signed.to_note()))
        return signed

    def latest_checkpoint(self) -> Checkpoint | None:
        """The largest checkpoint this ledger signed (verified with its own key)."""
        if self._key is None:
            return None
        with self._cursor() as cur:
            cur.execute("SELECT note FROM ledger_checkpoints ORDER BY size DESC LIMIT 1")
            row = cur.fetchone()
        if row is None:
            return None
        return Checkpoint.from_note(row[0], {self.key_name: self._key.verify_key})

    def checkpoints(self, limit: int = 20) -> list[str]:
        """The signed checkpoint notes this ledger issued, newest (largest) first."""
        t = schema.checkpoints
        stmt = sa.select(t.c.note).order_by(t.c.size.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [str(r[0]) for r in conn.execute(stmt)]

    def alarms(self) -> list[Equivocation]:
        """Every equivocation this node's witness has recorded, oldest first."""
        return list_alarms(self._engine)

    def status(self) -> LedgerStatus:
        with self._cursor() as cur:
            size, root = self._head(cur)
        return LedgerStatus(self.origin, size, root, self.latest_checkpoint(), len(self.alarms()))
