"""Release records as evidence: what leak attribution, the ledger proofs and the trust
engine read back.

A record's view is the exact bytes the partner was served (derived from the class view by
the node's :class:`ViewSource`, checked against the logged hash); with ``derive=False`` it is
the class view (the policy's cut before fingerprinting), which is what the trust engine
compares content with.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from detente.release.ids import object_id_of, object_in
from detente.release.path import last_seq, released_partners, views_of
from detente.release.schema import releases, views
from detente.release.views import ViewSource, load_views, registered
from detente.store.engine import reader

__all__ = ["ReleaseRecord", "first_releases", "iter_release_records", "iter_views_after",
           "released_ids", "released_versions"]

_IN_CHUNK = 400


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """One view served to one partner (satisfies fingerprint's ReleaseRecordLike)."""

    partner: str
    object_id: str
    version: str
    released_at: int
    view_bytes: bytes
    fingerprint_id: str | None
    embed_record: str | None
    #: the ledger index of the release batch that logs this release
    ledger_index: int | None
    withdrawn: bool
    #: SHA-256 of the exact bytes served (hex), as in the release entry
    view_hash: str = ""

    @property
    def object_key(self) -> str:
        return f"{self.object_id}|{self.version}"

    @property
    def view(self) -> dict[str, Any]:
        value = orjson.loads(self.view_bytes)
        assert isinstance(value, dict)
        return value

    @property
    def fingerprint(self) -> dict[str, Any]:
        return orjson.loads(self.embed_record) if self.embed_record else {}


def _joined() -> Any:
    return releases.join(views, views.c.id == releases.c.view)


def iter_release_records(
    engine: sa.Engine, *, partner: str | None = None, include_withdrawn: bool = True,
    fingerprinted_only: bool = False, batch: int = 2000, source: ViewSource | None = None,
    derive: bool = True, object_id: str | None = None,
) -> Iterator[ReleaseRecord]:
    """Every release row (withdrawn ones too by default: a leak may predate withdrawal),
    in seq order, with each partner's exact view and fingerprint record derived by
    ``source`` (default: the one registered for ``engine``); ``derive=False``, or no
    source at all: the class views, no fingerprint (for counting and content lookups).
    ``fingerprinted_only`` keeps views that carry a fingerprint; ``object_id``: of that
    object only."""
    source = (source or registered(engine)) if derive else None
    r, v = releases.c, views.c
    cond: list[sa.ColumnElement[bool]] = []
    if not include_withdrawn:
        cond.append(r.withdrawn.is_(False))
    if fingerprinted_only:
        cond.append(v.marked.is_(True))
    if object_id is not None:  # by view, the partner compared on its rows
        cond.append(r.view.in_(views_of([object_id])))
        if partner is not None:
            cond.append(r.partner + "" == partner)
        yield from _records(engine, cond, None, source, fingerprinted_only, batch)
    elif partner is not None:  # the partner's range of the key
        cond.append(r.partner == partner)
        yield from _records(engine, cond, None, source, fingerprinted_only, batch)
    else:  # every partner's range, merged in seq order
        partners, upto = _node_wide(engine)
        yield from heapq.merge(*(
            _records(engine, [*cond, r.partner == p], upto, source, fingerprinted_only,
                     batch) for p in partners), key=lambda rec: rec.released_at)


def _node_wide(engine: sa.Engine) -> tuple[list[str], int]:
    """The partners holding release rows and the highest seq, read together: what a walk
    of every partner's range in seq order stops at.  Seqs are assigned under the node's
    write lock in commit order, so every row up to that seq is committed already and a
    walk up to it reads a whole prefix of the node's releases, as one query by seq did."""
    with reader(engine).connect() as conn:
        return released_partners(conn), last_seq(conn)


def _records(engine: sa.Engine, cond: list[sa.ColumnElement[bool]], upto: int | None,
             source: ViewSource | None, fingerprinted_only: bool, batch: int
             ) -> Iterator[ReleaseRecord]:
    r = releases.c
    if upto is not None:
        cond = [*cond, r.seq <= upto]
    cols = (r.partner, r.seq, r.view, r.view_hash, r.batch, r.withdrawn)
    after = -1
    while True:
        stmt = (sa.select(*cols).select_from(_joined()).where(*cond, r.seq > after)
                .order_by(r.seq).limit(batch))
        with reader(engine).connect() as conn:
            rows = conn.execute(stmt).all()
            cvs = load_views(conn, (int(x[2]) for x in rows))
        for who, seq, vid, digest, ledger_index, withdrawn in rows:
            cv = cvs[int(vid)]
            served = source.serve(cv, who, bytes(digest), record=True) \
                if source is not None else None
            if source is not None and served is None:
                continue  # does not derive to its logged bytes: no evidence of anything
            if fingerprinted_only and served is not None and served.fingerprint_id is None:
                continue
            yield ReleaseRecord(
                who, cv.object_id, cv.version, int(seq),
                served.view if served else cv.body,
                served.fingerprint_id if served else None,
                served.embed_record if served else None,
                None if ledger_index is None else int(ledger_index), bool(withdrawn),
                bytes(digest).hex())
        if len(rows) < batch:
            return
        after = int(rows[-1][1])


def released_versions(engine: sa.Engine, object_ids: Iterable[str]) -> set[tuple[str, str]]:
    """The (object id, version) of those objects released to any partner, ever: one
    lookup by the class views' UUID index per few hundred ids (echo detection asks this of
    each incoming page, by id: the versions of the page's objects are worked out only for
    the ids found).  A class view is kept only once released, so its row is the answer."""
    wanted = sorted(set(object_ids))
    found: set[tuple[str, str]] = set()
    with reader(engine).connect() as conn:
        for start in range(0, len(wanted), _IN_CHUNK):
            ids = set(wanted[start:start + _IN_CHUNK])
            stmt = (sa.select(object_id_of(views.c), views.c.version).distinct()
                    .where(object_in(views.c, ids)))
            found |= {(r[0], r[1]) for r in conn.execute(stmt) if r[0] in ids}
    return found


def iter_views_after(engine: sa.Engine, seq: int, batch: int = 1000
                     ) -> Iterator[tuple[str, bytes, int]]:
    """(partner, class view bytes, seq) of every release row after ``seq``, in seq order:
    what the trust engine indexes incrementally as "what we told whom" (the content, less
    the partner's fingerprint).  Each partner's range of the key, merged, up to the seq
    read first (see :func:`_node_wide`: a whole prefix, so a caller may resume after the
    last seq it got)."""
    partners, upto = _node_wide(engine)
    yield from heapq.merge(*(_views_of(engine, p, seq, upto, batch) for p in partners),
                           key=lambda row: row[2])


def _views_of(engine: sa.Engine, partner: str, seq: int, upto: int, batch: int
              ) -> Iterator[tuple[str, bytes, int]]:
    r = releases.c
    while True:
        stmt = (sa.select(r.partner, r.view, r.seq)
                .where(r.partner == partner, r.seq > seq, r.seq <= upto)
                .order_by(r.seq).limit(batch))
        with reader(engine).connect() as conn:
            rows = conn.execute(stmt).all()
            cvs = load_views(conn, (int(x[1]) for x in rows))
        for who, vid, s in rows:
            yield str(who), cvs[int(vid)].body, int(s)
        if len(rows) < batch:
            return
        seq = int(rows[-1][2])


def first_releases(conn: sa.Connection, object_ids: Iterable[str]) -> dict[tuple[str, str], int]:
    """(partner, object id) -> seq of the first release of any version of those objects to
    that partner, read in the caller's transaction (earned trust asks this of each intake
    batch: an object we released to a partner before it sent it back is an echo)."""
    wanted = sorted(set(object_ids))
    out: dict[tuple[str, str], int] = {}
    r, v = releases.c, views.c
    for start in range(0, len(wanted), _IN_CHUNK):
        oid = object_id_of(v)
        stmt = (sa.select(r.partner, oid, sa.func.min(r.seq)).select_from(_joined())
                .where(r.view.in_(views_of(wanted[start:start + _IN_CHUNK])))
                .group_by(r.partner, v.type, v.uuid))
        for partner, oid, seq in conn.execute(stmt):
            if seq is not None:
                out[(str(partner), str(oid))] = int(seq)
    return out


def released_ids(engine: sa.Engine, partner: str, object_ids: Iterable[str]) -> set[str]:
    """Those of ``object_ids`` of which any version was ever released to ``partner``
    (withdrawn ones too: it has seen them)."""
    wanted = sorted(set(object_ids))
    found: set[str] = set()
    r, v = releases.c, views.c
    with reader(engine).connect() as conn:
        for start in range(0, len(wanted), _IN_CHUNK):
            # by view, the partner compared on the rows found (see release.serve)
            stmt = sa.select(object_id_of(v)).distinct().select_from(_joined()).where(
                r.view.in_(views_of(wanted[start:start + _IN_CHUNK])), r.partner + "" == partner)
            found.update(row[0] for row in conn.execute(stmt))
    return found
