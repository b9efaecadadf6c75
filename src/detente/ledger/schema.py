"""The ledger's tables (all prefixed ``ledger_``), created by the ledger itself.

Storage layout (see :mod:`detente.ledger.tiles`): ``ledger_tiles`` holds every complete
subtree hash, grouped into tiles of ``2^(T+1) - 2`` hashes keyed by stratum and index, and
``ledger_bundles`` the entries' canonical bytes, keyed by their first leaf, each row at most
``2^T`` leaves and never across a multiple of ``2^T``. Appends add bytes at the end of at
most one partial tile per stratum and insert new rows only (bundle rows are never
rewritten), so a batch of ``k`` entries writes about ``3k / 2^T`` rows, not ``k``.
``ledger_head`` keeps the size, the root, the right-edge frontier (the hashes of the complete
subtrees that make up the current tree, read and written in the appending transaction) and
the tile height ``T``.

This layout replaced one row per leaf before the first release; a store holding the old
``ledger_entries`` table is refused (:class:`~detente.ledger.LedgerStoreError`), not migrated.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

__all__ = [
    "bundles",
    "checkpoints",
    "equivocations",
    "evidence",
    "head",
    "metadata",
    "seen",
    "tiles",
    "witness_history",
    "witnessed",
]

metadata = sa.MetaData()

# INTEGER PRIMARY KEY on SQLite makes the key the rowid itself (no second index).
_Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

tiles = sa.Table(
    "ledger_tiles",
    metadata,
    sa.Column("tile", _Key, primary_key=True, autoincrement=False),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)


def _keep_tiles_inline(_target: sa.Table, connection: sa.Connection, **_kw: Any) -> None:
    """A full tile (4,032 bytes) is past PostgreSQL's default TOAST threshold (about 2 KB):
    keep tiles in the table's own pages, where a proof reads each with one index lookup,
    instead of compressing them (hashes do not compress) and moving them out of line."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ALTER TABLE ledger_tiles SET (toast_tuple_target = 8160)")


sa.event.listen(tiles, "after_create", _keep_tiles_inline)

bundles = sa.Table(
    "ledger_bundles",
    metadata,
    sa.Column("first", _Key, primary_key=True, autoincrement=False),
    sa.Column("sizes", sa.LargeBinary, nullable=False),
    sa.Column("entries", sa.LargeBinary, nullable=False),
)

head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("origin", sa.String(256), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("frontier", sa.LargeBinary, nullable=False),
    sa.Column("tile_height", sa.SmallInteger, nullable=False),
)

checkpoints = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("note", sa.Text, nullable=False),
)

witnessed = sa.Table(
    "ledger_witnessed",
    metadata,
    sa.Column("origin", sa.String(256), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

equivocations = sa.Table(
    "ledger_equivocations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(256), nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("detected_at", sa.String(40), nullable=False),
    sa.Column("first_note", sa.Text, nullable=False),
    sa.Column("second_note", sa.Text, nullable=False),
    sa.Column("proof", sa.Text, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)

witness_history = sa.Table(
    "ledger_witness_history",
    metadata,
    # every growth of another log this node's witness checked (cosigned or seen), with when:
    # "this log held at least `size` leaves, with this root, by `at`" (verifiable priority)
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("origin", sa.String(256), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("at", sa.Float, nullable=False),  # seconds since the epoch
    sa.Index("ix_ledger_witness_history", "origin", "size"),
)

seen = sa.Table(
    "ledger_seen",
    metadata,
    # per origin, the LARGEST signed checkpoint this node has seen of that log (witnessing,
    # gossip, `log verify`): every later view must be consistent with it
    sa.Column("origin", sa.String(256), primary_key=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
)

evidence = sa.Table(
    "ledger_evidence",
    metadata,
    # the third-party-checkable evidence file (detente.ledger.evidence) of one alarm
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("document", sa.Text, nullable=False),
)
