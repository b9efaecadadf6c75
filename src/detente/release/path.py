"""The release path: policy → view → fingerprint → ledger entry → served.

Releases are materialised: for each partner, every stored object version is evaluated
once (``catch_up``), and an allowed one becomes a release row — the partner, the class
view it was cut from (kept once per distinct view, shared by the partners it went to), the
SHA-256 of the exact fingerprinted bytes the partner is served, and the ledger index of the
release batch that logs it — written in the same transaction as that batch, so no view is
ever served without its entry.  The served bytes are derived again from the class view
when read (``release.views``), and checked against the logged hash.  When an input of the
policy changes (tier, caps, communities, markings) ``reevaluate`` re-decides everything
released or denied to that partner: newly allowed versions are released, views that
changed are replaced, views now denied are withdrawn.  TAXII serves only rows not
withdrawn, so what a partner can fetch always equals what ``policy matrix`` says.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from detente.errors import NotFoundError
from detente.partners import Partner, PartnerBook
from detente.policy import decide, support_view
from detente.policy.model import Decision, NodeContext, Recipient
from detente.release.classes import (
    ANONYMOUS,
    EVERYONE,
    ClassMemo,
    Shared,
    class_key,
    named,
    owners_of,
    strings_of,
)
from detente.release.ids import object_id_of, object_in, object_uuid
from detente.release.schema import batches, chunks, cursors, releases, views
from detente.release.views import CODEC_ZLIB, Embedder, ViewSource, pack, register
from detente.stix.timestamps import now_micros
from detente.store.base import LOCAL, Query, Store, StoredObject
from detente.store.engine import Statistics, insert_rows

__all__ = ["BATCH", "CatchUpStep", "Embedder", "ReleaseRun", "Releaser", "SupportsAppend",
           "release_entry", "view_hash"]

BATCH = 500


class SupportsAppend(Protocol):
    """What the release path needs of the ledger."""

    def append_many(self, entries: Any, conn: sa.Connection | None = None) -> range: ...


#: object id -> the only partners it may still go to (read once per run): the node's
#: refuted reports, withheld from everyone but, by its setting, our opinion's audience
Holds = Callable[[], Mapping[str, frozenset[str]]]


def view_hash(view: bytes) -> str:
    return hashlib.sha256(view).hexdigest()


#: denials a run keeps as examples (the count is exact; the reasons of every denial are
#: for `policy explain`, not for a run's memory)
DENIAL_EXAMPLES = 50


@dataclass
class ReleaseRun:
    """What one run did for one partner: counts, and the first denials as examples."""

    partner: str
    evaluated: int = 0
    released: int = 0
    denied: int = 0
    withdrawn: int = 0
    replaced: int = 0
    denials: list[tuple[str, str]] = field(default_factory=list)

    def deny(self, object_id: str, reasons: Iterable[str]) -> None:
        self.denied += 1
        if len(self.denials) < DENIAL_EXAMPLES:
            self.denials.append((object_id, "; ".join(reasons)))

    def add(self, other: ReleaseRun) -> None:
        self.evaluated += other.evaluated
        self.released += other.released
        self.denied += other.denied
        self.withdrawn += other.withdrawn
        self.replaced += other.replaced
        self.denials += other.denials[: max(0, DENIAL_EXAMPLES - len(self.denials))]


@dataclass(frozen=True, slots=True)
class CatchUpStep:
    """One chunk of a catch-up: what it did and the cursor to continue from."""

    run: ReleaseRun
    cursor: int | None
    #: nothing is left after ``cursor`` (or the partner is gone)
    done: bool
    #: the chunk was dropped (another releaser moved the cursor, or the partner's policy
    #: inputs changed meanwhile) and must be evaluated again from ``cursor``
    retried: bool = False


class _Commit(enum.Enum):
    DONE = "done"
    LOST = "lost"  # the cursor moved: another releaser committed this range
    STALE = "stale"  # the partner's policy inputs changed while the chunk was decided
    PARTNER_GONE = "partner gone"


@dataclass(frozen=True, slots=True)
class _Row:
    stored: StoredObject
    decision: Decision
    #: the class view (the policy's cut, before fingerprinting) and the partner's bytes
    body: bytes
    view: bytes
    #: served through the fingerprinter (False: support copies, served as they are)
    marked: bool


class Releaser:
    """Releases object versions to partners under the node's policy."""

    def __init__(
        self,
        store: Store,
        partners: PartnerBook,
        *,
        node_name: str,
        node_identity: str,
        communities: frozenset[str],
        default_tlp: str | None,
        ledger: SupportsAppend | None = None,
        embedder: Embedder | None = None,
        holds: Holds | None = None,
    ) -> None:
        self.store = store
        self.partners = partners
        self.node_name = node_name
        self.node_identity = node_identity
        self.communities = communities
        self.default_tlp = default_tlp or None
        self.ledger = ledger
        self.embedder = embedder
        #: derives each partner's view from its class view, for the path and for readers
        self.views = ViewSource(embedder)
        register(store.engine, self.views)
        self.holds = holds
        #: decisions shared within policy classes (bounded; see release.classes)
        self._memo = ClassMemo()
        #: the planner's statistics of the release tables, kept as they grow (PostgreSQL;
        #: without them it guessed 25 rows per object id and hashed every release row
        #: once per chunk)
        self._statistics = Statistics(store.engine, (releases.name, views.name))

    # -- policy inputs -------------------------------------------------------------
    def recipient(self, partner: Partner) -> Recipient:
        return Recipient(partner.name, partner.identity_id, partner.communities,
                         self.partners.tier_of(partner))

    def _markings(self) -> dict[str, Mapping[str, Any]]:
        found = self.store.iter_all(Query(types=("marking-definition",), versions=("last",)))
        return {o.id: o.body for o in found}

    def _judges(self, partners: list[Partner], *, by_class: bool = False) -> list[_Judge]:
        """Policy inputs read once per run (markings, partner identities, tiers).
        ``by_class``: decisions are shared within policy classes (see
        :mod:`detente.release.classes`) — what catch-up and re-evaluation use."""
        markings = self._markings()
        everyone = self.partners.all()
        ids = {p.name: p.identity_id for p in everyone if p.identity_id}
        held = self.holds() if self.holds is not None else {}
        sharing = None
        if by_class:
            generation = (
                self.store.last_added(),
                tuple(sorted((m, str(b.get("modified"))) for m, b in markings.items())),
                tuple(sorted((p.name, p.identity_id or "") for p in everyone)),
            )
            owners = owners_of((p.name, (p.identity_id,)) for p in everyone)
            sharing = _Sharing(self._memo, generation, owners)
        return [_Judge(self, p, markings, ids, sharing=sharing, held=held) for p in partners]

    def decide_by_class(self, obj: StoredObject, partners: list[Partner]) -> list[Decision]:
        """The decisions of one stored version for ``partners`` as catch-up takes them:
        shared within policy classes.  Always equal to :meth:`decide` for each partner
        (``docs/policy.md``, "Policy classes"; a property test holds it to that)."""
        return [j.decide(obj) for j in self._judges(partners, by_class=True)]

    def decide(self, obj: StoredObject, partner: Partner) -> Decision:
        """The policy decision for one stored version and one partner, with reasons."""
        return self._judges([partner])[0].decide(obj)

    def matrix(self, object_id: str) -> list[tuple[Partner, Decision]]:
        obj = self.store.get(object_id)
        if obj is None:
            raise NotFoundError(f"no object {object_id} in this node")
        return [(j.partner, j.decide(obj)) for j in self._judges(self.partners.all())]

    def recipients_of(self, object_id: str, *, live: bool = False) -> set[str]:
        """Every partner any version of ``object_id`` was ever released to (withdrawn
        releases included: they held it), or with ``live`` those holding a live view."""
        stmt = sa.select(releases.c.partner).distinct().select_from(
            releases.join(views, releases.c.view == views.c.id)).where(
            object_in(views.c, [object_id]))
        if live:
            stmt = stmt.where(releases.c.withdrawn.is_(False))
        with self.store.engine.connect() as conn:
            return {str(r[0]) for r in conn.execute(stmt)}

    def withdraw_held(self, object_id: str) -> dict[str, ReleaseRun]:
        """Re-decide every live view of ``object_id`` now that it is held back
        (:data:`Holds`): views now denied are withdrawn (ledger ``withdrawal`` entries),
        as ``reissue`` does for a corrected body."""
        page = self.store.list(Query(ids=(object_id,), versions=("all",)))
        return self.reissue([(o.id, o.version) for o in page.objects])

    # -- releasing ----------------------------------------------------------------
    def catch_up(self, partner_name: str, *,
                 on_progress: Callable[[ReleaseRun], None] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> ReleaseRun:
        """Evaluate every version stored since the last run for this partner, one chunk
        (:data:`BATCH` versions, one transaction) at a time: memory holds one chunk, and a
        process killed at any moment leaves whole chunks behind, the cursor after the last.
        ``on_progress`` gets the running totals after each chunk; ``should_stop`` ends the
        run between chunks (the rest is released by the next run)."""
        partner = self.partners.get(partner_name)
        run = ReleaseRun(partner.name)
        cursor = self._cursor(partner.name)
        while should_stop is None or not should_stop():
            step = self.catch_up_from(partner.name, cursor)
            run.add(step.run)
            if step.done:
                break
            cursor = step.cursor
            if on_progress is not None:
                on_progress(run)
        return run

    def catch_up_from(self, partner_name: str, cursor: int | None,
                      limit: int = BATCH) -> CatchUpStep:
        """Catch ``partner`` up by one chunk: the next ``limit`` versions stored after
        ``cursor``, evaluated and committed in one transaction that moves the partner's
        cursor from ``cursor`` to the chunk's last ``date_added`` — compare-and-set, so two
        releasers (threads, processes, or a later database-held work claim) never release
        the same range twice; the loser's chunk is discarded and it continues from the
        cursor it finds.  The chunk is also discarded when the partner's policy inputs
        (tier, communities, identity) changed while it was being evaluated: it is then
        decided again under the new inputs, so a view is never released under a tier the
        partner no longer holds (``reevaluate`` covers everything before the cursor)."""
        # (1) the chunk: versions after the cursor, in date_added order
        page = self.store.list(Query(versions=("all",), added_after=cursor, limit=limit))
        if not page.objects:
            return CatchUpStep(ReleaseRun(partner_name), cursor, done=True)
        partner = self.partners.get(partner_name)
        run = ReleaseRun(partner.name)
        # (2) policy inputs read now (markings, tier), decided per version, cut and embedded
        [judge] = self._judges([partner], by_class=True)
        rows = self._evaluate(page.objects, judge, run)
        rows += self._support_rows(rows, judge, self._released_markings(partner.name))
        # (3) one transaction: CAS on the cursor, same policy inputs, ledger + rows
        new = page.objects[-1].date_added
        outcome = self._commit(partner, rows, [], (cursor, new), judge.recipient)
        if outcome is _Commit.DONE:
            return CatchUpStep(run, new, done=False)
        if outcome is _Commit.PARTNER_GONE:
            return CatchUpStep(ReleaseRun(partner.name), cursor, done=True)
        # lost the race (another releaser moved the cursor) or the inputs changed: the
        # chunk is dropped; carry on from the cursor as it is now
        return CatchUpStep(ReleaseRun(partner.name), self._cursor(partner.name), done=False,
                           retried=True)

    def pending(self, partner_name: str) -> bool:
        """Whether any stored version is after this partner's cursor (one indexed read)."""
        cursor = self._cursor(partner_name)
        last = self.store.last_added()
        return last is not None and (cursor is None or last > cursor)

    def cursors(self) -> dict[str, int]:
        """Every partner's cursor (store date_added evaluated up to)."""
        with self.store.engine.connect() as conn:
            return {str(r[0]): int(r[1]) for r in conn.execute(
                sa.select(cursors.c.partner, cursors.c.evaluated_to))}

    def _released_markings(self, partner: str) -> set[str]:
        """Marking definitions live at ``partner``: from the (few) marking views, each
        probed by view (see :func:`_held`) — not a scan of every release row of the
        partner, which cost two thirds of the releaser's time at 1M objects."""
        r, v = releases.c, views.c
        marking_views = sa.select(v.id).where(v.type == "marking-definition")
        stmt = sa.select(object_id_of(v), r.partner, r.withdrawn).select_from(
            releases.join(views, v.id == r.view)).where(r.view.in_(marking_views))
        with self.store.engine.connect() as conn:
            return {row[0] for row in _held(conn, stmt, partner)}

    def _support_rows(self, rows: list[_Row], judge: _Judge, released: set[str]) -> list[_Row]:
        """Marking definitions a released view references, released with it: the
        recipient needs them to honour the handling rules.  Each is the recipient's own
        copy (``policy.support_view``): same id, audience cut to the recipient."""
        needed: list[str] = []
        released.update(r.stored.id for r in rows if r.stored.type == "marking-definition")
        for row in rows:
            assert row.decision.view is not None
            for ref in _marking_refs(row.decision.view):  # fingerprints keep every ref
                if ref not in released and ref not in needed:
                    needed.append(ref)
        support: list[_Row] = []
        for ref in needed:
            obj = self.store.get(ref)
            if obj is None:
                continue
            released.add(ref)
            copy = judge.support_row(obj)
            if copy is not None:
                support.append(copy)
        return support

    def reevaluate(self, partner_name: str, *,
                   on_progress: Callable[[ReleaseRun], None] | None = None) -> ReleaseRun:
        """Re-decide everything evaluated so far for a partner after a policy input
        changed, one chunk at a time: the chunk's live views are read for the chunk only,
        so memory holds one chunk whatever the number of releases.  The partner's cursor is
        read again before each chunk, so versions a concurrent catch-up committed under the
        old inputs before the change are re-decided too; later ones that catch-up had
        evaluated under the old inputs are refused at its commit (see ``catch_up_from``)."""
        partner = self.partners.get(partner_name)
        run = ReleaseRun(partner.name)
        [judge] = self._judges([partner], by_class=True)
        after: int | None = None
        while True:
            evaluated_to = self._cursor(partner.name)
            if evaluated_to is None:
                break
            page = self.store.list(Query(versions=("all",), added_after=after, limit=BATCH))
            chunk = [o for o in page.objects if o.date_added <= evaluated_to]
            if not chunk:
                break
            current = self._live_views(partner.name, chunk)
            rows, withdraw = self._reconcile(chunk, judge, current, run)
            rows += self._support_rows(rows, judge, self._released_markings(partner.name))
            self._commit(partner, rows, withdraw, None)
            judge.forget()
            after = chunk[-1].date_added
            if on_progress is not None:
                on_progress(run)
        return run

    def reissue(self, keys: Sequence[tuple[str, str]]) -> dict[str, ReleaseRun]:
        """Re-cut the live views of versions whose stored body was corrected in place
        (same id and version, new content — ``ingest --accept-corrections``): for each
        partner holding a view of one, the view is decided again on the corrected body,
        the stale view withdrawn and the new one released in one commit (withdrawn only,
        if the partner may no longer see it).  Versions no partner holds are left to the
        next catch-up (a corrected version is stored with a new ``date_added``)."""
        wanted = set(keys)
        ids = sorted({oid for oid, _ in wanted})
        objs: list[StoredObject] = []
        for start in range(0, len(ids), 500):
            page = self.store.list(Query(ids=tuple(ids[start:start + 500]),
                                         versions=("all",)))
            objs += [o for o in page.objects if (o.id, o.version) in wanted]
        out: dict[str, ReleaseRun] = {}
        if not objs:
            return out
        for partner in self.partners.all():
            current = self._live_views(partner.name, objs)
            chunk = [o for o in objs if (o.id, o.version) in current]
            if not chunk:
                continue
            run = ReleaseRun(partner.name)
            [judge] = self._judges([partner])
            rows, withdraw = self._reconcile(chunk, judge, current, run)
            rows += self._support_rows(rows, judge, self._released_markings(partner.name))
            self._commit(partner, rows, withdraw, None)
            out[partner.name] = run
        return out

    def _evaluate(self, chunk: list[StoredObject], judge: _Judge,
                  run: ReleaseRun) -> list[_Row]:
        rows: list[_Row] = []
        for obj in chunk:
            run.evaluated += 1
            decision = judge.decide(obj)
            if not decision.allowed:
                run.deny(obj.id, decision.reasons)
                continue
            rows.append(self._cut(obj, decision, judge.partner))
        run.released += len(rows)
        return rows

    def _reconcile(
        self, chunk: list[StoredObject], judge: _Judge,
        current: dict[tuple[str, str], tuple[int, str]], run: ReleaseRun,
    ) -> tuple[list[_Row], list[int]]:
        rows: list[_Row] = []
        withdraw: list[int] = []
        for obj in chunk:
            run.evaluated += 1
            decision = judge.decide(obj)
            served = current.get((obj.id, obj.version))
            if not decision.allowed and obj.type == "marking-definition" and served:
                # released as support for views that reference it: kept, as the
                # recipient's copy of today (its audience may have changed)
                support = judge.support_row(obj)
                if support is not None and served[1] != view_hash(support.view):
                    withdraw.append(served[0])
                    rows.append(support)
                    run.replaced += 1
                continue
            if not decision.allowed:
                run.denied += 1
                if served is not None:
                    withdraw.append(served[0])
                    run.withdrawn += 1
                continue
            row = self._cut(obj, decision, judge.partner)
            if served is None:
                rows.append(row)
                run.released += 1
            elif served[1] != view_hash(row.view):
                withdraw.append(served[0])
                rows.append(row)
                run.replaced += 1
        return rows, withdraw

    def _cut(self, obj: StoredObject, decision: Decision, partner: Partner) -> _Row:
        """The exact view for (object version, partner): redacted, then fingerprinted."""
        assert decision.view is not None
        body = orjson.dumps(decision.view)
        served = self.views.derive(body, partner.name, f"{obj.id}|{obj.version}", True)
        return _Row(obj, decision, body, served.view, True)

    def _commit(self, partner: Partner, rows: list[_Row], withdraw: list[int],
                cursor: tuple[int | None, int] | None,
                recipient: Recipient | None = None) -> _Commit:
        """Write one chunk in one transaction (holding the node's write lock).

        ``cursor`` is (expected, new): the chunk is written only if the partner's cursor
        still is ``expected`` (compare-and-set), so two concurrent catch-ups never release
        the same range twice.  ``recipient``: the policy inputs the chunk was decided
        under; it is written only if they still hold (read inside the write lock, so a tier
        change either committed before — the chunk is refused — or after, and its
        re-evaluation sees the chunk).  Versions that already have a live release are
        skipped."""
        with self.store.transaction() as conn:
            if cursor is not None and self._cursor_in(conn, partner.name) != cursor[0]:
                return _Commit.LOST
            if recipient is not None:
                try:
                    now = self.recipient(self.partners.get(partner.name))
                except NotFoundError:
                    return _Commit.PARTNER_GONE
                if now != recipient:
                    return _Commit.STALE
            rows = self._not_yet_released(conn, partner.name, rows, set(withdraw))
            if withdraw:
                # by key: the partner's rows (the seqs come from its live views)
                conn.execute(releases.update().where(releases.c.partner == partner.name,
                                                     releases.c.seq.in_(withdraw))
                             .values(withdrawn=True))
            if rows:
                self._insert(conn, partner, rows)
            if withdraw and self.ledger is not None:
                self.ledger.append_many(_withdraw_entries(conn, partner.name, withdraw),
                                        conn)
            if cursor is not None:
                self._set_cursor(conn, partner.name, cursor[1])
        self._statistics.wrote(len(rows))
        return _Commit.DONE

    def _not_yet_released(self, conn: sa.Connection, partner: str, rows: list[_Row],
                          withdrawing: set[int]) -> list[_Row]:
        ids = sorted({r.stored.id for r in rows})
        live: set[tuple[str, str]] = set()
        for start in range(0, len(ids), 500):
            stmt = _live(ids[start:start + 500])
            live.update((r[0], r[1]) for r in _held(conn, stmt, partner)
                        if int(r[2]) not in withdrawing)
        return [r for r in rows if (r.stored.id, r.stored.version) not in live]

    def _insert(self, conn: sa.Connection, partner: Partner, rows: list[_Row]) -> None:
        """The chunk's release rows, their class views (those not kept yet) and one release
        batch in the ledger (see ``docs/release.md``, "At rest")."""
        seq = max(now_micros() - 1, last_seq(conn))
        view_ids = self._class_views(conn, rows)
        hashes = [hashlib.sha256(row.view).digest() for row in rows]
        batch: int | None = None
        if self.ledger is not None:
            when = _now()
            leaves = [release_entry(partner.name, row.stored.id, row.stored.version, h.hex(),
                                     when).leaf_hash for row, h in zip(rows, hashes, strict=True)]
            batch = self.ledger.append_many([_batch_entry(partner.name, leaves, when)],
                                            conn).start
        first = seq + 1
        values = []
        for view_id, digest in zip(view_ids, hashes, strict=True):
            seq += 1
            values.append((seq, partner.name, view_id, digest, batch, False))
        # COPY on PostgreSQL, one executemany on SQLite
        insert_rows(conn, releases, _ROW_COLUMNS, values)
        if batch is not None:
            conn.execute(batches.insert().values(ledger_index=batch, first_seq=first,
                                                 last_seq=seq))

    @staticmethod
    def _class_views(conn: sa.Connection, rows: list[_Row]) -> list[int]:
        """The id of each row's class view: the one kept already (another partner of the
        class, or an earlier release), or a new one, kept with the chunk's other new views
        in one compressed chunk."""
        v = views.c
        ids = sorted({row.stored.id for row in rows})
        known: dict[tuple[str, str, bytes, bool], int] = {}
        for start in range(0, len(ids), 500):
            stmt = sa.select(object_id_of(v), v.version, v.digest, v.marked, v.id).where(
                object_in(v, ids[start:start + 500]))
            known.update({(r[0], r[1], bytes(r[2]), bool(r[3])): int(r[4])
                          for r in conn.execute(stmt)})
        out: list[int] = []
        new_views: list[tuple[Any, ...]] = []
        bodies: list[bytes] = []
        next_view = int(conn.execute(sa.select(sa.func.max(v.id))).scalar() or 0) + 1
        chunk_id = int(conn.execute(sa.select(sa.func.max(chunks.c.id))).scalar() or 0) + 1
        for row in rows:
            o = row.stored
            key = (o.id, o.version, hashlib.sha256(row.body).digest()[:8], row.marked)
            found = known.get(key)
            if found is None:
                found = known[key] = next_view
                next_view += 1
                removed = list(row.decision.removed)
                new_views.append((
                    found, object_uuid(o.id, o.type), o.version, o.type, o.spec_version,
                    chunk_id, len(bodies), key[2], row.marked,
                    orjson.dumps(removed).decode() if removed else ""))
                bodies.append(row.body)
            out.append(found)
        if bodies:
            sizes, data = pack(bodies)
            conn.execute(chunks.insert().values(id=chunk_id, codec=CODEC_ZLIB, sizes=sizes,
                                                data=data))
            insert_rows(conn, views, _VIEW_COLUMNS, new_views)
        return out

    # -- cursors and current state -------------------------------------------------
    def _cursor(self, partner: str) -> int | None:
        with self.store.engine.connect() as conn:
            return self._cursor_in(conn, partner)

    @staticmethod
    def _cursor_in(conn: sa.Connection, partner: str) -> int | None:
        value = conn.execute(sa.select(cursors.c.evaluated_to)
                             .where(cursors.c.partner == partner)).scalar()
        return None if value is None else int(value)

    def _set_cursor(self, conn: sa.Connection, partner: str, value: int) -> None:
        n = conn.execute(cursors.update().where(cursors.c.partner == partner)
                         .values(evaluated_to=value)).rowcount
        if not n:
            conn.execute(cursors.insert().values(partner=partner, evaluated_to=value))

    def _live_views(self, partner: str, chunk: list[StoredObject]
                    ) -> dict[tuple[str, str], tuple[int, str]]:
        """(id, version) -> (seq, view hash) of the live releases of the chunk's objects."""
        ids = sorted({o.id for o in chunk})
        out: dict[tuple[str, str], tuple[int, str]] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                stmt = _live(ids[start:start + 500])
                out.update({(r[0], r[1]): (int(r[2]), bytes(r[3]).hex())
                            for r in _held(conn, stmt, partner)})
        return out

    def forget_partner(self, partner: str) -> None:
        """Withdraw everything released to a removed partner."""
        with self.store.transaction() as conn:
            conn.execute(releases.update().where(releases.c.partner == partner)
                         .values(withdrawn=True))
            conn.execute(cursors.delete().where(cursors.c.partner == partner))


_VISIBLE_CACHE = 20_000


#: the columns :meth:`Releaser._insert` and :meth:`Releaser._class_views` write, in order
_ROW_COLUMNS = ("seq", "partner", "view", "view_hash", "batch", "withdrawn")
_VIEW_COLUMNS = ("id", "uuid", "version", "type", "spec_version", "chunk", "slot",
                 "digest", "marked", "removed")


@dataclass(frozen=True, slots=True)
class _Sharing:
    """What judges of one run need to share decisions within policy classes."""

    memo: ClassMemo
    #: newest stored version, marking definitions, partners' names and identities
    generation: Hashable
    #: string -> the partners it names (see release.classes)
    owners: Mapping[str, frozenset[str]]


@dataclass(slots=True)
class _Frame:
    """While the anonymous recipient decides one object: the partners its inputs name,
    and the height of the reference checks below it."""

    found: set[str] = field(default_factory=set)
    height: int = 0


class _Judge:
    """The policy as it applies to one partner during one run.

    Markings, partner identities and the partner's tier are read once, not per object.
    The policy decides which references a view may keep (``NodeContext.ref_visible``);
    the judge supplies the lookup: a referenced object is visible when the policy allows
    its latest stored version to this partner — references and all, so a relationship
    whose target is hidden is itself hidden to a sighting of it — or when it came from
    this partner.  Answers are cached for the run; a reference cycle, or a chain deeper
    than ``MAX_REF_DEPTH``, counts as not visible (fail closed).

    With ``sharing``, a decision is taken once per policy class by the class's anonymous
    recipient (a judge with ``partner=None`` that notes which partners the inputs it reads
    name) and handed to every member it holds for; the others are decided here, on their
    own (see :mod:`detente.release.classes`)."""

    MAX_REF_DEPTH = 32

    def __init__(self, releaser: Releaser, partner: Partner | None,
                 markings: Mapping[str, Mapping[str, Any]], identities: Mapping[str, str],
                 *, sharing: _Sharing | None = None,
                 recipient: Recipient | None = None,
                 held: Mapping[str, frozenset[str]] | None = None) -> None:
        self.releaser = releaser
        self.held = held or {}
        self._partner = partner
        self.recipient = recipient if recipient is not None else releaser.recipient(
            _known(partner))
        self.markings, self.identities = markings, identities
        self.sharing = sharing
        self.visible: dict[str, bool] = {}
        self.depth = 0
        self._class: _Judge | None = None
        # the anonymous recipient's bookkeeping (partner None)
        self._seen: dict[str, tuple[bool, frozenset[str], int]] = {}
        self._frames: list[_Frame] = []
        self._marking_owners: dict[str, frozenset[str]] = {}

    @property
    def partner(self) -> Partner:
        return _known(self._partner)

    def context(self, origin: str | None, refs: bool) -> NodeContext:
        r = self.releaser
        return NodeContext(
            name=r.node_name, identity_id=r.node_identity, communities=r.communities,
            default_tlp=r.default_tlp, markings=self.markings, origin=origin,
            partner_identities=self.identities,
            ref_visible=self.ref_visible if refs else None,
        )

    def decide(self, obj: StoredObject) -> Decision:
        allowed = self.held.get(obj.id)
        if allowed is not None and self._partner is not None \
                and self._partner.name not in allowed:
            return Decision.deny(
                f"{obj.id} was refuted here and is never relayed bare: "
                + ("released only to the partners our opinion goes to (node setting "
                   "refuted_release = with-opinion)." if allowed else
                   "withheld from every partner (node setting refuted_release = withdraw)."))
        sharing = self.sharing
        if sharing is None or self._partner is None:
            return self._own(obj)
        key = (class_key(self.recipient), sharing.generation, obj.id, obj.version)
        shared = sharing.memo.get(key)
        if shared is None:
            if self._class is None:
                self._class = _Judge(
                    self.releaser, None, self.markings, self.identities, sharing=sharing,
                    recipient=Recipient(ANONYMOUS, None, self.recipient.communities,
                                        self.recipient.tier))
            shared = self._class.for_class(obj)
            sharing.memo.put(key, shared)
        name = self._partner.name
        return named(shared.decision, name) if shared.holds_for(name) else self._own(obj)

    def _own(self, obj: StoredObject) -> Decision:
        origin = None if obj.provenance.origin == LOCAL else obj.provenance.origin
        if self._partner is not None and origin == self._partner.name:
            return Decision.deny(
                f"{obj.id} came from {self._partner.name}: never sent back to its source")
        return decide(obj.body, self.recipient, self.context(origin, refs=True))

    def for_class(self, obj: StoredObject) -> Shared:
        """(Anonymous recipient) the class's decision, and the partners it is sensitive to."""
        if len(self._seen) >= _VISIBLE_CACHE:
            self._seen.clear()  # between objects only: nothing is being decided
        frame = _Frame()
        self._frames = [frame]
        try:
            decision = self._own(obj)
            self._consulted(obj, frame)
        finally:
            self._frames = []
        if frame.height >= self.MAX_REF_DEPTH // 2:
            frame.found.add(ANONYMOUS)  # near the depth limit: order-dependent, not shared
        return Shared(decision, frozenset(frame.found))

    def _consulted(self, obj: StoredObject, frame: _Frame) -> None:
        """Note the partners named by what deciding ``obj`` reads: its body, the marking
        definitions it references, its origin."""
        assert self.sharing is not None
        body = obj.body
        strings_of(body, self.sharing.owners, frame.found)
        for ref in _marking_refs(body):
            hit = self._marking_owners.get(ref)
            if hit is None:
                found: set[str] = set()
                strings_of(self.markings.get(ref), self.sharing.owners, found)
                hit = self._marking_owners[ref] = frozenset(found)
            frame.found.update(hit)
        if obj.provenance.origin != LOCAL:
            frame.found.add(obj.provenance.origin)

    def support_row(self, obj: StoredObject) -> _Row | None:
        """The partner's copy of a marking definition its views reference (None: withheld,
        it names only other recipients — the partner then holds an unknown marking and
        fails closed)."""
        origin = None if obj.provenance.origin == LOCAL else obj.provenance.origin
        decision = support_view(obj.body, self.recipient, self.context(origin, refs=True))
        if decision.view is None:
            return None
        body = orjson.dumps(decision.view)
        return _Row(obj, decision, body, body, False)

    def ref_visible(self, ref: str) -> bool:
        if self._partner is None:
            return self._ref_visible_for_class(ref)
        if ref not in self.visible:
            if self.depth >= self.MAX_REF_DEPTH:
                return False
            if len(self.visible) >= _VISIBLE_CACHE:
                self.visible.clear()  # bounded: a run over a million refs stays small
            self.visible[ref] = False  # while being decided: a cycle back to it sees False
            self.depth += 1
            try:
                self.visible[ref] = self._visible(ref)
            finally:
                self.depth -= 1
        return self.visible[ref]

    def _ref_visible_for_class(self, ref: str) -> bool:
        """As ``ref_visible``, noting what the check read: a cycle or the depth limit makes
        the decision unshareable (its answer depends on the order of decisions)."""
        frame = self._frames[-1]
        got = self._seen.get(ref)
        if got is None:
            if self.depth >= self.MAX_REF_DEPTH:
                frame.found.add(ANONYMOUS)
                return False
            self._seen[ref] = (False, EVERYONE, 0)  # while being decided (a cycle)
            inner = _Frame()
            self._frames.append(inner)
            self.depth += 1
            try:
                visible = self._visible(ref, inner)
            finally:
                self.depth -= 1
                self._frames.pop()
            got = self._seen[ref] = (visible, frozenset(inner.found), inner.height + 1)
        visible, found, height = got
        frame.found.update(found)
        frame.height = max(frame.height, height)
        return visible

    def forget(self) -> None:
        self.visible.clear()
        if self._class is not None:
            self._class.forget()
        self._seen.clear()

    def _visible(self, ref: str, frame: _Frame | None = None) -> bool:
        obj = self.releaser.store.get(ref)
        if obj is None:
            return False
        if frame is not None:
            self._consulted(obj, frame)
        origin = None if obj.provenance.origin == LOCAL else obj.provenance.origin
        if self._partner is not None and origin == self._partner.name:
            return True  # the partner's own object: it holds it already
        return decide(obj.body, self.recipient, self.context(origin, refs=True)).allowed


def _known(partner: Partner | None) -> Partner:
    if partner is None:
        raise AssertionError("the anonymous recipient of a class is no partner")
    return partner


def _marking_refs(view: Mapping[str, Any]) -> list[str]:
    refs = [r for r in view.get("object_marking_refs", []) if isinstance(r, str)]
    for gm in view.get("granular_markings", []):
        if isinstance(gm, dict) and isinstance(gm.get("marking_ref"), str):
            refs.append(gm["marking_ref"])
    return refs


def _now() -> datetime:
    return datetime.now(UTC)


def _entry_version(version: str) -> str | None:
    return version or None


def release_entry(partner: str, object_id: str, version: str, digest_hex: str,
                  when: datetime | str) -> Any:
    """The ``release`` entry of one release: a leaf of its batch's tree (the batch entry
    in the log carries the same ``time``)."""
    from detente.ledger import Entry

    return Entry(kind="release", time=when, partner=partner, object_id=object_id,
                 object_version=_entry_version(version), view_hash=digest_hex)


def _batch_entry(partner: str, leaves: list[bytes], when: datetime) -> Any:
    from detente.ledger import BATCH_KIND, Entry, batch_root

    return Entry(kind=BATCH_KIND, time=when, partner=partner,
                 batch_root=batch_root(leaves).hex(), batch_size=len(leaves))


def _withdraw_entries(conn: sa.Connection, partner: str, seqs: list[int]) -> list[Any]:
    from detente.ledger import Entry

    r, v = releases.c, views.c
    rows = conn.execute(sa.select(r.partner, object_id_of(v), v.version, r.view_hash)
                        .select_from(releases.join(views, v.id == r.view))
                        .where(r.partner == partner, r.seq.in_(seqs)).order_by(r.seq)).all()
    return [Entry(kind="withdrawal", time=_now(), partner=row[0], object_id=row[1],
                  object_version=_entry_version(row[2]), view_hash=bytes(row[3]).hex())
            for row in rows]


def _live(ids: Sequence[str]) -> sa.Select[Any]:
    """(object id, version, seq, view hash, partner, withdrawn) of the releases of ``ids``
    to anyone: :func:`_held` keeps one partner's live ones."""
    r, v = releases.c, views.c
    return (sa.select(object_id_of(v), v.version, r.seq, r.view_hash, r.partner, r.withdrawn)
            .select_from(releases.join(views, v.id == r.view))
            .where(r.view.in_(views_of(ids))))


def _held(conn: sa.Connection, stmt: sa.Select[Any], partner: str) -> list[Any]:
    """The rows of ``stmt`` (release rows found by their class view, ending with their
    partner and withdrawn flag) live at ``partner``.

    The partner is compared here, not in SQL: with ``partner = :p`` in the query,
    PostgreSQL walks the partner's every release row (its (partner, seq) index) whenever
    its statistics say the partner holds few — which they do while it is being caught up,
    since they lag the rows each chunk adds — making each chunk's check cost as much as
    the partner's whole history (60-100 ms a chunk at 20,000 rows, growing).  By view
    alone the only way in is the view index: a few rows per view, one per partner of its
    class."""
    return [row for row in conn.execute(stmt)
            if row.partner == partner and not row.withdrawn]


def views_of(ids: Sequence[str]) -> sa.Select[Any]:
    """The class views of objects ``ids``: written as ``view IN (this)``, the planner looks
    release rows up by the (view, partner) index instead of walking a partner's rows."""
    return sa.select(views.c.id).where(object_in(views.c, ids))


def released_partners(conn: sa.Connection) -> list[str]:
    """Every partner holding release rows (withdrawn ones too), in name order: one probe
    of the (partner, seq) key per partner (a skip scan written out), not a walk of the
    rows."""
    step = sa.select(sa.func.min(releases.c.partner)).where(
        releases.c.partner > sa.bindparam("after")).scalar_subquery()
    names: list[str] = []
    first = conn.execute(sa.select(sa.func.min(releases.c.partner))).scalar()
    while first is not None:
        names.append(str(first))
        first = conn.execute(sa.select(step), {"after": first}).scalar()
    return names


def last_seq(conn: sa.Connection) -> int:
    """The highest seq assigned (0 if none): the highest of each partner's, each one probe
    of the (partner, seq) key — there is no index on seq alone (``docs/release.md``)."""
    stmt = sa.select(sa.func.max(releases.c.seq)).where(
        releases.c.partner == sa.bindparam("p"))
    return max((int(conn.execute(stmt, {"p": p}).scalar() or 0)
                for p in released_partners(conn)), default=0)
