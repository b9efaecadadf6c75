"""Reading a partner's released views, as the TAXII `releases` collection serves them.

Only rows not withdrawn are served.  ``date_added`` is the release sequence number, so a
view replaced after a tier change reappears as new to a partner paging by
``added_after``.  ``last``/``first`` are decided among the versions released to that
partner (a version it may not see does not exist for it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from detente.errors import StoreError
from detente.release.schema import releases
from detente.stix.timestamps import normalise
from detente.store.base import Query
from detente.store.engine import reader

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
    other = releases.alias("other")
    same = sa.and_(other.c.partner == partner, other.c.object_id == releases.c.object_id,
                   other.c.withdrawn.is_(False))
    parts: list[sa.ColumnElement[bool]] = []
    exact: list[str] = []
    for sel in selectors:
        if sel == "all":
            return sa.true()
        if sel in ("last", "first"):
            agg = sa.func.max if sel == "last" else sa.func.min
            sub = sa.select(agg(other.c.version)).where(same).scalar_subquery()
            parts.append(releases.c.version == sub)
        else:
            exact.append(normalise(sel, field="match[version]"))
    if exact:
        parts.append(releases.c.version.in_(exact))
    return sa.or_(*parts)


def read_releases(engine: sa.Engine, partner: str, query: Query) -> ReleasePage:
    """One page of the views served to ``partner``, in date_added order."""
    cond = [releases.c.partner == partner, releases.c.withdrawn.is_(False),
            _version_clause(partner, query.versions or ("last",))]
    if query.types:
        cond.append(releases.c.type.in_(query.types))
    if query.ids:
        cond.append(releases.c.object_id.in_(query.ids))
    if query.spec_versions:
        cond.append(releases.c.spec_version.in_(query.spec_versions))
    if query.added_after is not None:
        cond.append(releases.c.seq > query.added_after)
    cols = (releases.c.partner, releases.c.object_id, releases.c.type, releases.c.version,
            releases.c.spec_version, releases.c.seq, releases.c.view,
            releases.c.fingerprint_id, releases.c.ledger_index)
    # with ids, order by an expression: the planner then uses the (partner, object_id)
    # index and sorts the few rows, instead of walking all the partner's rows in seq order
    order = releases.c.seq + 0 if query.ids else releases.c.seq
    stmt = sa.select(*cols).where(*cond).order_by(order)
    if query.limit is not None:
        stmt = stmt.limit(query.limit + 1)
    try:
        with reader(engine).connect() as conn:
            rows = conn.execute(stmt).all()
    except sa.exc.SQLAlchemyError as exc:
        raise StoreError(f"cannot read releases: {str(exc).splitlines()[0]}") from None
    more = query.limit is not None and len(rows) > query.limit
    rows = rows[: query.limit] if more else rows
    views = [ReleasedView(r[0], r[1], r[2], r[3], r[4], int(r[5]), bytes(r[6]), r[7],
                          None if r[8] is None else int(r[8])) for r in rows]
    return ReleasePage(views, more, views[-1].date_added if views else None)
