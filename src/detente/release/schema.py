"""Tables of the release path: every view served, and each partner's progress."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["cursors", "metadata", "releases"]

metadata = sa.MetaData()

releases = sa.Table(
    "releases",
    metadata,
    # TAXII date_added of the view in the partner's `releases` collection: integer µs,
    # strictly increasing node-wide, assigned in commit order
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("spec_version", sa.Text),
    sa.Column("verdict", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("removed", sa.Text, nullable=False),
    # the exact bytes served, and their SHA-256 (also in the ledger entry)
    sa.Column("view", sa.LargeBinary, nullable=False),
    sa.Column("view_hash", sa.Text, nullable=False),
    sa.Column("fingerprint_id", sa.Text),
    sa.Column("embed_record", sa.Text),
    sa.Column("ledger_index", sa.BigInteger),
    sa.Column("withdrawn", sa.Boolean, nullable=False),
    sa.Index("ix_releases_partner_seq", "partner", "seq"),
    sa.Index("ix_releases_partner_object", "partner", "object_id", "version"),
    sa.Index("ix_releases_object", "object_id", "version"),
)

cursors = sa.Table(
    "release_cursors",
    metadata,
    sa.Column("partner", sa.Text, primary_key=True),
    # store date_added up to which every object version was evaluated for this partner
    sa.Column("evaluated_to", sa.BigInteger, nullable=False),
)
