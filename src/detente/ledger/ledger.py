"""The node's append-only Merkle log, persisted with SQLAlchemy Core.

Appends are batched, one transaction per batch: (1) the head row (size and right-edge
frontier) is read and locked inside the transaction, so appends from several processes are
serialised by the database; (2) the batch's leaf and node hashes are computed level by
level with :mod:`hashlib` (:func:`~detente.ledger.tiles.grow`); (3) they are written as
tiles, the entries as bundles (see :mod:`detente.ledger.tiles`), about ``3k / 64`` rows for
``k`` entries, one ``executemany`` per table; (4) the head moves. A batch is stored whole or
not at all, so a process killed at any moment leaves a consistent log, and
:meth:`Ledger.append_many` can join a caller's transaction (the release path writes its
release record and the ledger entry together). Statements go to the DBAPI cursor directly.
A proof reads at most two tiles per stratum, and the log's size, in one query; on SQLite a
read must not open a write transaction (detente's engine begins every SQLAlchemy
transaction IMMEDIATE), hence the raw pooled connection for reads.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson
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
from detente.ledger.tiles import (
    KEY_SHIFT,
    MAX_ENTRY,
    TILE_HEIGHT,
    bundle_pieces,
    grow,
    split_bundle,
)
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

    TILE_HEIGHT = TILE_HEIGHT
    """Tile height given to a *new* store; an existing store keeps the one in its head."""

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
        if sa.inspect(engine).has_table("ledger_entries"):
            raise LedgerStoreError(
                "this store holds a ledger in the pre-release one-row-per-leaf layout, "
                "which this version does not read: start a new store"
            )
        schema.metadata.create_all(self._engine)
        self._tile_height = self._ensure_head()
        # Statements differ by placeholder and dialect only (no outside text in them).
        # SQLite's || yields TEXT, even on BLOBs: cast the grown tile back.
        ph = self._ph
        grow = "ledger_tiles.hashes || excluded.hashes"
        if not self._pg:
            grow = f"CAST({grow} AS BLOB)"
        lock = " FOR UPDATE" if self._pg else ""
        self._lock_head = f"SELECT size, frontier FROM ledger_head WHERE id = 1{lock}"  # noqa: S608
        self._move_head = (
            f"UPDATE ledger_head SET size = {ph}, root = {ph}, frontier = {ph} WHERE id = 1"  # noqa: S608
        )
        self._put_tiles = (
            f"INSERT INTO ledger_tiles (tile, hashes) VALUES ({ph}, {ph}) "  # noqa: S608
            f"ON CONFLICT (tile) DO UPDATE SET hashes = {grow}"
        )
        self._put_bundles = (
            f"INSERT INTO ledger_bundles (first, sizes, entries) VALUES ({ph}, {ph}, {ph})"  # noqa: S608
        )

    @classmethod
    def open(cls, url: str, origin: str, **kwargs: Any) -> Ledger:
        """Open (creating if needed) the ledger stored at ``url``."""
        return cls(make_engine(url), origin, **kwargs)

    def _ensure_head(self) -> int:
        """Create the head row if there is none; return the ledger's tile height."""
        for _attempt in range(2):
            try:
                with self._engine.begin() as conn:
                    row = conn.execute(
                        sa.select(schema.head.c.origin, schema.head.c.tile_height)
                    ).one_or_none()
                    if row is None:
                        conn.execute(
                            schema.head.insert().values(
                                id=1,
                                origin=self.origin,
                                size=0,
                                root=EMPTY_ROOT,
                                frontier=b"",
                                tile_height=self.TILE_HEIGHT,
                            )
                        )
                        return self.TILE_HEIGHT
            except sa.exc.IntegrityError:
                continue  # another process created it first: read it again
            if row.origin != self.origin:
                raise LedgerStoreError(f"this database holds the ledger of {row.origin!r}")
            if not 1 <= row.tile_height <= 16:
                raise LedgerStoreError(f"ledger head has a bad tile height {row.tile_height!r}")
            return int(row.tile_height)
        raise LedgerStoreError("could not create or read the ledger head")

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
            return self._append_own(entries)
        if not conn.in_transaction():
            raise UsageError("append_many(conn=...) needs a connection inside a transaction")
        # The DBAPI cursor of the caller's connection: same transaction, none of Core's
        # per-statement work (a one-entry append is five statements).
        cur = conn.connection.cursor()
        try:
            return self._append_with(cur, entries)
        finally:
            cur.close()

    def _append_own(self, entries: Sequence[Entry]) -> range:
        """Append in a transaction of our own, on a pooled DBAPI connection.

        SQLite: ``BEGIN IMMEDIATE`` takes the write lock first, as detente's engine does for
        every writer; PostgreSQL: the driver opens the transaction and the head row's
        ``FOR UPDATE`` serialises appenders. Committed on success, rolled back otherwise.
        """
        raw = self._engine.raw_connection()
        try:
            cur = raw.cursor()
            try:
                if not self._pg:
                    cur.execute("BEGIN IMMEDIATE")
                done = self._append_with(cur, entries)
            except BaseException:
                raw.rollback()
                raise
            finally:
                cur.close()
            raw.commit()
            return done
        finally:
            raw.close()

    def _append_with(self, cur: Any, entries: Sequence[Entry]) -> range:
        # (1) lock the head and read the size and right-edge frontier
        cur.execute(self._lock_head)
        row = cur.fetchone()
        start: int = int(row[0])
        stack = self._decode_frontier(start, bytes(row[1]))
        if not entries:
            return range(start, start)
        # (2) hash the batch: the leaves, then level by level the subtrees they complete,
        # laid out as the tiles' new bytes (see tiles.grow)
        tall = self._tile_height
        datas = [e.canonical for e in entries]
        sha = _sha256
        tiles, stack = grow([sha(b"\x00" + d).digest() for d in datas], start, stack, tall)
        seq = start + len(datas)
        # (3) the entries' bundles (pieces never cross a multiple of the bundle width), with
        # their sizes as big-endian uint16
        try:
            sizes = array("H", [len(d) for d in datas])
        except OverflowError:
            raise EntryError(f"a ledger entry is longer than {MAX_ENTRY} bytes") from None
        if sys.byteorder == "little":
            sizes.byteswap()
        table = sizes.tobytes()
        bundles = [
            (a, table[2 * (a - start) : 2 * (b - start)], b"".join(datas[a - start : b - start]))
            for _bundle, a, b in bundle_pieces(start, seq, tall)
        ]
        cur.executemany(self._put_tiles, tiles)
        cur.executemany(self._put_bundles, bundles)
        # (4) move the head; everything commits together
        cur.execute(self._move_head, (seq, fold_right(stack), b"".join(stack)))
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
        return self._within(size, current)

    @staticmethod
    def _as_size(size: object) -> int:
        """A requested tree size, before it is checked against the log."""
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LedgerStoreError(f"size {size!r} is outside the log")
        return size

    @staticmethod
    def _within(size: object, current: int) -> int:
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= current:
            raise LedgerStoreError(f"size {size!r} is outside the log (size {current})")
        return size

    def _lookup(self, cur: Any, nodes: list[Node], size: int) -> list[bytes]:
        """The hashes of complete subtrees of the tree of ``size``, in order, in one query.

        The query also reads the log's current size, so a ``size`` past the end is refused
        without a separate read of the head.
        """
        if not nodes:
            self._checked_size(cur, size)
            return []
        # tiles.locate, inlined and as comprehensions: this runs for every node of every
        # proof. ``spots``: (stratum, height in the stratum, last base node under the node)
        tall = self._tile_height
        mask = (1 << tall) - 1
        spots = [(h // tall, h % tall, ((i + 1) << (h % tall)) - 1) for h, i in nodes]
        keys = [s << KEY_SHIFT | last >> tall for s, _, last in spots]
        slots = [
            (2 * (last & mask) - (last & mask).bit_count() + rel) << 5 for _, rel, last in spots
        ]
        wanted = list(set(keys))
        found: dict[int, bytes] = {}
        current = -1
        for chunk in range(0, len(wanted), 500):
            part = wanted[chunk : chunk + 500]
            marks = ", ".join([self._ph] * len(part))
            cur.execute(
                "SELECT tile, hashes, (SELECT size FROM ledger_head WHERE id = 1) "  # noqa: S608
                f"FROM ledger_tiles WHERE tile IN ({marks})",
                part,
            )
            for key, blob, now in cur.fetchall():
                found[key] = blob
                current = now
        if current < 0:  # no tile at all: an empty log, or a damaged one
            current = self._head(cur)[0]
        self._within(size, int(current))
        out = [
            found.get(key, b"")[at : at + HASH_SIZE] for key, at in zip(keys, slots, strict=True)
        ]
        for key, value in zip(keys, out, strict=True):
            if len(value) != HASH_SIZE:
                raise LedgerStoreError(f"a subtree hash (tile {key:#x}) is missing from the ledger")
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
            if self._as_size(size) == 0:
                return EMPTY_ROOT
            return fold_right(self._lookup(cur, list(subtrees(0, size)), size))

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size``."""
        with self._cursor() as cur:
            size = self._head(cur)[0] if size is None else self._as_size(size)
            if not isinstance(index, int) or not 0 <= index < size:
                self._checked_size(cur, size)  # a size past the end is the first error
                raise LedgerStoreError(f"leaf {index!r} is outside a tree of size {size}")
            return assemble(inclusion_ranges(index, size), lambda n: self._lookup(cur, n, size))

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        """The RFC 9162 consistency proof from ``old_size`` to ``new_size`` (default: now)."""
        with self._cursor() as cur:
            new = self._head(cur)[0] if new_size is None else self._as_size(new_size)
            if not isinstance(old_size, int) or not 0 <= old_size <= new:
                self._checked_size(cur, new)
                raise LedgerStoreError(f"old size {old_size!r} is outside 0..{new}")
            ranges = consistency_ranges(old_size, new)
            return assemble(ranges, lambda n: self._lookup(cur, n, new))

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
        return [(i, Entry.from_json(body)) for i, body in self._rows(start, end)]

    def canonical_entries(self, start: int = 0, end: int | None = None
                          ) -> list[tuple[int, bytes]]:
        """Entries ``[start, end)`` as their canonical bytes (no parsing: for scans)."""
        return self._rows(start, end)

    def entries_for(
        self, partner: str, start: int = 0, end: int | None = None
    ) -> list[VisibleEntry]:
        """Leaves ``[start, end)`` as ``partner`` may see them (see :mod:`.visibility`)."""
        out = []
        for i, body in self._rows(start, end):
            try:
                owner = orjson.loads(body).get("partner")
            except (orjson.JSONDecodeError, AttributeError):
                raise LedgerStoreError(f"ledger entry {i} is not a JSON object") from None
            if owner == partner:
                out.append(visible_to(partner, i, Entry.from_json(body)))
            else:
                out.append(VisibleEntry(i, _sha256(b"\x00" + body).digest(), None))
        return out

    def _rows(self, start: int, end: int | None) -> list[tuple[int, bytes]]:
        """The stored bytes of leaves ``[start, end)`` (clipped to the log), with indices."""
        with self._cursor() as cur:
            end = self._checked_size(cur, end)
            start = max(0, start)
            if start >= end:
                return []
            ph = self._ph
            # a piece never crosses a multiple of the bundle width: the one holding
            # ``start`` begins less than one width before it
            cur.execute(
                "SELECT first, sizes, entries FROM ledger_bundles "  # noqa: S608
                f"WHERE first > {ph} AND first < {ph} ORDER BY first",
                (start - (1 << self._tile_height), end),
            )
            rows = cur.fetchall()
        out: list[tuple[int, bytes]] = []
        at = None
        for first, sizes, data in rows:
            first = int(first)
            if at is not None and first != at:
                raise LedgerStoreError(f"ledger entries {at}..{first} are missing")
            for k, body in enumerate(split_bundle(bytes(sizes), bytes(data))):
                if start <= first + k < end:
                    out.append((first + k, body))
            at = first + len(sizes) // 2
        if len(out) != end - start:
            raise LedgerStoreError(f"ledger entries {start}..{end} are not all stored")
        return out

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
