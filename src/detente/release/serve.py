"""Reading a partner's released views, as the TAXII `releases` collection serves them.

Only rows not withdrawn are served.  ``date_added`` is the release sequence number, so a
view replaced after a tier change reappears as new to a partner paging by
``added_after``.  ``last``/``first`` are decided among the versions released to that
partner (a version it may not see does not exist for it).  Each view's bytes are derived
from its class view by the node's :class:`~detente.release.views.ViewSource` and served
only if they hash to what the release logged (``docs/release.md``, "At rest").
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from detente.errors import StoreError
from detente.release.path import views_of
from detente.release.schema import releases, views
from detente.release.views import VIEW_COLUMNS, ClassView, ViewSource, class_views, source_for
from detente.stix.timestamps import normalise
from detente.store.base import Query
from detente.store.engine import read_unpinged

__all__ = ["ReleasePage", "ReleasedView", "read_releases"]


@dataclass(frozen=True, slots=True)
class ReleasedView:
    partner: str
    id: str
    type: str
    version: str
    spec_version: str | None
    date_added: int
    view: bytes
    fingerprint_id: str | None
    ledger_index: int | None


@dataclass(frozen=True, slots=True)
class ReleasePage:
    views: list[ReleasedView]
    more: bool
    cursor: int | None


def _version_clause(partner: str, selectors: Sequence[str]) -> sa.ColumnElement[bool]:
    # the versions of this object (object index) that the partner holds live (the view
    # index).  Written so that PostgreSQL probes by view, whatever its statistics say: OFFSET 0
    # keeps EXISTS a probe per view (not a join that hashes every release of the partner)
    # and the partner is compared as an expression (``|| ''``), which no index serves —
    # else, while a partner is being caught up and the statistics think it holds few
    # rows, the planner ANDs the view index with the partner's whole (partner, seq) range
    # on every probe (5 ms a probe, 500 ms a page at 20,000 rows).  By view alone a probe
    # finds one row per partner of the view's class.
    o_r, o_v = releases.alias("o_r"), views.alias("o_v")
    held = sa.select(o_r.c.seq).where(o_r.c.view == o_v.c.id, o_r.c.partner + "" == partner,
                                      o_r.c.withdrawn.is_(False)).offset(0).exists()
    same = sa.and_(o_v.c.uuid == views.c.uuid, o_v.c.type == views.c.type, held)
    parts: list[sa.ColumnElement[bool]] = []
    exact: list[str] = []
    for sel in selectors:
        if sel == "all":
            return sa.true()
        if sel in ("last", "first"):
            agg = sa.func.max if sel == "last" else sa.func.min
            sub = sa.select(agg(o_v.c.version)).where(same).scalar_subquery()
            parts.append(views.c.version == sub)
        else:
            exact.append(normalise(sel, field="match[version]"))
    if exact:
        parts.append(views.c.version.in_(exact))
    return sa.or_(*parts)


#: seq, view_hash, batch and the class view's id of a row of :func:`read_releases`' query
_LEADING = operator.itemgetter(0, 1, 2, 3)
assert VIEW_COLUMNS[0] is views.c.id  # the fourth column of that query


def read_releases(engine: sa.Engine, partner: str, query: Query,
                  source: ViewSource | None = None) -> ReleasePage:
    """One page of the views served to ``partner``, in date_added order.  ``source``
    derives the served bytes (the node's: ``node.releaser.views``, which is also what
    :func:`~detente.release.views.source_for` finds for the store's engine)."""
    r, v = releases.c, views.c
    # with ids, the rows are found by view (the view index) and the partner compared on
    # them (see _version_clause: as an expression no index serves)
    cond = [(r.partner + "" if query.ids else r.partner) == partner, r.withdrawn.is_(False),
            _version_clause(partner, query.versions or ("last",))]
    if query.types:
        cond.append(v.type.in_(query.types))
    if query.ids:
        cond.append(r.view.in_(views_of(query.ids)))
    if query.spec_versions:
        cond.append(v.spec_version.in_(query.spec_versions))
    if query.added_after is not None:
        cond.append(r.seq > query.added_after)
    # the class view's columns come with the page (one query), its bytes from its chunk
    cols = (r.seq, r.view_hash, r.batch, *VIEW_COLUMNS)
    # with ids, order by an expression: the planner then uses the view index and sorts the
    # few rows, instead of walking all the partner's rows in seq order
    order = r.seq + 0 if query.ids else r.seq
    stmt = (sa.select(*cols).select_from(releases.join(views, v.id == r.view))
            .where(*cond).order_by(order))
    if query.limit is not None:
        stmt = stmt.limit(query.limit + 1)
    source = source or source_for(engine)

    def page(conn: sa.Connection) -> tuple[list[Any], dict[int, ClassView]]:
        found = list(conn.execute(stmt).all())
        return found, class_views(conn, found[: query.limit], source)

    # Round trips saved, each a wait for a busy database process while the releaser runs:
    # on PostgreSQL in autocommit — a page is two statements (its rows with their class
    # views, then the chunks holding the views' bytes) and needs no common snapshot (a row
    # is committed with its view and chunk, and neither ever changes) — and with no ping
    # at checkout (a dead connection is retried once instead)
    try:
        rows, cvs = read_unpinged(engine, page, autocommit=True)
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read releases: {str(exc).splitlines()[0]}") from None
    more = query.limit is not None and len(rows) > query.limit
    rows = rows[: query.limit] if more else rows
    out: list[ReleasedView] = []
    # the columns by position (``cols``' order): a row's column by name costs ~0.4 µs
    for seq, view_hash, batch, vid in map(_LEADING, rows):
        cv = cvs[int(vid)]
        served = source.serve(cv, partner, bytes(view_hash))
        if served is None:
            continue  # fail closed: never serve bytes the ledger does not hold
        out.append(ReleasedView(partner, cv.object_id, cv.type, cv.version, cv.spec_version,
                                int(seq), served.view, served.fingerprint_id,
                                None if batch is None else int(batch)))
    cursor = int(rows[-1][0]) if rows else None
    return ReleasePage(out, more, cursor)
