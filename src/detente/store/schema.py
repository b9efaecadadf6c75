"""Tables of the object store (SQLAlchemy Core; identical on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["REF_PROPERTIES", "SCHEMA_VERSION", "metadata", "objects", "refs", "store_meta"]

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

#: the references indexed in ``stix_refs``: what an object page lists as pointing at it
REF_PROPERTIES = {"relationship": ("source_ref", "target_ref"),
                  "sighting": ("sighting_of_ref",)}

# which objects refer to an object (relationship ends, sighting targets) in any version:
# one row per (referenced id, referring id); readers check the latest version still does
refs = sa.Table(
    "stix_refs",
    metadata,
    sa.Column("ref", sa.Text, primary_key=True),
    sa.Column("id", sa.Text, primary_key=True),
    sqlite_with_rowid=False,
)

store_meta = sa.Table(
    "store_meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
