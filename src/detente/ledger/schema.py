"""The ledger's tables (all prefixed ``ledger_``), created by the ledger itself.

Storage layout: one row per leaf. Row ``seq`` holds the entry's canonical JSON and
``hashes``: the leaf hash followed by the hash of every complete subtree that leaf
completes, lowest first. The complete subtree of height ``h`` and index ``i`` is therefore
slot ``h`` of row ``(i+1)·2^h − 1``: every stored hash is one primary-key read away, a proof
reads O(log n) rows, and appends only ever add rows at the end of the primary key (the
B-tree's cheapest insert). ``ledger_head`` keeps the size and the right-edge frontier (the
hashes of the complete subtrees that make up the current tree), so an append reads one row.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "checkpoints",
    "entries",
    "equivocations",
    "evidence",
    "head",
    "metadata",
    "seen",
    "witnessed",
]

metadata = sa.MetaData()

# INTEGER PRIMARY KEY on SQLite makes seq the rowid itself (no second index).
_Seq = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("seq", _Seq, primary_key=True, autoincrement=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("partner", sa.String(256), nullable=True),
    sa.Column("entry", sa.LargeBinary, nullable=False),
    sa.Column("hashes", sa.LargeBinary, nullable=False),
)

head = sa.Table(
    "ledger_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("origin", sa.String(256), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("frontier", sa.LargeBinary, nullable=False),
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
