"""Tables of the object store (SQLAlchemy Core; identical on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["SCHEMA_VERSION", "metadata", "objects", "store_meta"]

SCHEMA_VERSION = "1"

metadata = sa.MetaData()

objects = sa.Table(
    "stix_objects",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    # normalised modified/created (nine sub-second digits), "" for unversioned SCOs
    sa.Column("version", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("spec_version", sa.Text),
    sa.Column("created_by_ref", sa.Text),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("is_latest", sa.Boolean, nullable=False),
    sa.Column("is_first", sa.Boolean, nullable=False),
    # TAXII date_added: integer microseconds, strictly increasing, in commit order
    sa.Column("date_added", sa.BigInteger, nullable=False),
    sa.Column("digest", sa.LargeBinary, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    # provenance
    sa.Column("origin", sa.Text, nullable=False),
    sa.Column("received_at", sa.BigInteger),
    sa.Column("signature", sa.Text),
    sa.Column("receipt", sa.Text),
    sa.Column("flags", sa.Text),
    sa.Index("ix_stix_objects_date_added", "date_added", unique=True),
    sa.Index("ix_stix_objects_type_added", "type", "date_added"),
)

store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
