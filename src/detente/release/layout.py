"""The layout of the release tables in a database: recorded when new, checked on open."""

from __future__ import annotations

import sqlalchemy as sa

from detente.errors import StoreError
from detente.release.schema import LAYOUT, LEGACY_TABLE, meta

__all__ = ["check_layout"]


def check_layout(conn: sa.Connection) -> None:
    """Record this layout in a new database; refuse one whose release records are in
    another (a layout-1 ``releases`` table holding releases), dropping an empty one.
    Runs in :func:`detente.schema.create_schema`'s transaction, after the tables exist."""
    if sa.inspect(conn).has_table(LEGACY_TABLE):
        held = conn.execute(sa.text(f"SELECT count(*) FROM {LEGACY_TABLE}")).scalar()  # noqa: S608
        if held:
            raise StoreError(
                f"this home holds {held} releases in the release layout 1 (every view's "
                "bytes and fingerprint record in one 'releases' row), which this version "
                "does not read",
                hint="keep using the detente that made it, or start a new home "
                     "(detente init) and ingest the objects again; the partners are "
                     "released to afresh")
        conn.execute(sa.text(f"DROP TABLE {LEGACY_TABLE}"))
    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "layout")).first()
    if row is None:
        conn.execute(meta.insert().values(key="layout", value=LAYOUT))
    elif row[0] != LAYOUT:
        raise StoreError(f"release layout {row[0]} is not the layout {LAYOUT} this "
                         "detente reads")
