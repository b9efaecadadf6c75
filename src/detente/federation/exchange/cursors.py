"""Where each partner's sync (pull) and push stopped: the ``sync_cursors`` table.

A pull cursor is the ``added_after`` (µs) of the partner's ``releases`` collection up to
which every object is committed here, or — when the partner gives no
``X-TAXII-Date-Added-Last`` — the ``next`` token continuing from it.  It is written only
after the page it covers is committed, so a run killed at any moment resumes at or before
the right place: the worst case re-reads one page, whose objects are then counted as
duplicates (the store keys versions by (id, version) and never stores one twice).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import sqlalchemy as sa

from detente.federation.schema import sync_cursors
from detente.stix.timestamps import now_micros
from detente.store.engine import writer

__all__ = ["PULL", "PUSH", "Cursor", "forget_cursors", "load_cursor", "save_cursor",
           "sync_cursors"]

PULL = "pull"
PUSH = "push"




@dataclass(frozen=True, slots=True)
class Cursor:
    partner: str
    direction: str = PULL
    added_after: int | None = None
    next_token: str | None = None
    last_run: int | None = None
    last_error: str | None = None

    def advanced(self, added_after: int | None, next_token: str | None) -> Cursor:
        return replace(self, added_after=added_after, next_token=next_token)

    def finished(self, error: str | None) -> Cursor:
        return replace(self, last_run=now_micros(), last_error=error)


def load_cursor(engine: sa.Engine, partner: str, direction: str = PULL) -> Cursor:
    with engine.connect() as conn:
        row = conn.execute(sa.select(sync_cursors).where(
            sync_cursors.c.partner == partner, sync_cursors.c.direction == direction)).first()
    if row is None:
        return Cursor(partner, direction)
    m = row._mapping
    return Cursor(partner, direction, m["added_after"], m["next_token"], m["last_run"],
                  m["last_error"])


def save_cursor(engine: sa.Engine, cursor: Cursor, conn: sa.Connection | None = None) -> None:
    """Upsert a cursor (in ``conn``'s transaction when given)."""
    if conn is None:
        with writer(engine).begin() as own:
            _save(own, cursor)
    else:
        _save(conn, cursor)


def _save(conn: sa.Connection, cursor: Cursor) -> None:
    values = {"added_after": cursor.added_after, "next_token": cursor.next_token,
              "last_run": cursor.last_run, "last_error": cursor.last_error}
    key = (sync_cursors.c.partner == cursor.partner,
           sync_cursors.c.direction == cursor.direction)
    if not conn.execute(sync_cursors.update().where(*key).values(**values)).rowcount:
        conn.execute(sync_cursors.insert().values(
            partner=cursor.partner, direction=cursor.direction, **values))


def all_cursors(engine: sa.Engine) -> list[Cursor]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(sync_cursors).order_by(
            sync_cursors.c.partner, sync_cursors.c.direction)).all()
    return [Cursor(**r._mapping) for r in rows]


def forget_cursors(engine: sa.Engine, partner: str) -> None:
    """Drop every cursor of a source (a removed feed starts over if added again)."""
    with writer(engine).begin() as conn:
        conn.execute(sync_cursors.delete().where(sync_cursors.c.partner == partner))
