"""The layout of the release tables in a database: recorded when new, checked on open,
moved on from an earlier layout that holds the same facts (``docs/release.md``, "An
existing home")."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from detente.errors import StoreError
from detente.release.ids import UUID_PATTERN
from detente.release.schema import LAYOUT, LEGACY_TABLE, MOVABLE, meta, releases, views

__all__ = ["check_layout", "layout_current"]

log = logging.getLogger(__name__)

#: the name layout 2's release_rows is moved to while its rows are copied
_OLD = "release_rows_l2"
#: layout 2's indexes, replaced by layout 3's
_OLD_INDEXES = ("ix_release_rows_partner_seq", "ix_release_rows_view_partner",
                "ix_release_rows_view", "ix_release_views_type")
#: the name layout 3's release_views is moved to while its rows are copied
_OLD_VIEWS = "release_views_l3"
#: layout 3's indexes of release_views, replaced by layout 4's
_OLD_VIEW_INDEXES = ("ix_release_views_object", "ix_release_views_object_hash",
                     "ix_release_views_marking")
#: a canonical UUID as a SQLite GLOB pattern (lower-case hex, 8-4-4-4-12)
_UUID_GLOB = "-".join("[0-9a-f]" * n for n in (8, 4, 4, 4, 12))


def layout_current(conn: sa.Connection) -> bool:
    """Whether the release tables are in this layout (one read; False when unrecorded)."""
    try:
        row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "layout")).first()
    except sa.exc.SQLAlchemyError:
        return False
    return row is not None and row[0] == LAYOUT


def check_layout(conn: sa.Connection) -> None:
    """Record this layout in a new database; move a layout-2 one to it (same rows, another
    key: see :func:`_from_2`); refuse one whose release records are in layout 1 (a
    ``releases`` table holding releases), dropping an empty one.  Runs in
    :func:`detente.schema.create_schema`'s transaction, after the tables exist: a move cut
    short leaves the layout it found, and a second run finds nothing to do."""
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
    if conn.dialect.name == "postgresql":
        # two processes opening one home: the second waits here, then reads the layout
        # the first recorded (SQLite's writer transaction already holds the lock)
        conn.execute(sa.text(f"LOCK TABLE {meta.name} IN SHARE ROW EXCLUSIVE MODE"))
    row = conn.execute(sa.select(meta.c.value).where(meta.c.key == "layout")).first()
    if row is None:
        conn.execute(meta.insert().values(key="layout", value=LAYOUT))
    elif row[0] in MOVABLE:
        if row[0] == "2":
            _from_2(conn)
        _from_3(conn)
        conn.execute(meta.update().where(meta.c.key == "layout").values(value=LAYOUT))
    elif row[0] != LAYOUT:
        raise StoreError(f"release layout {row[0]} is not the layout {LAYOUT} this "
                         "detente reads")


def _from_2(conn: sa.Connection) -> None:
    """Layout 2 → 3: the release rows keyed by (partner, seq) — on SQLite a WITHOUT ROWID
    table, on PostgreSQL the key index instead of a seq key and a (partner, seq) index —
    and the views' type index kept for marking definitions only.  Every row is copied
    as it is (seq, partner, view, hash, batch, withdrawn): the same releases, served the
    same bytes, proved by the same ledger entries."""
    _replace(conn, releases, _OLD, _OLD_INDEXES, "release rows")
    cols = ", ".join(f'"{c.name}"' for c in releases.columns)
    conn.execute(sa.text(f"INSERT INTO {releases.name} ({cols}) "  # noqa: S608
                         f"SELECT {cols} FROM {_OLD} ORDER BY partner, seq"))
    conn.execute(sa.text(f"DROP TABLE {_OLD}"))
    # the views' index on type is gone (_OLD_INDEXES); _from_3 makes their layout-4 ones


def _replace(conn: sa.Connection, table: sa.Table, old: str, old_indexes: tuple[str, ...],
             what: str) -> None:
    """Set ``table`` aside as ``old`` (its key and ``old_indexes`` dropped, so their names
    are free) and create it again in this layout, empty: the caller copies the rows over
    and drops ``old``."""
    held = conn.execute(sa.text(f"SELECT count(*) FROM {table.name}")).scalar()  # noqa: S608
    # a warning, so that a command opening the home says why it is silent for a while
    # (13M release rows: ~33 s on SQLite); it runs once
    log.warning("moving %s %s to the release layout %s (once, on this open)",
                f"{int(held or 0):,}", what, LAYOUT)
    conn.execute(sa.text(f"ALTER TABLE {table.name} RENAME TO {old}"))
    if conn.dialect.name == "postgresql":  # the key keeps its name when its table is renamed
        conn.execute(sa.text(f"ALTER TABLE {old} DROP CONSTRAINT IF EXISTS "
                             f"{table.name}_pkey"))
    for name in old_indexes:
        conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
    table.create(conn)


def _from_3(conn: sa.Connection) -> None:
    """Layout 3 → 4: each class view's object id kept as its UUID beside its type (on
    PostgreSQL a ``uuid``), its ``removed`` "" instead of NULL when none, and the index
    on object id rebuilt on the UUID.  Every view keeps its id, so the release rows
    pointing at it are untouched: the same releases, served the same bytes, proved by the
    same ledger entries.  A view whose id is not ``<type>--<lower-case UUID>`` (which the
    validator never admitted) stops the move with a StoreError: nothing is changed."""
    postgres = conn.dialect.name == "postgresql"
    uuid = ("substr(object_id, length(type) + 3)" if not postgres else
            "CAST(substr(object_id, length(type) + 3) AS uuid)")
    canonical = (f"substr(object_id, length(type) + 3) GLOB '{_UUID_GLOB}'" if not postgres
                 else f"substr(object_id, length(type) + 3) ~ '^{UUID_PATTERN}$'")
    bad = conn.execute(sa.text(
        f"SELECT object_id FROM {views.name} WHERE substr(object_id, 1, "  # noqa: S608
        f"length(type) + 2) <> type || '--' OR NOT ({canonical}) LIMIT 1")).first()
    if bad is not None:
        raise StoreError(f"release view of {bad[0]!r}: its id is not '<type>--<lower-case "
                         "UUID>', so the release layout cannot be moved to "
                         f"{LAYOUT}", hint="keep using the detente that made this home")
    _replace(conn, views, _OLD_VIEWS, _OLD_VIEW_INDEXES, "class views")
    conn.execute(sa.text(
        f"INSERT INTO {views.name} (id, chunk, slot, marked, digest, uuid, version, "  # noqa: S608
        "type, spec_version, removed) SELECT id, chunk, slot, marked, digest, "
        f"{uuid}, version, type, spec_version, coalesce(removed, '') FROM {_OLD_VIEWS} "
        "ORDER BY id"))
    conn.execute(sa.text(f"DROP TABLE {_OLD_VIEWS}"))
