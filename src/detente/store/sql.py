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
    is_partner_origin,
)
from detente.store.engine import Statistics, among, is_postgres, make_engine, reader, writer
from detente.store.schema import (
    REF_PROPERTIES,
    SCHEMA_VERSION,
    metadata,
    objects,
    refs,
    store_meta,
)
from detente.store.search import DOC_FIELDS, Find, Found, SearchIndex, search_docs

log = logging.getLogger("detente.store")

__all__ = ["CORRECTED", "SqlStore", "open_store"]

#: ids per IN list when reading objects by id in chunks
_IN_CHUNK = 500

_ADVISORY_LOCK = 0x64657465  # "dete"
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


#: the reason of a version stored as a correction (its stored body is replaced)
CORRECTED = "correction: same version, new content from the same source"


def _judge(obj: StixObject, known: _Known | None, prov: Provenance) -> tuple[Outcome, str | None]:
    """Apply the STIX versioning rules to one incoming version.

    Every partner's copy of a version is fingerprinted, so copies of one version that
    reached us by different routes differ.  The creator's own copy is authoritative: it
    replaces a copy relayed by another partner (reported, never silent); a relayed copy
    of a version we already hold is a duplicate by another route.  Two contents from the
    same non-creator route, or a differing copy of local material, are a conflict; the
    creator re-issuing its own copy (our view changed with our tier) replaces it.  A
    local import or a feed sending other content for a version it sent before is a
    conflict too, unless the provenance accepts corrections: it then replaces the body
    (material created on this node and a partner's copies are never corrected)."""
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
        correctable = held_from == prov.origin and held_from != LOCAL and \
            not is_partner_origin(held_from)
        if correctable and prov.accept_corrections:
            return Outcome.STORED, CORRECTED
        return Outcome.REJECTED, (
            f"version conflict: {obj.id} version {obj.body.get('modified', obj.version)} "
            "is already stored with different content" + (
                "; if its source corrected it without a new version, accept the "
                "correction with --accept-corrections" if correctable else "")
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
        #: versions written by transactions not yet ended, and the planner's statistics
        #: of the tables they grow (PostgreSQL; see Statistics)
        self._written = 0
        self._statistics = Statistics(engine, (objects.name, search_docs.name, refs.name))

    # -- schema -----------------------------------------------------------------
    def create(self) -> None:
        """Create the tables (idempotent) and record the schema version."""
        try:
            had_refs = sa.inspect(self.engine).has_table(refs.name)
            metadata.create_all(writer(self.engine))
            with writer(self.engine).begin() as conn:
                if not had_refs:  # a store made before the index: index what it holds
                    self._backfill_refs(conn)
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

    def current(self) -> bool:
        """Whether :meth:`create` has nothing to do: every table there, the schema version
        this code expects, the reference and search indexes built (reads only)."""
        try:
            with self._reader.connect() as conn:
                present = set(sa.inspect(conn).get_table_names())
                if not set(metadata.tables) <= present:
                    return False
                row = conn.execute(sa.select(store_meta.c.value).where(
                    store_meta.c.key == "schema")).first()
                return (row is not None and row[0] == SCHEMA_VERSION
                        and self._search.current(conn, store_meta))
        except SQLAlchemyError:
            return False  # create() says what is wrong

    def holds_tables(self) -> bool:
        """Whether the database already holds a store's tables (a node's, or one being
        made); raises StoreError when the database cannot be reached."""
        try:
            present = set(sa.inspect(self.engine).get_table_names())
        except SQLAlchemyError as exc:
            shown = self.engine.url.render_as_string(hide_password=True)
            raise StoreError(f"cannot reach the store at {shown}: {_short(exc)}") from None
        return bool(present & set(metadata.tables))

    def owner(self) -> str | None:
        """The node this store belongs to (its STIX identity), or None if none claimed it."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(store_meta.c.value).where(store_meta.c.key == "node")).first()
        return None if row is None else str(row[0])

    def claim(self, node_identity: str) -> None:
        """Record the node this store belongs to; a store claimed by another node is
        refused (two homes must never read one database's objects as their own)."""
        with writer(self.engine).begin() as conn:
            row = conn.execute(
                sa.select(store_meta.c.value).where(store_meta.c.key == "node")).first()
            if row is None:
                conn.execute(store_meta.insert().values(key="node", value=node_identity))
            elif row[0] != node_identity:
                raise StoreError(f"this store belongs to another node ({row[0]})")

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
        finally:
            written, self._written = self._written, 0
        self._statistics.wrote(written)

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
        in_batch: set[tuple[str, str]] = set()
        for index, obj in enumerate(batch):
            k = known.get(obj.id)
            outcome, reason = _judge(obj, k, prov)
            if outcome is Outcome.STORED and (obj.id, obj.version) in in_batch:
                outcome, reason = Outcome.REJECTED, (
                    f"{obj.id} version {obj.body.get('modified', obj.version)} appears "
                    "twice in one batch with different content")
            if outcome is not Outcome.STORED:
                results.append(PutResult(index, obj.id, obj.version, outcome, reason))
                continue
            if reason is not None:  # the creator's copy replaces a relayed one
                replaced.append((obj.id, obj.version))
                refresh.add(obj.id)
            clock += 1
            in_batch.add((obj.id, obj.version))
            corrected = reason == CORRECTED
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
            results.append(PutResult(index, obj.id, obj.version, Outcome.STORED, reason, clock,
                                     corrected))
        for object_id, version in replaced:
            conn.execute(objects.delete().where(objects.c.id == object_id,
                                                objects.c.version == version))
        self._insert(conn, rows)
        self._written += len(rows)
        referring = [o for o in batch if o.type in REF_PROPERTIES]
        if referring:  # relationships and sightings only (none in most batches)
            self._index_refs(conn, referring, {(r.id, r.version) for r in results
                                               if r.outcome is Outcome.STORED})
        for object_id in refresh:
            self._recompute_flags(conn, object_id)
        self._index_latest(conn, latest, set(known_before) | {i for i, _ in replaced}, prov)
        return results

    def _index_latest(self, conn: sa.Connection, latest: dict[str, tuple[int, StixObject]],
                      indexed: set[str], prov: Provenance) -> None:
        """Keep the search index on each object's latest version (store/search.py)."""
        rows = [(clock, obj.id, obj.type, prov.origin, obj.revoked, obj.body)
                for clock, obj in latest.values()]
        ahead = [obj.ahead.get(DOC_FIELDS) if obj.ahead else None for _, obj in latest.values()]
        self._search.drop(conn, indexed & latest.keys())
        self._search.add(conn, rows, newest=True, ahead=ahead)

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

    @staticmethod
    def _refs_of(type_: str, body: Mapping[str, Any]) -> set[str]:
        names = {body.get(p) for p in REF_PROPERTIES.get(type_, ())}
        return {n for n in names if isinstance(n, str) and n}

    def _index_refs(self, conn: sa.Connection, candidates: Sequence[StixObject],
                    stored: set[tuple[str, str]]) -> None:
        """Index the references of the relationships and sightings just stored."""
        self._insert_refs(conn, {(ref, o.id) for o in candidates
                                 if (o.id, o.version) in stored
                                 for ref in self._refs_of(o.type, o.body)})

    def _insert_refs(self, conn: sa.Connection, rows: set[tuple[str, str]]) -> None:
        if not rows:
            return
        # the driver's executemany on the same transaction, as _insert (SQLAlchemy's costs
        # ~10 µs a row)
        raw = conn.connection.driver_connection
        assert raw is not None
        cur = raw.cursor()
        try:
            cur.executemany("INSERT INTO stix_refs (ref, id) VALUES "  # noqa: S608
                            f"({self._ph}, {self._ph}) ON CONFLICT DO NOTHING", sorted(rows))
        except Exception as exc:
            raise StoreError(f"cannot index the batch's references: {_short(exc)}") from None
        finally:
            cur.close()

    def _backfill_refs(self, conn: sa.Connection) -> None:
        last: int | None = None
        while True:
            stmt = (sa.select(objects.c.id, objects.c.type, objects.c.version,
                              objects.c.body, objects.c.date_added)
                    .where(objects.c.type.in_(sorted(REF_PROPERTIES)))
                    .order_by(objects.c.date_added).limit(5000))
            if last is not None:
                stmt = stmt.where(objects.c.date_added > last)
            batch = conn.execute(stmt).all()
            if not batch:
                return
            self._insert_refs(conn, {(ref, oid) for oid, type_, _v, body, _ in batch
                                     for ref in self._refs_of(type_, orjson.loads(body))})
            last = int(batch[-1].date_added)

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
        if not ids:
            return known
        cols = (objects.c.id, objects.c.version, objects.c.digest,
                objects.c.created_by_ref, objects.c.revoked, objects.c.origin)
        for oid, version, digest, creator, revoked, origin in conn.execute(
            sa.select(*cols).where(among(objects.c.id, sorted(ids), postgres=self._pg))
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
            if not conn.execute(sa.select(objects.c.id).where(
                    objects.c.id == object_id).limit(1)).first():
                conn.execute(refs.delete().where(refs.c.id == object_id))  # rare: a scan
            self._recompute_flags(conn, object_id)
            self._search.refresh(conn, objects, [object_id])
            return int(n or 0)

    # -- reads ------------------------------------------------------------------------
    def get(self, object_id: str, version: VersionSelector = "last") -> StoredObject | None:
        # no LIMIT: with one, a planner without statistics may walk the date_added index
        # looking for the id (PostgreSQL, 0.75 s at 1M objects); without, it reads the id's
        # few versions by the primary key on any statistics
        page = self.list(Query(ids=(object_id,), versions=(version,)))
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
        if not ordered:
            return found
        cond = [among(objects.c.id, ordered, postgres=self._pg)]
        if origins:
            cond.append(objects.c.origin.in_(origins))
        with self._reader.connect() as conn:
            found.update(r[0] for r in conn.execute(
                sa.select(objects.c.id).distinct().where(*cond)))
        return found

    def held_versions(self, ids: Iterable[str]) -> dict[str, dict[str, str]]:
        """Those of ``ids`` with any stored version, each with its versions and the origin
        of each: one read by key that answers "held at all?", "held from whom?" and "this
        version held?" for a whole page (the intake path asks all three)."""
        ordered = sorted(set(ids))
        found: dict[str, dict[str, str]] = {}
        if not ordered:
            return found
        with self._reader.connect() as conn:
            for oid, version, origin in conn.execute(
                    sa.select(objects.c.id, objects.c.version, objects.c.origin).where(
                        among(objects.c.id, ordered, postgres=self._pg))):
                found.setdefault(oid, {})[version] = origin
        return found

    def referring(self, object_id: str, types: tuple[str, ...],
                  limit: int = 500) -> tuple[StoredObject, ...]:
        """Latest versions of ``types`` that refer to ``object_id`` — a relationship's
        ``source_ref``/``target_ref``, a sighting's ``sighting_of_ref`` — oldest first, at
        most ``limit``: one indexed read (``stix_refs``, kept by ``put_many``; a store made
        before it is indexed once by ``create``).  A version that no longer names the
        object is left out."""
        try:
            with self._reader.connect() as conn:
                ids = [r[0] for r in conn.execute(sa.select(refs.c.id).where(
                    refs.c.ref == object_id).order_by(refs.c.id))]
                # two reads by key; the type is checked here, since SQLite's planner would
                # otherwise drive the read from the type index (every relationship)
                rows = [row for start in range(0, len(ids), _IN_CHUNK)
                        for row in conn.execute(
                            sa.select(*_READ_COLS).where(*_conditions(Query(
                                ids=tuple(ids[start:start + _IN_CHUNK])))))
                        if row.type in types]
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the store: {_short(exc)}") from None
        rows.sort(key=lambda r: r.date_added)
        found = (_row_to_stored(r) for r in rows)
        # an earlier version may have named the object where the latest does not
        return tuple(o for o in found
                     if object_id in self._refs_of(o.type, o.body))[:limit]

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
