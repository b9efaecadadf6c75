"""The SQL store: one implementation for SQLite and PostgreSQL.

Reads go through SQLAlchemy Core.  The insert hot path uses the driver's ``executemany``
on the same transaction (SQLAlchemy adds ~10 µs a row there, a third of the budget).

``date_added`` is assigned under a write lock held to commit — ``BEGIN IMMEDIATE`` on
SQLite, a transaction-scoped advisory lock on PostgreSQL — as ``max(now, last + 1)``.  So
commit order equals ``date_added`` order and a reader paging by ``added_after`` can never
see a later version before an earlier one commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from detente.errors import StoreError, ValidationError
from detente.stix.model import StixObject
from detente.stix.timestamps import normalise, now_micros
from detente.store.base import (
    LOCAL,
    Outcome,
    Page,
    Provenance,
    PutResult,
    Query,
    StoredObject,
    VersionSelector,
)
from detente.store.engine import is_postgres, make_engine, reader, writer
from detente.store.schema import SCHEMA_VERSION, metadata, objects, store_meta
from detente.store.search import Find, Found, SearchIndex

log = logging.getLogger("detente.store")

__all__ = ["SqlStore", "open_store"]

_ADVISORY_LOCK = 0x64657465  # "dete"
_IN_CHUNK = 500
_COLUMNS = (
    "id, version, type, spec_version, created_by_ref, revoked, is_latest, is_first, "
    "date_added, digest, body, origin, received_at, signature, receipt, flags"
)


class _Known:
    """What is already stored for one id, as needed by the versioning rules."""

    __slots__ = ("creator", "first", "latest", "origins", "revoked_at", "versions")

    def __init__(self) -> None:
        self.versions: dict[str, bytes] = {}
        self.origins: dict[str, str] = {}
        self.creator: str | None = None
        self.latest: str | None = None
        self.first: str | None = None
        self.revoked_at: str | None = None

    def add(self, version: str, digest: bytes, creator: str | None, revoked: bool,
            origin: str) -> None:
        self.versions[version] = digest
        self.origins[version] = origin
        if self.creator is None:
            self.creator = creator
        if self.latest is None or version > self.latest:
            self.latest = version
        if self.first is None or version < self.first:
            self.first = version
        if revoked and (self.revoked_at is None or version < self.revoked_at):
            self.revoked_at = version


def _judge(obj: StixObject, known: _Known | None, prov: Provenance) -> tuple[Outcome, str | None]:
    """Apply the STIX versioning rules to one incoming version.

    Every partner's copy of a version is fingerprinted, so copies of one version that
    reached us by different routes differ.  The creator's own copy is authoritative: it
    replaces a copy relayed by another partner (reported, never silent); a relayed copy
    of a version we already hold is a duplicate by another route.  Two contents from the
    same non-creator route, or a differing copy of local material, are a conflict; the
    creator re-issuing its own copy (our view changed with our tier) replaces it."""
    if known is None:
        return Outcome.STORED, None
    stored = known.versions.get(obj.version)
    if stored is not None:
        if stored == obj.digest:
            return Outcome.DUPLICATE, None
        held_from = known.origins[obj.version]
        from_creator = prov.origin_identity is not None and \
            obj.created_by_ref == prov.origin_identity
        if from_creator and held_from not in (LOCAL, prov.origin):
            return Outcome.STORED, (
                f"the creator's own copy replaces the copy relayed by {held_from}")
        if from_creator and held_from == prov.origin:
            # the view a partner cuts for us changes with our tier (less redaction)
            return Outcome.STORED, "re-issued by its creator (our view of it changed)"
        if not from_creator and held_from not in (LOCAL, prov.origin):
            return Outcome.DUPLICATE, f"already held from {held_from} (another route's copy)"
        return Outcome.REJECTED, (
            f"version conflict: {obj.id} version {obj.body.get('modified', obj.version)} "
            "is already stored with different content"
        )
    if obj.created_by_ref != known.creator:
        return Outcome.REJECTED, (
            f"{obj.id}: a new version must come from its creator "
            f"({known.creator or 'no created_by_ref'}), not {obj.created_by_ref or 'none'}"
        )
    if known.revoked_at is not None and obj.version > known.revoked_at:
        return Outcome.REJECTED, f"{obj.id} is revoked: no new versions are accepted"
    return Outcome.STORED, None


class SqlStore:
    """STIX versions with provenance in SQLite or PostgreSQL."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._reader = reader(engine)
        self._pg = is_postgres(engine)
        self._ph = "%s" if self._pg else "?"
        self._search = SearchIndex(self._pg)

    # -- schema -----------------------------------------------------------------
    def create(self) -> None:
        """Create the tables (idempotent) and record the schema version."""
        try:
            metadata.create_all(writer(self.engine))
            with writer(self.engine).begin() as conn:
                row = conn.execute(
                    sa.select(store_meta.c.value).where(store_meta.c.key == "schema")
                ).first()
                if row is None:
                    conn.execute(store_meta.insert().values(key="schema", value=SCHEMA_VERSION))
                elif row[0] != SCHEMA_VERSION:
                    raise StoreError(
                        f"store schema {row[0]} is not the schema {SCHEMA_VERSION} "
                        "this detente expects"
                    )
                if not self._search.current(conn, store_meta):
                    self._search.rebuild(conn, store_meta, objects, _index_progress)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot create the store: {_short(exc)}") from None

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """A write transaction holding the node's date_added lock until commit."""
        try:
            with writer(self.engine).begin() as conn:
                if self._pg:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
                yield conn
        except OperationalError as exc:
            raise StoreError(f"store transaction failed: {_short(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()

    # -- writes ---------------------------------------------------------------------
    def put_many(
        self,
        objects_: Sequence[StixObject],
        provenance: Provenance,
        *,
        conn: sa.Connection | None = None,
    ) -> list[PutResult]:
        """Store a batch whole or not at all; duplicates and rule violations are
        reported per object and never abort the batch."""
        if conn is None:
            with self.transaction() as own:
                return self._put(own, objects_, provenance)
        return self._put(conn, objects_, provenance)

    def _put(
        self, conn: sa.Connection, batch: Sequence[StixObject], prov: Provenance
    ) -> list[PutResult]:
        known = self._load_known(conn, {o.id for o in batch})
        known_before = set(known)
        #: the batch's new latest versions, for the search index
        latest: dict[str, tuple[int, StixObject]] = {}
        clock = self._next_date_added(conn)
        flags = orjson.dumps(dict(prov.flags)).decode() if prov.flags else None
        rows: list[tuple[Any, ...]] = []
        results: list[PutResult] = []
        #: ids whose is_latest / is_first flags must be recomputed after the insert
        refresh: set[str] = set()
        replaced: list[tuple[str, str]] = []
        for index, obj in enumerate(batch):
            k = known.get(obj.id)
            outcome, reason = _judge(obj, k, prov)
            if outcome is not Outcome.STORED:
                results.append(PutResult(index, obj.id, obj.version, outcome, reason))
                continue
            if reason is not None:  # the creator's copy replaces a relayed one
                replaced.append((obj.id, obj.version))
                refresh.add(obj.id)
            clock += 1
            if k is None:
                k = known[obj.id] = _Known()
            had_versions = k.latest is not None
            k.add(obj.version, obj.digest, obj.created_by_ref, obj.revoked, prov.origin)
            is_latest, is_first = k.latest == obj.version, k.first == obj.version
            if had_versions and (is_latest or is_first):
                refresh.add(obj.id)  # an older row loses its flag
            if is_latest:
                latest[obj.id] = (clock, obj)
            rows.append((
                obj.id, obj.version, obj.type, obj.spec_version, obj.created_by_ref,
                obj.revoked, is_latest, is_first, clock, obj.digest, obj.raw,
                prov.origin, prov.received_at, prov.signature, prov.receipt, flags,
            ))
            results.append(PutResult(index, obj.id, obj.version, Outcome.STORED, reason, clock))
        for object_id, version in replaced:
            conn.execute(objects.delete().where(objects.c.id == object_id,
                                                objects.c.version == version))
        self._insert(conn, rows)
        for object_id in refresh:
            self._recompute_flags(conn, object_id)
        self._index_latest(conn, latest, set(known_before) | {i for i, _ in replaced}, prov)
        return results

    def _index_latest(self, conn: sa.Connection, latest: dict[str, tuple[int, StixObject]],
                      indexed: set[str], prov: Provenance) -> None:
        """Keep the search index on each object's latest version (store/search.py)."""
        rows = [(clock, obj.id, obj.type, prov.origin, obj.revoked, obj.body)
                for clock, obj in latest.values()]
        self._search.drop(conn, indexed & latest.keys())
        self._search.add(conn, rows, newest=True)

    def _insert(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self._pg:
            self._copy(conn, rows)
            return
        marks = ", ".join([self._ph] * 16)
        sql = f"INSERT INTO stix_objects ({_COLUMNS}) VALUES ({marks})"  # noqa: S608
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            cur.executemany(sql, rows)
        except Exception as exc:
            raise StoreError(f"cannot store the batch: {_short(exc)}") from None
        finally:
            cur.close()

    def _copy(self, conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL's bulk path: COPY is several times faster than pipelined INSERTs."""
        raw = conn.connection.driver_connection
        assert raw is not None
        try:
            with raw.cursor() as cur, cur.copy(
                    f"COPY stix_objects ({_COLUMNS}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except Exception as exc:
            raise StoreError(f"cannot store the batch: {_short(exc)}") from None

    def _recompute_flags(self, conn: sa.Connection, object_id: str) -> None:
        vs = [r[0] for r in conn.execute(
            sa.select(objects.c.version).where(objects.c.id == object_id)
        )]
        if not vs:
            return
        hi, lo = max(vs), min(vs)
        conn.execute(
            objects.update()
            .where(objects.c.id == object_id)
            .values(is_latest=objects.c.version == hi, is_first=objects.c.version == lo)
        )

    def _load_known(self, conn: sa.Connection, ids: set[str]) -> dict[str, _Known]:
        known: dict[str, _Known] = {}
        id_list = sorted(ids)
        cols = (objects.c.id, objects.c.version, objects.c.digest,
                objects.c.created_by_ref, objects.c.revoked, objects.c.origin)
        for start in range(0, len(id_list), _IN_CHUNK):
            chunk = id_list[start : start + _IN_CHUNK]
            for oid, version, digest, creator, revoked, origin in conn.execute(
                sa.select(*cols).where(objects.c.id.in_(chunk))
            ):
                known.setdefault(oid, _Known()).add(version, bytes(digest), creator, revoked,
                                                    origin)
        return known

    def _next_date_added(self, conn: sa.Connection) -> int:
        """The last date_added to build on: max(now - 1, stored max)."""
        last = conn.execute(sa.select(sa.func.max(objects.c.date_added))).scalar()
        now = now_micros() - 1
        return now if last is None or last < now else int(last)

    def set_flags(self, object_id: str, version: str, flags: Mapping[str, Any]) -> None:
        """Merge provenance flags (e.g. ``echo``) into one stored version."""
        with self.transaction() as conn:
            row = conn.execute(
                sa.select(objects.c.flags).where(
                    objects.c.id == object_id, objects.c.version == version
                )
            ).first()
            if row is None:
                raise StoreError(f"no stored version {version!r} of {object_id}")
            merged = orjson.loads(row[0]) if row[0] else {}
            merged.update(flags)
            conn.execute(
                objects.update()
                .where(objects.c.id == object_id, objects.c.version == version)
                .values(flags=orjson.dumps(merged).decode())
            )

    def delete(self, object_id: str, version: VersionSelector = "all") -> int:
        """Delete versions of an object (the local operator's TAXII DELETE)."""
        with self.transaction() as conn:
            cond = sa.and_(objects.c.id == object_id, _version_clause((version,)))
            n = conn.execute(objects.delete().where(cond)).rowcount
            self._recompute_flags(conn, object_id)
            self._search.refresh(conn, objects, [object_id])
            return int(n or 0)

    # -- reads ------------------------------------------------------------------------
    def get(self, object_id: str, version: VersionSelector = "last") -> StoredObject | None:
        page = self.list(Query(ids=(object_id,), versions=(version,), limit=1))
        return page.objects[0] if page.objects else None

    def versions(self, object_id: str) -> list[StoredObject]:
        return self.list(Query(ids=(object_id,), versions=("all",))).objects

    def list(self, query: Query) -> Page:
        stmt = sa.select(*_READ_COLS).where(*_conditions(query)).order_by(objects.c.date_added)
        if query.limit is not None:
            stmt = stmt.limit(query.limit + 1)
        try:
            with self._reader.connect() as conn:
                rows = conn.execute(stmt).all()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the store: {_short(exc)}") from None
        more = query.limit is not None and len(rows) > query.limit
        if more:
            rows = rows[: query.limit]
        found = [_row_to_stored(r) for r in rows]
        return Page(found, more, found[-1].date_added if found else None)

    def iter_all(self, query: Query, *, page_size: int = 1000) -> Iterator[StoredObject]:
        """Every match in date_added order, one page in memory at a time."""
        after = query.added_after
        while True:
            page = self.list(replace(query, added_after=after, limit=page_size))
            yield from page.objects
            if not page.more:
                return
            after = page.cursor

    def held(self, ids: Iterable[str], origins: tuple[str, ...] = ()) -> set[str]:
        """Those of ``ids`` with any stored version (from ``origins`` only, if given):
        ids only, no bodies read."""
        ordered = sorted(set(ids))
        found: set[str] = set()
        with self._reader.connect() as conn:
            for start in range(0, len(ordered), _IN_CHUNK):
                cond = [objects.c.id.in_(ordered[start:start + _IN_CHUNK])]
                if origins:
                    cond.append(objects.c.origin.in_(origins))
                found.update(r[0] for r in conn.execute(
                    sa.select(objects.c.id).distinct().where(*cond)))
        return found

    def last_added(self) -> int | None:
        """The newest date_added in the store (None when empty)."""
        with self._reader.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(objects.c.date_added))).scalar()
        return None if value is None else int(value)

    def find(self, query: Find) -> Found:
        """Search (``query.text``) or list the latest version of every object, filtered and
        paged: see :mod:`detente.store.search`."""
        try:
            with self._reader.connect() as conn:
                return self._search.find(conn, query)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot search the store: {_short(exc)}") from None

    def rebuild_search(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Rebuild the search index from the stored objects; returns how many it holds."""
        with self.transaction() as conn:
            return self._search.rebuild(conn, store_meta, objects, progress)

    def count(self) -> int:
        with self._reader.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(objects)).scalar() or 0)


_READ_COLS = (
    objects.c.id, objects.c.type, objects.c.version, objects.c.spec_version,
    objects.c.created_by_ref, objects.c.revoked, objects.c.date_added, objects.c.body,
    objects.c.origin, objects.c.received_at, objects.c.signature, objects.c.receipt,
    objects.c.flags,
)


def _row_to_stored(r: Any) -> StoredObject:
    prov = Provenance(
        origin=r.origin, received_at=r.received_at, signature=r.signature,
        receipt=r.receipt, flags=orjson.loads(r.flags) if r.flags else {},
    )
    return StoredObject(
        id=r.id, type=r.type, version=r.version, spec_version=r.spec_version,
        created_by_ref=r.created_by_ref, revoked=bool(r.revoked),
        date_added=int(r.date_added), raw=bytes(r.body), provenance=prov,
    )


def _version_clause(selectors: Sequence[str]) -> sa.ColumnElement[bool]:
    parts: list[sa.ColumnElement[bool]] = []
    exact: list[str] = []
    for sel in selectors:
        if sel == "all":
            return sa.true()
        if sel == "last":
            parts.append(objects.c.is_latest.is_(True))
        elif sel == "first":
            parts.append(objects.c.is_first.is_(True))
        else:
            exact.append(normalise(sel, field="version"))
    if exact:
        parts.append(objects.c.version.in_(exact))
    if not parts:
        raise ValidationError("no version selector given")
    return sa.or_(*parts)


def _conditions(q: Query) -> list[sa.ColumnElement[bool]]:
    cond: list[sa.ColumnElement[bool]] = [_version_clause(q.versions or ("last",))]
    if q.types:
        cond.append(objects.c.type.in_(q.types))
    if q.ids:
        cond.append(objects.c.id.in_(q.ids))
    if q.spec_versions:
        cond.append(objects.c.spec_version.in_(q.spec_versions))
    if q.origins:
        cond.append(objects.c.origin.in_(q.origins))
    if q.added_after is not None:
        cond.append(objects.c.date_added > q.added_after)
    return cond


def _index_progress(done: int, total: int) -> None:
    if total >= 20_000 and (done % 100_000 < 2000 or done == total):
        log.warning("building the search index: %s of %s objects", f"{done:,}", f"{total:,}")


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def open_store(url: str, *, create: bool = False) -> SqlStore:
    """Open the store at ``url``; ``create`` makes the tables if missing."""
    store = SqlStore(make_engine(url))
    if create:
        store.create()
    else:
        try:
            with store.engine.connect() as conn:
                conn.execute(sa.select(store_meta.c.value).limit(1))
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot open the store at {url}: {_short(exc)}",
                hint="is this a detente node home? run 'detente init' first",
            ) from None
    return store
