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
from detente.release.ids import object_id_of, object_in
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


@dataclass(frozen=True, slots=True)
class _Versions:
    """A TAXII ``match[version]`` as the page applies it: ``all``; exact versions (a
    column filter in the page's query); ``last``/``first`` among the versions of each
    object that the partner holds live, which the page decides on the rows it read
    (:func:`_held_bounds`), never as a filter inside its query."""

    everything: bool
    last: bool
    first: bool
    exact: frozenset[str]

    @classmethod
    def of(cls, selectors: Sequence[str]) -> _Versions:
        last = first = False
        exact: set[str] = set()
        for sel in selectors:
            if sel == "all":
                return cls(True, False, False, frozenset())
            if sel == "last":
                last = True
            elif sel == "first":
                first = True
            else:
                exact.add(normalise(sel, field="match[version]"))
        return cls(False, last, first, frozenset(exact))

    @property
    def by_row(self) -> bool:
        """Decided on the rows read (``last``/``first`` asked), not by the query."""
        return not self.everything and (self.last or self.first)

    def keeps(self, version: str, bounds: tuple[str, str] | None) -> bool:
        if version in self.exact:
            return True
        if bounds is None:  # no live view of it left for the partner (withdrawn since)
            return False
        return (self.first and version == bounds[0]) or (self.last and version == bounds[1])


def _held_bounds(conn: sa.Connection, partner: str, object_ids: set[str]
                 ) -> dict[str, tuple[str, str]]:
    """Object id -> (first, last) version among the class views of it that ``partner``
    holds live.  By the objects' UUID index, then a probe by view per version found:
    ``OFFSET 0`` keeps EXISTS a probe (not a join that hashes every release of the
    partner) and the partner is compared as an expression (``|| ''``), which no index
    serves — else, while a partner is being caught up and the statistics think it holds
    few rows, the planner ANDs the view index with the partner's whole (partner, seq)
    range on every probe."""
    o_r, o_v = releases.alias("o_r"), views.alias("o_v")
    held = sa.select(o_r.c.seq).where(o_r.c.view == o_v.c.id, o_r.c.partner + "" == partner,
                                      o_r.c.withdrawn.is_(False)).offset(0).exists()
    wanted = sorted(object_ids)
    out: dict[str, tuple[str, str]] = {}
    for start in range(0, len(wanted), _IN_CHUNK):
        stmt = (sa.select(object_id_of(o_v.c), sa.func.min(o_v.c.version),
                          sa.func.max(o_v.c.version))
                .where(object_in(o_v.c, wanted[start:start + _IN_CHUNK]), held)
                .group_by(o_v.c.type, o_v.c.uuid))
        out.update((str(oid), (str(lo), str(hi))) for oid, lo, hi in conn.execute(stmt))
    return out


#: seq, view_hash, batch and the class view's id of a row of :func:`read_releases`' query
_LEADING = operator.itemgetter(0, 1, 2, 3)
#: the object id and version of such a row
_OBJECT, _VERSION = 4, 5
assert VIEW_COLUMNS[0] is views.c.id  # the fourth column of that query
assert VIEW_COLUMNS[2] is views.c.version
_IN_CHUNK = 400


def read_releases(engine: sa.Engine, partner: str, query: Query,
                  source: ViewSource | None = None) -> ReleasePage:
    """One page of the views served to ``partner``, in date_added order.  ``source``
    derives the served bytes (the node's: ``node.releaser.views``, which is also what
    :func:`~detente.release.views.source_for` finds for the store's engine)."""
    r, v = releases.c, views.c
    versions = _Versions.of(query.versions or ("last",))
    # with ids, the rows are found by view (the view index) and the partner compared on
    # them (as an expression no index serves)
    cond = [(r.partner + "" if query.ids else r.partner) == partner, r.withdrawn.is_(False)]
    if not versions.everything and not versions.by_row:
        cond.append(v.version.in_(versions.exact))
    if query.types:
        cond.append(v.type.in_(query.types))
    if query.ids:
        cond.append(r.view.in_(views_of(query.ids)))
    if query.spec_versions:
        cond.append(v.spec_version.in_(query.spec_versions))
    # the class view's columns come with the page (one query), its bytes from its chunk
    cols = (r.seq, r.view_hash, r.batch, *VIEW_COLUMNS)
    # with ids, order by an expression: the planner then uses the view index and sorts the
    # few rows, instead of walking all the partner's rows in seq order
    order = r.seq + 0 if query.ids else r.seq
    want = None if query.limit is None else query.limit + 1
    source = source or source_for(engine)

    def rows_after(conn: sa.Connection, after: int | None) -> list[Any]:
        where = cond if after is None else [*cond, r.seq > after]
        stmt = (sa.select(*cols).select_from(releases.join(views, v.id == r.view))
                .where(*where).order_by(order))
        return list(conn.execute(stmt if want is None else stmt.limit(want)).all())

    def page(conn: sa.Connection) -> tuple[list[Any], dict[int, ClassView]]:
        # ``last``/``first`` (the default) are decided on the rows read, in Python: as a
        # filter in the query (a subquery per row) PostgreSQL estimates them to keep one
        # row in 200, so on a partner of a few hundred thousand rows it reads and sorts
        # them all for a page of 100 (20,000 rows, 100-200 ms a page, at 100,000 x 20)
        # instead of walking the key in seq order and stopping at the page's end
        found: list[Any] = []
        after = query.added_after
        while True:
            batch = rows_after(conn, after)
            if not versions.by_row:
                found = batch
                break
            bounds = _held_bounds(conn, partner, {str(row[_OBJECT]) for row in batch})
            found += [row for row in batch
                      if versions.keeps(str(row[_VERSION]), bounds.get(str(row[_OBJECT])))]
            if want is None or len(found) >= want or len(batch) < want:
                break
            after = int(batch[-1][0])  # a version passed over: read on after it
        found = found[:want] if want is not None else found
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
