"""The earned-trust engine: the one object the rest of detente talks to.

``observe`` is called by the one intake function right after objects are stored;
``confirm`` / ``refute`` by the analyst; ``expire`` on a schedule (inside ``serve`` and
``sync --watch``) and on demand.  Each of them recomputes the tiers of the partners whose
evidence changed; a changed tier is written to the ledger (``tier-change``) and handed to
the engine's ``on_tier_change`` listener, which the node's composition root wires to the
release path once (``Node.trust``): no caller can forget to re-evaluate, nor drain a change
meant for another.  A change is marked delivered only after the listener returned, so a
crash in between is delivered again by the next refresh.  An engine built without a
listener (tests, benchmarks) keeps changes until :meth:`tier_changes` drains them.
``tier`` is the ``TierSource`` the partner book plugs in: it only reads the stored tier, so
the release path never waits on the model.

Our own (``local``) reports are a source like any other for corroboration, but only when
they came first: a local object stored after a partner's report of the same claim may be
derived from it.  Our own sightings and the analyst's verdicts are confirmations.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any, Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from detente.errors import NotFoundError
from detente.opinions import OpinionRecord, Stance, stance_of
from detente.partners import Partner, PartnerBook, effective_tier
from detente.store.base import LOCAL, Store, StoredObject, is_partner_origin
from detente.store.engine import Statistics, among, is_postgres, reader, writer
from detente.trust import schema as t
from detente.trust.claims import Resolver, claim_key, extract
from detente.trust.config import DAY, TrustConfig
from detente.trust.correlation import Correlation, correlated
from detente.trust.errors import TrustError, UnknownObjectError
from detente.trust.grading import Grade, GradeInputs, make_grade, source_grade, worse
from detente.trust.intake import Intake, judgement_of
from detente.trust.model import HIGH, Fact, Link, Model, Reliability, Totals
from detente.trust.records import (
    Credit,
    HistoryItem,
    Observation,
    PartnerTrust,
    Review,
    TierChange,
)
from detente.trust.released import index_releases, released_value
from detente.trust.tiers import TierInputs, earned_tier

#: reviews opened by repeated protocol deviations carry this prefix before their subject
_DEVIATION_PREFIX = "deviation:"

__all__ = ["TrustEngine"]

_REF_KEYS = ("source_ref", "target_ref", "sighting_of_ref")
_HOUR_US = 3_600_000_000
#: partial models kept for answers about one partner (each holds the evidence, not the
#: objects: see TrustEngine._model_for)
_PARTNER_MODELS = 8

#: the composition root's hook: tier changes, delivered once each, after they are stored
TierListener = Callable[[Sequence[TierChange]], None]


class SupportsAppend(Protocol):
    def append(self, entry: Any, conn: sa.Connection | None = None) -> int: ...


#: a reliability change smaller than this is not a new point of the trend
_TREND_STEP = 0.005


@dataclass(frozen=True, slots=True)
class _SourceGrade:
    """What an object's grade takes from its source alone."""

    grade: str
    #: the source's grade on high-importance reports
    stratum: str
    tier: int
    in_review: bool
    important_good: int


@dataclass(frozen=True, slots=True)
class ReliabilityPoint:
    """One point of a partner's reliability trend (time in µs, the node's clock)."""

    time: int
    reliability: Reliability


