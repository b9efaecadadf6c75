"""Release records as evidence: what leak attribution and the trust engine read back."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from detente.release.schema import releases
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
    ledger_index: int | None
    withdrawn: bool

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


def iter_release_records(
    engine: sa.Engine, *, partner: str | None = None, include_withdrawn: bool = True,
    fingerprinted_only: bool = False, batch: int = 2000,
) -> Iterator[ReleaseRecord]:
    """Every release row (withdrawn ones too by default: a leak may predate withdrawal)."""
    cond: list[sa.ColumnElement[bool]] = []
    if partner is not None:
        cond.append(releases.c.partner == partner)
    if not include_withdrawn:
        cond.append(releases.c.withdrawn.is_(False))
    if fingerprinted_only:
        cond.append(releases.c.embed_record.is_not(None))
    cols = (releases.c.partner, releases.c.object_id, releases.c.version, releases.c.seq,
            releases.c.view, releases.c.fingerprint_id, releases.c.embed_record,
            releases.c.ledger_index, releases.c.withdrawn)
    after = -1
    while True:
        stmt = (sa.select(*cols).where(*cond, releases.c.seq > after)
                .order_by(releases.c.seq).limit(batch))
        with reader(engine).connect() as conn:
            rows = conn.execute(stmt).all()
        for r in rows:
            yield ReleaseRecord(r[0], r[1], r[2], int(r[3]), bytes(r[4]), r[5], r[6],
                                None if r[7] is None else int(r[7]), bool(r[8]))
        if len(rows) < batch:
            return
        after = int(rows[-1][3])


def released_versions(engine: sa.Engine, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of ``keys`` (object id, version) released to any partner, ever: one indexed
    lookup per few hundred keys (echo detection asks this of each incoming page)."""
    wanted = sorted(set(keys))
    found: set[tuple[str, str]] = set()
    with reader(engine).connect() as conn:
        for start in range(0, len(wanted), _IN_CHUNK):
            chunk = wanted[start:start + _IN_CHUNK]
            ids = {oid for oid, _ in chunk}
            stmt = (sa.select(releases.c.object_id, releases.c.version).distinct()
                    .where(releases.c.object_id.in_(ids)))
            found |= {(r[0], r[1]) for r in conn.execute(stmt)} & set(chunk)
    return found


def iter_views_after(engine: sa.Engine, seq: int, batch: int = 1000
                     ) -> Iterator[tuple[str, bytes, int]]:
    """(partner, view bytes, seq) of every release row after ``seq``, in seq order: what
    the trust engine indexes incrementally as "what we told whom"."""
    while True:
        stmt = (sa.select(releases.c.partner, releases.c.view, releases.c.seq)
                .where(releases.c.seq > seq).order_by(releases.c.seq).limit(batch))
        with reader(engine).connect() as conn:
            rows = conn.execute(stmt).all()
        for partner, view, s in rows:
            yield str(partner), bytes(view), int(s)
        if len(rows) < batch:
            return
        seq = int(rows[-1][2])


def first_releases(conn: sa.Connection, object_ids: Iterable[str]) -> dict[tuple[str, str], int]:
    """(partner, object id) -> seq of the first release of any version of those objects to
    that partner, read in the caller's transaction (earned trust asks this of each intake
    batch: an object we released to a partner before it sent it back is an echo)."""
    wanted = sorted(set(object_ids))
    out: dict[tuple[str, str], int] = {}
    r = releases.c
    for start in range(0, len(wanted), _IN_CHUNK):
        stmt = (sa.select(r.partner, r.object_id, sa.func.min(r.seq))
                .where(r.object_id.in_(wanted[start:start + _IN_CHUNK]))
                .group_by(r.partner, r.object_id))
        for partner, oid, seq in conn.execute(stmt):
            if seq is not None:
                out[(str(partner), str(oid))] = int(seq)
    return out


def released_ids(engine: sa.Engine, partner: str, object_ids: Iterable[str]) -> set[str]:
    """Those of ``object_ids`` of which any version was ever released to ``partner``
    (withdrawn ones too: it has seen them)."""
    wanted = sorted(set(object_ids))
    found: set[str] = set()
    with reader(engine).connect() as conn:
        for start in range(0, len(wanted), _IN_CHUNK):
            stmt = sa.select(releases.c.object_id).distinct().where(
                releases.c.partner == partner,
                releases.c.object_id.in_(wanted[start:start + _IN_CHUNK]))
            found.update(r[0] for r in conn.execute(stmt))
    return found
