"""Tables of the release path: what each partner was released, and each partner's progress.

At rest a release is small (``docs/release.md``, "At rest"):

- ``release_chunks``: the **class views** (the policy's cut of an object version for a
  policy class, before fingerprinting) of one commit, compressed together;
- ``release_views``: one row per distinct class view of an object version, shared by every
  partner it was released to (the object id's UUID and type, version, where its bytes
  are, a digest);
- ``release_rows``: one row per (partner, view) release: its ``seq`` (TAXII date_added),
  the SHA-256 of the exact bytes the partner is served (the partner's fingerprinted view,
  derived from the class view when served), the ledger index of the release batch that
  logged it, and whether it was withdrawn;
- ``release_batches``: per commit, its ledger leaf and the seq range of its rows.

``release_meta`` records the layout.  A home whose release records are in the earlier
layout (one ``releases`` row holding every view's bytes and fingerprint record) is refused
with a clear message when it holds releases; an empty one is replaced.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

__all__ = ["LAYOUT", "LEGACY_TABLE", "batches", "chunks", "cursors", "meta", "metadata",
           "releases", "views"]

#: the layout tag kept in ``release_meta``; never reused for another layout
LAYOUT = "4"
#: the layouts :func:`detente.release.layout.check_layout` moves to :data:`LAYOUT` on open
#: (2: release_rows keyed by seq alone, with a second index on (partner, seq); 3: class
#: views holding their object id as text)
MOVABLE = ("2", "3")
#: the table of layout 1 (before issue 13)
LEGACY_TABLE = "releases"

metadata = sa.MetaData()

# INTEGER PRIMARY KEY on SQLite makes the key the rowid itself (no second index)
_Key = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# a UUID as its canonical text (lower-case hex, 8-4-4-4-12) in and out, stored natively
# on PostgreSQL (16 bytes, no alignment, no length header)
_Uuid = sa.Text().with_variant(postgresql.UUID(as_uuid=False), "postgresql")

meta = sa.Table(
    "release_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

chunks = sa.Table(
    "release_chunks",
    metadata,
    sa.Column("id", _Key, primary_key=True, autoincrement=False),
    # how ``data`` is encoded: 1 = zlib (RFC 1950) of the views' bytes, concatenated
    sa.Column("codec", sa.SmallInteger, nullable=False),
    # each view's length, big-endian uint32
    sa.Column("sizes", sa.LargeBinary, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)

# Column order is PostgreSQL's row layout: fixed-width columns first, widest first, so no
# alignment padding falls between them (16 bytes a release row, measured); SQLite's
# records do not pad, so the order costs nothing there.
views = sa.Table(
    "release_views",
    metadata,
    sa.Column("id", _Key, primary_key=True, autoincrement=False),
    sa.Column("chunk", sa.BigInteger, nullable=False),
    sa.Column("slot", sa.Integer, nullable=False),
    # served through the fingerprinter (False: as it is — support copies of markings)
    sa.Column("marked", sa.Boolean, nullable=False),
    # the first 8 bytes of SHA-256 of the class view: finds it again for the next partner
    # (a collision could only make a release fail its hash check when served: never served)
    sa.Column("digest", sa.LargeBinary, nullable=False),
    # the object id is ``<type>--<uuid>`` (STIX 2.1 §2.9, lower-case hex: what the
    # validator admits): kept as its UUID beside the type — on PostgreSQL a 16-byte
    # ``uuid`` (32 bytes a view less than the id as text), on SQLite the 36 characters
    # (11 less); :mod:`detente.release.ids` gives the id back and finds it
    sa.Column("uuid", _Uuid, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("spec_version", sa.Text),
    # fields the policy removed (JSON list), "" when none: not NULL, so that a view row
    # has no null bitmap on PostgreSQL (8 bytes of header a view)
    sa.Column("removed", sa.Text, nullable=False),
    # object ids are only ever compared for equality: on PostgreSQL a hash index holds a
    # 4-byte code per view instead of the UUID; its pages filled before a split (fillfactor
    # 100, not 75: 37 bytes a view instead of 59, measured at 20,000 x 3 in bench/hub.py)
    sa.Index("ix_release_views_uuid", "uuid").ddl_if(dialect="sqlite"),
    sa.Index("ix_release_views_uuid_hash", "uuid", postgresql_using="hash",
             postgresql_with={"fillfactor": 100}).ddl_if(dialect="postgresql"),
    # "the marking definitions a partner holds" (once per chunk) starts from the few
    # marking views, not from every release row of the partner
    # (partial: the other views never need it — 8 bytes a view on SQLite)
    sa.Index("ix_release_views_marking", "type",
             sqlite_where=sa.text("type = 'marking-definition'"),
             postgresql_where=sa.text("type = 'marking-definition'")),
)

releases = sa.Table(
    "release_rows",
    metadata,
    # TAXII date_added of the view in the partner's `releases` collection: integer µs,
    # strictly increasing node-wide, assigned in commit order (unique: the releaser
    # assigns it under the node's write lock; no index of its own — see the key)
    sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
    # 4-byte ids (2^31 class views, 2^31 ledger leaves): with ``seq`` first, 16 bytes
    # that PostgreSQL aligns without padding (8 bytes a row less than two BigIntegers)
    sa.Column("view", sa.Integer, nullable=False),
    # ledger index of the release batch holding this release's entry
    sa.Column("batch", sa.Integer),
    sa.Column("withdrawn", sa.Boolean, nullable=False),
    sa.Column("partner", sa.Text, nullable=False),
    # SHA-256 of the exact bytes this partner is served (also in its release entry)
    sa.Column("view_hash", sa.LargeBinary, nullable=False),
    # the key is the paging order, (partner, seq): on SQLite the table itself is that
    # B-tree (WITHOUT ROWID), so paging needs no second index and the rows are the index;
    # on PostgreSQL the key index is the paging index (no separate index on seq alone).
    # Node-wide seq order (trust's "views after", trace) merges the partners' ranges.
    sa.PrimaryKeyConstraint("partner", "seq", name="release_rows_pkey"),
    # by class view first: "the releases of these objects" (to one partner, or to any).
    # PostgreSQL: the view alone — a class view's rows (one per partner of its class)
    # then share one index entry (B-tree deduplication), and the partner is compared on
    # the few rows found (release.path._held); SQLite: with the partner (its entries also
    # hold the key's seq, so a probe finds the row's key without reading the row)
    sa.Index("ix_release_rows_view_partner", "view", "partner").ddl_if(dialect="sqlite"),
    sa.Index("ix_release_rows_view", "view").ddl_if(dialect="postgresql"),
    sqlite_with_rowid=False,
)

batches = sa.Table(
    "release_batches",
    metadata,
    # one per commit of the release path: the ledger leaf of its release-batch entry and
    # the seq range of its release rows (consecutive: one commit, one partner)
    sa.Column("ledger_index", _Key, primary_key=True, autoincrement=False),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

cursors = sa.Table(
    "release_cursors",
    metadata,
    sa.Column("partner", sa.Text, primary_key=True),
    # store date_added up to which every object version was evaluated for this partner
    sa.Column("evaluated_to", sa.BigInteger, nullable=False),
)