class TrustEngine:
    """Evidence, reliability, grades, tiers and credit for one node."""

    def __init__(self, engine: sa.Engine, store: Store, *,
                 ledger: SupportsAppend | None = None, config: TrustConfig | None = None,
                 partners: PartnerBook | None = None,
                 on_tier_change: TierListener | None = None) -> None:
        self.engine, self.store, self.ledger = engine, store, ledger
        self.on_tier_change = on_tier_change
        self.config = config or TrustConfig()
        self._book = partners
        self._generation = 0
        self._cache: tuple[tuple[int, int, int], Model] | None = None
        #: partial models for answers about one partner (:meth:`_model_for`)
        self._partner_models_key: tuple[int, int, int] | None = None
        self._partner_models: dict[str, Model] = {}
        #: the planner's statistics of the tables observing grows (PostgreSQL)
        self._statistics = Statistics(engine, (t.assertions.name, t.claims.name,
                                               t.topics.name, t.extrefs.name, t.links.name))
        #: the refresh's partial model, which also grades (:meth:`_refresh_model`)
        self._partial_cache: tuple[tuple[int, int, int], Model] | None = None

    def create(self) -> None:
        """This package's tables alone (library use; a node creates every package's
        tables at once with :func:`detente.schema.create_schema`)."""
        t.metadata.create_all(writer(self.engine))

    # -- helpers ------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.config.clock())

    def _resolver_for(self, bodies: Sequence[Mapping[str, Any]]) -> Resolver:
        """Bodies of everything ``bodies`` refer to (two levels), read before any write."""
        known: dict[str, Mapping[str, Any]] = {}
        for b in bodies:
            if isinstance(b.get("id"), str):
                known[b["id"]] = b
        wanted = list(bodies)
        for _ in range(2):
            refs = {b[k] for b in wanted for k in _REF_KEYS if k in b} - set(known) - {None}
            wanted = []
            for ref in refs:
                obj = self.store.get(str(ref))
                if obj is not None:
                    known[obj.id] = obj.body
                    wanted.append(obj.body)
        return known.get

    def _invalidate(self) -> None:
        self._generation += 1
        self._cache = None
        self._partial_cache = None

    @staticmethod
    def _bump(conn: sa.Connection) -> None:
        """Tell every other engine on this database that its cached model is stale (in the
        transaction that changed the model's inputs)."""
        g = t.generation
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(g).values(id=1, value=1)
        conn.execute(stmt.on_conflict_do_update(index_elements=[g.c.id],
                                                set_={"value": g.c.value + 1}))

    def _stored_generation(self) -> int:
        with reader(self.engine).connect() as conn:
            value = conn.execute(sa.select(t.generation.c.value)
                                 .where(t.generation.c.id == 1)).scalar()
        return int(value or 0)

    def _model(self) -> Model:
        """The model, cached until this engine or any other on the database (another
        ``serve`` worker, the CLI) changes its inputs: the cache is an optimisation that
        cannot change a decision."""
        now = self._now()
        key = self._inputs_key(now)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._load(now))
        return self._cache[1]

    def _inputs_key(self, now: int) -> tuple[int, int, int]:
        """What a cached model is current for: this engine's changes, any engine's on the
        database (one read), and the hour (time decay)."""
        return (self._generation, self._stored_generation(), now // _HOUR_US)

    def _load(self, now: int) -> Model:
        """The whole model: every assertion (the answers: grades, counts, credit)."""
        with self.engine.connect() as conn:
            return self._build(conn, now, None, None)

    def _build(self, conn: sa.Connection, now: int, ids: list[int] | None,
               totals: Totals | None, complete: frozenset[str] = frozenset()) -> Model:
        """The model over every assertion, or over those of ``ids`` alone; in id order
        either way, so that both sum the same terms in the same order."""
        facts = self._facts(conn, ids)
        lk = t.links.c
        links = [Link(int(first), int(later), bool(ok), str(why))
                 for first, later, ok, why in conn.execute(
                     sa.select(t.links).order_by(lk.first, lk.later))]
        stances = self._stances(conn)
        return Model(facts, links, now, self.config, stances, totals, complete)

    @staticmethod
    def _facts(conn: sa.Connection, ids: list[int] | None) -> list[Fact]:
        """Every assertion (``ids`` None) or those of ``ids``, in id order, as facts with
        their counting claims and their topics."""
        a, c, tp = t.assertions.c, t.claims.c, t.topics.c
        stmt = sa.select(a.id, a.partner, a.object_id, a.time, a.seq, a.importance, a.echo,
                         a.revoked, a.outcome, a.outcome_at).order_by(a.id)
        claims = sa.select(c.assertion_id, c.key).where(c.echo.is_(False))
        topics_stmt = sa.select(tp.assertion_id, tp.topic)
        if ids is not None:
            pg = is_postgres(conn.engine)
            stmt = stmt.where(among(a.id, ids, postgres=pg))
            claims = claims.where(among(c.assertion_id, ids, postgres=pg))
            topics_stmt = topics_stmt.where(among(tp.assertion_id, ids, postgres=pg))
        rows = conn.execute(stmt).all()
        keys = _sets_by_assertion(conn.execute(claims))
        topics = _sets_by_assertion(conn.execute(topics_stmt))
        empty: frozenset[str] = frozenset()
        return [Fact(int(aid), partner, oid, int(time), int(seq), float(importance),
                     bool(echo), bool(revoked), outcome, outcome_at,
                     frozenset(keys[aid]) if aid in keys else empty,
                     frozenset(topics[aid]) if aid in topics else empty)
                for aid, partner, oid, time, seq, importance, echo, revoked, outcome,
                outcome_at in rows]

    def _refresh_model(self) -> Model:
        """What :meth:`refresh` and the grades need: the cached whole model when it is
        current, else a partial model (:class:`~detente.trust.model.Totals`) — the
        assertions that can weigh in a reliability or a tier, and SQL aggregates of the
        rest — whose memory grows with the evidence (outcomes, links, shared claims,
        opinions), not with the objects held: a million local imports nobody else
        reported load nothing.  Kept until the inputs change."""
        now = self._now()
        key = self._inputs_key(now)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        if self._partial_cache is None or self._partial_cache[0] != key:
            self._partial_cache = (key, self._partial_model(now, None))
        return self._partial_cache[1]

    def _model_for(self, partner: str) -> Model:
        """What the answers about one partner need (its summary, counts, credit, opinion
        record): the cached whole model when it is current, else
        the refresh's partial model with every assertion of ``partner`` added — a hub's
        million own reports load nothing for ``partner list`` (they weighed in no
        partner's answer: tests/trust/test_trust_refresh_model.py checks the answers
        equal the whole model's).  The last few are kept until the inputs change."""
        now = self._now()
        key = self._inputs_key(now)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        if self._partner_models_key != key:
            self._partner_models_key, self._partner_models = key, {}
        model = self._partner_models.get(partner)
        if model is None:
            if len(self._partner_models) >= _PARTNER_MODELS:
                self._partner_models.pop(next(iter(self._partner_models)))
            model = self._partner_models[partner] = self._partial_model(now, partner)
        return model

    def _partial_model(self, now: int, partner: str | None) -> Model:
        """The assertions that can weigh (see :meth:`_refresh_model`), with every assertion
        of ``partner`` too when given (the model then answers everything about it)."""
        a, lk, o = t.assertions.c, t.links.c, t.opinions.c
        # every pair of sources' assertions of a claim is linked at intake: the facts
        # with a link are those with a claim another source asserted too
        weighs: list[sa.ColumnElement[bool]] = [
            a.outcome.is_not(None), a.id.in_(sa.select(lk.first)),
            a.id.in_(sa.select(lk.later)), a.object_id.in_(sa.select(o.object_id))]
        if partner is not None:
            weighs.append(a.partner == partner)
        weighing = sa.select(a.id).where(sa.or_(*weighs))
        with self.engine.connect() as conn:
            sources = frozenset(str(p) for p in conn.execute(
                sa.select(a.partner).distinct()).scalars())
            ids = [int(x) for x in conn.execute(weighing).scalars()]
            return self._build(conn, now, ids, Totals(sources, self._volume, self._first),
                               frozenset() if partner is None else frozenset({partner}))

    def _volume(self) -> dict[str, int]:
        """Per source: the distinct non-echo claims of its counting assertions."""
        a, c = t.assertions.c, t.claims.c
        stmt = (sa.select(a.partner, sa.func.count(c.key.distinct()))
                .select_from(t.claims.join(t.assertions, a.id == c.assertion_id))
                .where(a.echo.is_(False), a.revoked.is_(False), c.echo.is_(False))
                .group_by(a.partner))
        with self.engine.connect() as conn:
            return {str(p): int(n) for p, n in conn.execute(stmt)}

    def _first(self, partner: str) -> int | None:
        """When ``partner`` first asserted something that counts (µs)."""
        a, c = t.assertions.c, t.claims.c
        claimed = sa.exists(sa.select(1).where(c.assertion_id == a.id, c.echo.is_(False)))
        stmt = sa.select(sa.func.min(a.time)).where(
            a.partner == partner, a.echo.is_(False), a.revoked.is_(False), claimed)
        with self.engine.connect() as conn:
            value = conn.execute(stmt).scalar()
        return None if value is None else int(value)

    @staticmethod
    def _stances(conn: sa.Connection) -> list[Stance]:
        """Partners' opinions that are evidence: about an object whose claims we released
        to that partner (an opinion about anything else — its own report, something it
        got elsewhere, an id it made up — weighs nothing, so opinions cannot be minted)."""
        o, a, c, r = t.opinions.c, t.assertions.c, t.claims.c, t.released_claims.c
        released = sa.exists(
            sa.select(1).select_from(t.assertions.join(t.claims, c.assertion_id == a.id)
                                     .join(t.released_claims, r.key == c.key))
            .where(a.object_id == o.object_id, r.partner == o.partner))
        stmt = sa.select(o.partner, o.object_id, o.stance, o.time).where(
            o.partner != LOCAL, o.stance != 0, released)
        return [Stance(p, oid, int(st), int(tm)) for p, oid, st, tm in conn.execute(stmt)]

    def _any_partner_assertion(self) -> bool:
        """Whether any source other than this node asserted anything (two index probes
        on ``uq_trust_assertion``, whose first column is the partner)."""
        p, o = t.assertions.c.partner, t.opinions.c.partner
        with self.engine.connect() as conn:
            return any(conn.execute(sa.select(col).where(cond).limit(1)).first() is not None
                       for col in (p, o) for cond in (col < LOCAL, col > LOCAL))

    def _partner(self, name: str) -> Partner | None:
        if self._book is None:
            self._book = PartnerBook(self.engine)
        try:
            return self._book.get(name)
        except (NotFoundError, SQLAlchemyError):
            return None

    def _base_tiers(self) -> dict[str, int]:
        """Every known partner's operator-set tier, in one read."""
        if self._book is None:
            self._book = PartnerBook(self.engine)
        try:
            return {p.name: p.base_tier for p in self._book.all()}
        except SQLAlchemyError:
            return {}

    def _record(self, kind: str, partner: str | None, detail: str,
                object_id: str | None = None, version: str | None = None) -> None:
        if self.ledger is None:
            return
        from detente.ledger import Entry, EntryError

        when = datetime.fromtimestamp(self._now() / 1e6, UTC)
        who = None if partner in (None, LOCAL) else partner
        try:
            entry = Entry(kind=kind, time=when, partner=who, object_id=object_id,
                          object_version=version or None, detail=detail[:2000])
        except EntryError:
            entry = Entry(kind=kind, time=when, partner=who, detail=detail[:2000])
        self.ledger.append(entry)

    # -- intake -------------------------------------------------------------------------
    def observe(self, objs: Sequence[StoredObject], *, refresh: bool = True,
                bodies: Sequence[Mapping[str, Any]] | None = None) -> list[Observation]:
        """Evidence from stored objects (origin = partner name, or local).

        ``refresh=False`` records the evidence but leaves tiers to a later
        :meth:`refresh` (a sync refreshes once per run, not once per page).  ``bodies``
        are the objects already parsed (the intake path has them), saving a decode."""
        index_releases(self.engine, self._resolver_for, self.config)
        if bodies is None:
            bodies = [o.body for o in objs]
        elif len(bodies) != len(objs):
            raise ValueError("observe: one body per object")
        resolve = self._resolver_for(bodies)
        out: list[Observation] = []
        touched: set[str] = set()
        start = 0
        # the batch is observed set-wise up to each of our sightings, whose verdict then
        # applies at its place in intake order (as if observed one at a time)
        cuts = [i + 1 for i, (o, b) in enumerate(zip(objs, bodies, strict=True))
                if judgement_of(o, b) is not None]
        for end in [*cuts, len(objs)]:
            if end <= start:
                continue
            with writer(self.engine).begin() as conn:
                intake = Intake(conn, resolve, self.config)
                part = intake.observe_many(objs[start:end], bodies[start:end])
                self._bump(conn)
            self._statistics.wrote(sum(o.effect == "assertion" for o in part))
            self._invalidate()
            out += part
            touched |= {o.partner for o in part if o.effect == "assertion"}
            for target, outcome, why, _when in intake.judgements:
                touched |= self._judge(target, outcome, why, analyst=False)
            start = end
        touched |= self._note_opinions(objs, bodies)
        if refresh:
            self.refresh(touched)
        return out

    def _note_opinions(self, objs: Sequence[StoredObject],
                       bodies: Sequence[Mapping[str, Any]]) -> set[str]:
        """Record the opinions among ``objs`` (a partner's are evidence about it, see
        :mod:`detente.opinions`); returns the partners whose evidence changed."""
        rows: list[dict[str, Any]] = []
        for obj, body in zip(objs, bodies, strict=True):
            if obj.type != "opinion" or (obj.provenance.origin != LOCAL and \
                    not is_partner_origin(obj.provenance.origin)):
                continue
            refs = body.get("object_refs")
            why = body.get("explanation")
            for ref in dict.fromkeys(r for r in refs if isinstance(r, str)) \
                    if isinstance(refs, list) else ():
                rows.append({"id": obj.id, "object_id": ref, "version": obj.version,
                             "partner": obj.provenance.origin,
                             "value": str(body.get("opinion", ""))[:40],
                             "stance": stance_of(body.get("opinion")),
                             "explanation": why[:4000] if isinstance(why, str) else "",
                             "time": int(obj.provenance.received_at or obj.date_added)})
        if not rows:
            return set()
        o = t.opinions.c
        with writer(self.engine).begin() as conn:
            for row in rows:  # a later version replaces an earlier one, never the reverse
                old = conn.execute(sa.select(o.version).where(
                    o.id == row["id"], o.object_id == row["object_id"])).scalar()
                if old is not None and str(old) >= str(row["version"]):
                    continue
                conn.execute(t.opinions.delete().where(o.id == row["id"],
                                                       o.object_id == row["object_id"]))
                conn.execute(t.opinions.insert().values(**row))
            self._bump(conn)
        self._invalidate()
        return {str(r["partner"]) for r in rows if r["partner"] != LOCAL}

    def opinions_about(self, object_id: str) -> list[OpinionRecord]:
        """Every opinion held here about ``object_id`` (ours: partner ``local``), oldest
        first."""
        o = t.opinions.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(t.opinions).where(o.object_id == object_id)
                                .order_by(o.time, o.id)).all()
        return [OpinionRecord(r.id, r.partner, r.object_id, r.value, r.explanation,
                              int(r.time)) for r in rows]

    def opinion_record(self, partner: str) -> tuple[int, int, int]:
        """(right, wrong, unresolved) of a partner's opinions, judged by our verdicts."""
        return self._model_for(partner).opinion_record(partner)

    def confirm(self, object_id: str, why: str) -> list[str]:
        """The analyst confirms an object's claims; returns the partners whose reports
        were judged.  Recorded in the ledger."""
        return sorted(self._analyst(object_id, "confirmed", why))

    def refute(self, object_id: str, why: str) -> list[str]:
        """The analyst refutes an object's claims: a high-importance report refuted drops
        its partner's tier at once and opens a review."""
        return sorted(self._analyst(object_id, "refuted", why))

    def _analyst(self, object_id: str, outcome: str, why: str) -> set[str]:
        if not why or not why.strip():
            raise TrustError("a reason is required", hint="pass --why TEXT")
        touched = self._judge(object_id, outcome, f"analyst: {why.strip()}", analyst=True)
        self.refresh(touched)
        return touched

    def _claim_keys(self, object_id: str) -> set[str]:
        c, a = t.claims.c, t.assertions.c
        with self.engine.connect() as conn:
            keys = {r[0] for r in conn.execute(sa.select(c.key).join(
                t.assertions, a.id == c.assertion_id).where(a.object_id == object_id))}
        if keys:
            return keys
        obj = self.store.get(object_id)
        if obj is None:
            return set()
        found = extract(obj.body, self._resolver_for([obj.body]), self.config)
        return {claim_key(x) for x in found.claims}

    def _judge(self, object_id: str, outcome: str, why: str, *, analyst: bool) -> set[str]:
        keys = self._claim_keys(object_id)
        if not keys:
            if analyst:
                raise UnknownObjectError(f"{object_id} makes no claim this node has seen",
                                         hint="see 'detente show ID'")
            return set()
        a, c = t.assertions.c, t.claims.c
        now = self._now()
        with writer(self.engine).begin() as conn:
            rows = conn.execute(
                sa.select(a.id, a.partner, a.object_id, a.version, a.importance).distinct()
                .join(t.claims, c.assertion_id == a.id)
                .where(c.key.in_(keys), c.echo.is_(False), a.echo.is_(False))).all()
            if rows:
                conn.execute(t.assertions.update().where(a.id.in_([r.id for r in rows]))
                             .values(outcome=outcome, outcome_at=now, outcome_why=why))
                self._bump(conn)
        self._invalidate()
        for r in rows:
            self._record("evidence", r.partner, f"{outcome}: {why}", r.object_id, r.version)
            if outcome == "refuted" and is_partner_origin(r.partner) and \
                    r.importance >= self.config.high_importance:
                self._open_review(r.partner, r.object_id,
                                  f"high-importance report {r.object_id} refuted ({why})", now)
        return {r.partner for r in rows if r.partner != LOCAL}

    def first_report(self, body: Mapping[str, Any], partner: str = LOCAL) -> int | None:
        """When ``partner`` (default: this node) first asserted any claim ``body`` makes
        (µs, the assertion's time; echoes excluded), or None if it never did."""
        found = extract(body, self._resolver_for([body]), self.config)
        keys = [claim_key(c) for c in found.claims]
        if not keys:
            return None
        a, c = t.assertions.c, t.claims.c
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(sa.func.min(a.time)).select_from(t.assertions)
                .join(t.claims, c.assertion_id == a.id)
                .where(c.key.in_(keys), a.partner == partner, a.echo.is_(False))).scalar()
        return None if value is None else int(value)

    # -- reviews ------------------------------------------------------------------------
    def _open_review(self, partner: str, object_id: str, reason: str, now: int) -> Review:
        """Open a review of ``partner``: its tier is capped below what it was until the
        operator closes it; ``object_id`` names the occasion."""
        before = self._stored_tier(partner)
        cap = max(0, min(before - 1, self.config.review_max_tier))
        r = t.reviews.c
        with writer(self.engine).begin() as conn:
            conn.execute(t.reviews.insert().values(
                partner=partner, object_id=object_id, opened_at=now, reason=reason,
                tier_before=before, tier_cap=cap))
            row = conn.execute(sa.select(t.reviews).where(
                r.partner == partner, r.object_id == object_id)
                .order_by(r.id.desc()).limit(1)).one()
        self._record("evidence", partner, f"review opened: {reason}",
                     None if object_id.startswith(_DEVIATION_PREFIX) else object_id)
        return Review(**row._mapping)

    def deviation(self, partner: str, subject: str, why: str) -> Review | None:
        """A partner deviated from a protocol with us (``subject`` names the occasion, e.g.
        ``deconfliction-session:<id>``; recording it twice counts once).  Evidence in the
        ledger; the ``deviations_for_review``-th within ``deviation_window_days`` opens a
        review that caps the partner's tier until the operator closes it.  Returns the
        review opened, if any."""
        if not partner or partner == LOCAL:
            raise TrustError("a deviation is a partner's: name the partner")
        now = self._now()
        d, r = t.deviations.c, t.reviews.c
        since = now - int(self.config.deviation_window_days * DAY * 1_000_000)
        with writer(self.engine).begin() as conn:
            seen = conn.execute(sa.select(d.id).where(d.partner == partner,
                                                      d.subject == subject)).first()
            if seen is not None:
                return None
            conn.execute(t.deviations.insert().values(partner=partner, subject=subject,
                                                      at=now, why=why[:2000]))
            recent = conn.execute(sa.select(sa.func.count()).select_from(t.deviations).where(
                d.partner == partner, d.at >= since)).scalar_one()
            reviewing = conn.execute(sa.select(r.id).where(
                r.partner == partner, r.closed_at.is_(None),
                r.object_id.like(_DEVIATION_PREFIX + "%"))).first()
        self._record("evidence", partner, f"protocol deviation ({subject}): {why}")
        if recent < self.config.deviations_for_review or reviewing is not None:
            return None
        review = self._open_review(
            partner, _DEVIATION_PREFIX + subject,
            f"{recent} protocol deviations in {self.config.deviation_window_days:g} days, "
            f"the last: {why}", now)
        self.refresh({partner})
        return review

    def deviations(self, partner: str | None = None) -> list[tuple[str, str, int, str]]:
        """Recorded deviations (partner, subject, time µs, why), oldest first."""
        d = t.deviations.c
        stmt = sa.select(d.partner, d.subject, d.at, d.why).order_by(d.id)
        if partner is not None:
            stmt = stmt.where(d.partner == partner)
        with self.engine.connect() as conn:
            return [(x.partner, x.subject, int(x.at), x.why) for x in conn.execute(stmt)]

    def reviews(self, *, open_only: bool = True) -> list[Review]:
        stmt = sa.select(t.reviews).order_by(t.reviews.c.id)
        if open_only:
            stmt = stmt.where(t.reviews.c.closed_at.is_(None))
        with self.engine.connect() as conn:
            return [Review(**r._mapping) for r in conn.execute(stmt)]

    def close_review(self, review_id: int, why: str) -> Review:
        if not why.strip():
            raise TrustError("a reason is required to close a review")
        with writer(self.engine).begin() as conn:
            n = conn.execute(t.reviews.update().where(
                t.reviews.c.id == review_id, t.reviews.c.closed_at.is_(None)).values(
                closed_at=self._now(), closed_why=why.strip())).rowcount
            row = conn.execute(sa.select(t.reviews).where(t.reviews.c.id == review_id)).first()
        if not n or row is None:
            raise NotFoundError(f"no open review {review_id}")
        review = Review(**row._mapping)
        self._record("evidence", review.partner, f"review {review_id} closed: {why}")
        self.refresh({review.partner})
        return review

    # -- expiry and tiers ---------------------------------------------------------------
    def expire(self, now: int | None = None) -> int:
        """Mark reports whose valid_until passed before we confirmed or refuted them;
        returns how many.  Corroboration still counts for them (see the model)."""
        now = self._now() if now is None else now
        a = t.assertions.c
        with writer(self.engine).begin() as conn:
            rows = conn.execute(sa.select(a.id, a.partner).where(
                a.outcome.is_(None), a.valid_until < now, a.echo.is_(False))).all()
            if rows:
                conn.execute(t.assertions.update().where(a.id.in_([r.id for r in rows]))
                             .values(outcome="expired", outcome_at=now,
                                     outcome_why="valid_until passed with no outcome"))
                self._bump(conn)
        self._invalidate()
        self.refresh({r.partner for r in rows} - {LOCAL})
        return len(rows)

    def _stored_tier(self, partner: str) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(t.tiers.c.tier).where(
                t.tiers.c.partner == partner)).scalar()
        if value is not None:
            return int(value)
        found = self._partner(partner)
        return found.base_tier if found is not None else 1

    def tier(self, partner: Partner) -> int:
        """The earned tier (the partner book's ``TierSource``): the stored result of the
        last refresh, or the operator's tier before any evidence.  Read-only: a snapshot
        read, never the write lock, so the release path may ask while it writes."""
        with reader(self.engine).connect() as conn:
            value = conn.execute(sa.select(t.tiers.c.tier).where(
                t.tiers.c.partner == partner.name)).scalar()
        return int(value) if value is not None else partner.base_tier

    def _tier_inputs(self, model: Model, name: str, base: int,
                     released: Mapping[str, float], all_reviews: list[Review]) -> TierInputs:
        facts = [f for f in model.by_partner.get(name, ()) if f.counts]
        first = model.first_time(name)
        since = [model.now if first is None else first]
        since += [f.outcome_at or 0 for f in facts if f.outcome == "refuted"
                  and f.importance >= self.config.high_importance]
        mine = [r for r in all_reviews if r.partner == name]
        since += [r.opened_at for r in mine]
        given = sum(f.importance for f in facts if f.outcome == "confirmed"
                    or (f.outcome != "refuted" and model.support(f).weight > 0))
        taken = released.get(name, 0.0)
        caps = [r.tier_cap for r in mine if r.closed_at is None]
        return TierInputs(model.reliability(name), (model.now - max(since)) / (DAY * 1e6),
                          given / (given + taken) if taken > 0 else 1.0,
                          model.important_good(name), base, min(caps) if caps else None)

    def refresh(self, partners: set[str] | None = None) -> list[TierChange]:
        """Recompute earned tiers (all partners, or those given) and every source's
        reliability trend point; changes are recorded in the ledger and kept for
        :meth:`tier_changes`.  Its model holds only the evidence that can weigh
        (:meth:`_refresh_model`), so its memory does not grow with the objects held."""
        if partners is None and not self._any_partner_assertion():
            return []  # no partner has evidence: no model to build (a local-only node)
        model = self._refresh_model()
        sources = sorted((partners if partners is not None else set(model.partners)) - {LOCAL})
        # a feed or a local import is a source with its own record (its reliability
        # trend) but no tier: nothing is released to it
        names = [n for n in sources if is_partner_origin(n)]
        if sources:
            self._log_reliability(model, sources)
        if not names:
            return []
        with self.engine.connect() as conn:
            released = released_value(conn)
            stored = {r.partner: r for r in conn.execute(sa.select(t.tiers))}
        all_reviews = self.reviews(open_only=False)
        bases = self._base_tiers()
        changes = []
        for name in names:
            base = bases.get(name, 1)
            new, why = earned_tier(self._tier_inputs(model, name, base, released,
                                                     all_reviews), self.config)
            row = stored.get(name)
            old = int(row.tier) if row is not None else base
            if row is None or new != old:
                self._store_tier(name, old, new, why, quiet=row is None and new == old)
            if new != old:
                changes.append(TierChange(name, old, new, why))
        if self.on_tier_change is not None:
            self._deliver()
        return changes

    def _deliver(self) -> None:
        """Hand every undelivered change to the listener, then mark it delivered."""
        assert self.on_tier_change is not None
        with reader(self.engine).connect() as conn:
            rows = conn.execute(sa.select(t.tiers).where(t.tiers.c.announced.is_(False))
                                .order_by(t.tiers.c.partner)).all()
        for r in rows:
            if int(r.previous) != int(r.tier):
                self.on_tier_change([TierChange(r.partner, int(r.previous), int(r.tier),
                                                r.reason)])
            with writer(self.engine).begin() as conn:
                conn.execute(t.tiers.update().where(
                    t.tiers.c.partner == r.partner, t.tiers.c.tier == r.tier)
                    .values(announced=True))

    def _log_reliability(self, model: Model, names: Sequence[str]) -> None:
        """Append each partner's overall reliability to its trend when it moved."""
        log = t.reliability_log
        now = self._now()
        ranked = sa.select(log.c.partner, log.c.mean, log.c.n, sa.func.row_number().over(
            partition_by=log.c.partner, order_by=(log.c.time.desc(), log.c.id.desc()))
            .label("rank")).where(log.c.partner.in_(names)).subquery()
        with writer(self.engine).begin() as conn:
            lasts = {p: (mean, n) for p, mean, n in conn.execute(
                sa.select(ranked.c.partner, ranked.c.mean, ranked.c.n)
                .where(ranked.c.rank == 1))}
            rows = []
            for name in names:
                r = model.reliability(name, None)
                last = lasts.get(name)
                if last is not None and abs(last[0] - r.mean) < _TREND_STEP \
                        and abs(last[1] - r.n) < _TREND_STEP:
                    continue
                rows.append({"partner": name, "time": now, "mean": r.mean, "low": r.low,
                             "high": r.high, "n": r.n})
            if rows:
                conn.execute(log.insert(), rows)

    def reliability_history(self, partner: str) -> list[ReliabilityPoint]:
        """The partner's overall reliability over time (oldest first): the trend chart."""
        log = t.reliability_log
        stmt = (sa.select(log.c.time, log.c.mean, log.c.low, log.c.high, log.c.n)
                .where(log.c.partner == partner).order_by(log.c.time, log.c.id))
        with self.engine.connect() as conn:
            return [ReliabilityPoint(int(r[0]), Reliability(r[1], r[2], r[3], r[4]))
                    for r in conn.execute(stmt)]

    def _store_tier(self, name: str, old: int, new: int, why: str, *, quiet: bool) -> None:
        now = self._now()
        values = {"tier": new, "previous": old, "reason": why, "since": now,
                  "announced": quiet}
        with writer(self.engine).begin() as conn:
            pending = conn.execute(sa.select(t.tiers.c.previous).where(
                t.tiers.c.partner == name, t.tiers.c.announced.is_(False))).scalar()
            if pending is not None:  # not handed out yet: report from the last handed out
                values["previous"] = int(pending)
            n = conn.execute(t.tiers.update().where(t.tiers.c.partner == name)
                             .values(**values)).rowcount
            if not n:
                conn.execute(t.tiers.insert().values(partner=name, **values))
            if not quiet:
                conn.execute(t.tier_log.insert().values(partner=name, time=now, old=old,
                                                        new=new, reason=why))
        if not quiet:
            self._record("tier-change", name, f"earned tier {old} -> {new}: {why}")

    def tier_changes(self) -> list[TierChange]:
        """For an engine built without a listener only (library use, benchmarks): tier
        changes not yet handed out, drained.  A node's engine delivers them itself."""
        if self.on_tier_change is not None:
            raise TrustError("this engine delivers tier changes to its listener",
                             hint="tier changes reach the release path through Node.trust")
        with writer(self.engine).begin() as conn:
            rows = conn.execute(sa.select(t.tiers).where(t.tiers.c.announced.is_(False))
                                .order_by(t.tiers.c.partner)).all()
            if rows:
                conn.execute(t.tiers.update().where(t.tiers.c.partner.in_(
                    [r.partner for r in rows])).values(announced=True))
        return [TierChange(r.partner, int(r.previous), int(r.tier), r.reason) for r in rows
                if int(r.previous) != int(r.tier)]

    # -- answers ------------------------------------------------------------------------
    def reliability(self, partner: str, topic: str | None = None) -> Reliability:
        """Posterior mean and 90% interval; ``topic`` e.g. ``type:indicator``,
        ``actor:apt28``, ``region:sy`` or ``importance:high``."""
        return self._refresh_model().reliability(partner, topic)

    def source_grade(self, partner: str) -> str:
        return source_grade(self.reliability(partner), self.config)

    def grade(self, object_id: str) -> Grade:
        """Information credibility of one object, with the reasons; stored beside it."""
        model = self._refresh_model()
        with self.engine.connect() as conn:
            f = self._first_facts(conn, [object_id]).get(object_id)
        if f is None:
            raise UnknownObjectError(f"{object_id} is not a report this node can grade",
                                     hint="only objects making claims are graded")
        grade = make_grade(object_id, self._grade_inputs(model, f), self.config)
        self._keep(grade)
        return grade

    def credibility_of(self, object_ids: Iterable[str]) -> dict[str, int]:
        """The information credibility (1–6) of each of ``object_ids`` that can be graded,
        as :meth:`grade` computes it, without storing each (the Objects page filters by
        it, a page of candidates at a time)."""
        ids = list(dict.fromkeys(object_ids))
        if not ids:
            return {}
        model = self._refresh_model()
        with self.engine.connect() as conn:
            firsts = self._first_facts(conn, ids)
        by_source: dict[str, _SourceGrade] = {}
        return {oid: int(make_grade(oid, self._grade_inputs(model, f, by_source),
                                    self.config).credibility)
                for oid, f in firsts.items()}

    def _first_facts(self, conn: sa.Connection, object_ids: list[str]) -> dict[str, Fact]:
        """Each object's first assertion (intake order: seq, then id) — the one its grade
        is about — as a fact, for those of ``object_ids`` any source asserted."""
        a = t.assertions.c
        first: dict[str, tuple[int, int]] = {}
        for aid, oid, seq in conn.execute(sa.select(a.id, a.object_id, a.seq).where(
                among(a.object_id, object_ids, postgres=is_postgres(conn.engine)))):
            order = (int(seq), int(aid))
            if oid not in first or order < first[oid]:
                first[oid] = order
        if not first:
            return {}
        facts = self._facts(conn, sorted(aid for _, aid in first.values()))
        return {f.object_id: f for f in facts}

    def _grade_inputs(self, model: Model, f: Fact,
                      by_source: dict[str, _SourceGrade] | None = None) -> GradeInputs:
        """What :func:`make_grade` weighs for ``f``, from ``model`` — the whole model, or
        the refresh's partial one, which answers every term exactly (see :class:`Model`):
        a fact that is not in it has no link (``support`` is then none), and its claims
        meet the confirmed and refuted ones in either.  ``by_source`` keeps what depends
        on ``f``'s source alone, for grading many objects at once."""
        outcome = f.outcome if f.outcome in ("confirmed", "refuted") else None
        if f.claims & model.refuted:
            outcome = "refuted"
        elif outcome is None and f.claims & model.confirmed:
            outcome = "confirmed"
        source = by_source.get(f.partner) if by_source is not None else None
        if source is None:
            source = self._source_grade(model, f.partner)
            if by_source is not None:
                by_source[f.partner] = source
        grade = source.grade
        if f.importance >= self.config.high_importance and source.stratum in ("D", "E"):
            grade = worse(grade, source.stratum)
        notes = ["valid_until passed with no outcome"] if f.outcome == "expired" else []
        return GradeInputs(
            f.partner, f.importance, outcome, f.echo or not f.claims, model.support(f),
            grade, source.tier, source.in_review, source.important_good,
            local=f.partner == LOCAL, notes=notes)

    def _source_grade(self, model: Model, partner: str) -> _SourceGrade:
        p = self._partner(partner)
        tier = effective_tier(p, self.tier(p)) if p is not None else self._stored_tier(partner)
        return _SourceGrade(
            source_grade(model.reliability(partner), self.config),
            source_grade(model.reliability(partner, HIGH), self.config), tier,
            any(r.partner == partner for r in self.reviews()), model.important_good(partner))

    def _keep(self, g: Grade) -> None:
        values = {"partner": g.partner, "credibility": g.credibility, "confidence": g.confidence,
                  "source_grade": g.source_grade, "reasons": orjson.dumps(g.reasons).decode(),
                  "graded_at": self._now()}
        with writer(self.engine).begin() as conn:
            n = conn.execute(t.grades.update().where(t.grades.c.object_id == g.object_id)
                             .values(**values)).rowcount
            if not n:
                conn.execute(t.grades.insert().values(object_id=g.object_id, **values))

    def credit(self, partner: str) -> Credit:
        firsts = self._model_for(partner).first_reports(partner)
        credited = [(f, lead, ok) for f, lead, ok in firsts if lead is not None or ok]
        leads = [lead / 1e6 for _, lead, _ in credited if lead is not None]
        return Credit(partner, len(firsts), sum(lead is not None for _, lead, _ in firsts),
                      sum(ok for _, _, ok in firsts), median(leads) if leads else None,
                      sum(f.importance for f, _, _ in credited),
                      frozenset(f.object_id for f, _, _ in credited))

    def confirmed(self, partner: str, object_ids: Iterable[str]) -> set[str]:
        """Those of ``object_ids`` whose report by ``partner`` has been confirmed (by our
        analyst, a sighting or independent corroboration resolved as confirmed)."""
        ids = list(dict.fromkeys(object_ids))
        out: set[str] = set()
        a = t.assertions.c
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 400):
                out.update(str(r[0]) for r in conn.execute(sa.select(a.object_id).where(
                    a.partner == partner, a.object_id.in_(ids[i:i + 400]),
                    a.outcome == "confirmed")))
        return out

    def summary(self, partner: str) -> PartnerTrust:
        model = self._model_for(partner)
        rel = model.reliability(partner)
        with self.engine.connect() as conn:
            why = conn.execute(sa.select(t.tiers.c.reason).where(
                t.tiers.c.partner == partner)).scalar()
        return PartnerTrust(partner, self._stored_tier(partner),
                            source_grade(rel, self.config), rel, model.counts(partner),
                            self.credit(partner),
                            sum(r.partner == partner for r in self.reviews()),
                            str(why or ""))

    def correlations(self, object_id: str) -> tuple[list[str], list[Correlation], bool]:
        """MISP-style correlation: the object's observables, every other report (ours or
        a partner's) sharing one of them, and whether that list was cut; see
        :mod:`detente.trust.correlation`.  An object never observed (nothing asserted it)
        is read from the store."""
        extra: list[str] = []
        obj = self.store.get(object_id)
        if obj is not None:
            extra = list(extract(obj.body, self._resolver_for([obj.body]), self.config).claims)
        with reader(self.engine).connect() as conn:
            return correlated(conn, object_id, extra)

    def history(self, partner: str, limit: int = 200) -> list[HistoryItem]:
        """What happened with this partner, newest first."""
        a = t.assertions.c
        items: list[HistoryItem] = []
        with self.engine.connect() as conn:
            for r in conn.execute(sa.select(t.assertions).where(a.partner == partner)):
                what = f"reported {r.type} (importance {r.importance:.2f})"
                items.append(HistoryItem(int(r.time), "echo" if r.echo else "report",
                                         r.object_id, r.echo_reason or what))
                if r.outcome:
                    items.append(HistoryItem(int(r.outcome_at or r.time), r.outcome,
                                             r.object_id, r.outcome_why or ""))
            for r in conn.execute(sa.select(t.opinions).where(t.opinions.c.partner == partner)):
                said = OpinionRecord(r.id, r.partner, r.object_id, r.value, r.explanation,
                                     int(r.time)).said
                items.append(HistoryItem(int(r.time), "opinion", r.object_id,
                                         f"{said} ({r.value}): {r.explanation}"[:500]))
            for r in conn.execute(sa.select(t.tier_log).where(t.tier_log.c.partner == partner)):
                items.append(HistoryItem(int(r.time), "tier-change", None,
                                         f"{r.old} -> {r.new}: {r.reason}"))
        for rv in self.reviews(open_only=False):
            if rv.partner == partner:
                items.append(HistoryItem(rv.opened_at, "review", rv.object_id, rv.reason))
        items.sort(key=lambda i: i.time, reverse=True)
        return items[:limit]


def _sets_by_assertion(pairs: Iterable[Any]) -> dict[int, set[str]]:
    """``(assertion id, value)`` rows grouped: each assertion's set of values."""
    out: dict[int, set[str]] = {}
    for aid, value in pairs:
        if aid in out:
            out[aid].add(value)
        else:
            out[aid] = {value}
    return out
