"""Observing received and local objects: assertions, echoes, corroboration links.

For each stored object, in intake order:

(1) a ``derived-from`` (or ``duplicate-of``) relationship is recorded, and every link
    between assertions of its two ends is marked not independent;
(2) our own ``sighting`` confirms (or, marked false-positive, refutes) the sighted
    object's claims;
(3) anything else with claims becomes an assertion of its origin (``local`` for ours):
    (3a) echo detection — flagged by federation, an object id we released to that
         partner, or claims released to it before it sent them;
    (3b) links to every other source's assertion of a shared claim, each judged
         independent or not, with the reason.

A batch is processed set-wise inside one transaction: one query per step for the whole
batch (existing assertions, released claim times, first releases, known claims / topics /
external references, other sources' assertions of any claim in the batch, derivations,
existing links), then the per-object rules above run in Python, in intake order, over
in-memory maps that every object updates as it goes, so an object sees the ones before
it in the batch exactly as it would had they been observed one at a time.  Writes are
``executemany`` at the end (new assertions first, with their ids returned).  Our own
sightings' verdicts are not applied here: :func:`judgement_of` tells the engine where to
cut a batch so that each verdict is applied at its place in intake order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from detente.release import first_releases
from detente.stix.timestamps import micros_from_stix
from detente.store.base import LOCAL, StoredObject, is_partner_origin
from detente.store.engine import among, insert_rows, is_postgres
from detente.trust import schema as t
from detente.trust.claims import (
    CLAIMS,
    Extracted,
    Resolver,
    claim_key,
    extract,
    from_ahead,
    refs_of,
)
from detente.trust.config import TrustConfig
from detente.trust.records import Observation

__all__ = ["Intake", "is_false_positive", "judgement_of"]

_META_RELATIONSHIPS = frozenset({"derived-from", "duplicate-of"})
_FALSE_POSITIVE_KEYS = ("x_opencti_negative", "x_false_positive", "false_positive")

#: (object id, outcome, why, when) of one of our sightings
Judgement = tuple[str, str, str, int]
#: an assertion of one claim, as the link step sees it: (id, partner, object id, seq, echo)
_Claimed = tuple[int, str, str, int, bool]


def is_false_positive(body: Mapping[str, Any]) -> bool:
    """Sightings carry no false-positive property in STIX 2.1 core: these conventions
    (OpenCTI's ``x_opencti_negative``, ``x_false_positive``, the label) are honoured."""
    labels = body.get("labels")
    flagged = isinstance(labels, list) and "false-positive" in labels
    return flagged or any(body.get(k) is True for k in _FALSE_POSITIVE_KEYS)


def judgement_of(obj: StoredObject, body: Mapping[str, Any]) -> Judgement | None:
    """(2): the verdict our own sighting asks for, or None for any other object."""
    if obj.type != "sighting" or obj.provenance.origin != LOCAL:
        return None
    if body.get("relationship_type") in _META_RELATIONSHIPS:
        return None
    target = body.get("sighting_of_ref")
    if not isinstance(target, str):
        return None
    outcome = "refuted" if is_false_positive(body) else "confirmed"
    why = f"our sighting {obj.id}" + (" (false positive)" if outcome == "refuted" else "")
    return target, outcome, why, obj.date_added


@dataclass(eq=False, slots=True)
class _State:
    """One assertion as the batch sees it, kept up to date object by object."""

    partner: str
    object_id: str
    seq: int
    version: str
    echo: bool
    echo_reason: str | None
    id: int = 0  # assigned on insert for new assertions
    new: bool = False
    keys: set[str] = field(default_factory=set)
    topics: set[str] = field(default_factory=set)
    refs: set[str] = field(default_factory=set)
    #: the row to insert (new) or the values to update (existing and re-versioned)
    values: dict[str, Any] | None = None


@dataclass(eq=False, slots=True)
class _Item:
    """One object of the batch and what the first pass made of it."""

    obj: StoredObject
    body: Mapping[str, Any]
    partner: str
    kind: str  # "derived", "assert", or "done" (observed already: ``done``)
    done: Observation | None = None
    found: Extracted | None = None
    keys: dict[str, str] = field(default_factory=dict)
    #: (3a): the whole object is an echo (and why); the claim keys that are echoes
    echo: bool = False
    echo_reason: str | None = None
    echo_keys: set[str] = field(default_factory=set)
    state: _State | None = None  # None for a re-send of an older or the same version


@dataclass(eq=False, slots=True)
class _NewLink:
    first: int
    later: int
    independent: bool
    reason: str


class Intake:
    """The write side of ``observe``, working inside one transaction."""

    def __init__(self, conn: sa.Connection, resolve: Resolver, config: TrustConfig) -> None:
        self.conn, self.resolve, self.config = conn, resolve, config
        #: (object id, outcome, why, when) our sightings asked for, applied by the engine
        self.judgements: list[Judgement] = []

    def observe_many(self, objs: Sequence[StoredObject],
                     bodies: Sequence[Mapping[str, Any]] | None = None) -> list[Observation]:
        """Observe a batch, in order; ``bodies`` are the parsed objects when known."""
        if bodies is None:
            bodies = [o.body for o in objs]
        items = [self._classify(o, b) for o, b in zip(objs, bodies, strict=True)]
        work = [it for it in items if it.done is None]
        if work:
            _Batch(self.conn, self.config).run(work)
        out = [it.done for it in items]
        assert all(o is not None for o in out)
        return out  # type: ignore[return-value]

    def _classify(self, obj: StoredObject, body: Mapping[str, Any]) -> _Item:
        partner = obj.provenance.origin
        if body.get("relationship_type") in _META_RELATIONSHIPS:
            if isinstance(body.get("source_ref"), str) and isinstance(body.get("target_ref"),
                                                                      str):
                return _Item(obj, body, partner, "derived")
            return _Item(obj, body, partner, "done",
                         Observation(obj.id, obj.version, partner, "ignored"))
        if obj.type == "sighting" and partner == LOCAL:
            verdict = judgement_of(obj, body)
            if verdict is None:
                return _Item(obj, body, partner, "done",
                             Observation(obj.id, obj.version, LOCAL, "ignored"))
            self.judgements.append(verdict)
            effect = "refutes" if verdict[1] == "refuted" else "confirms"
            return _Item(obj, body, partner, "done",
                         Observation(obj.id, obj.version, LOCAL, effect, target=verdict[0]))
        ahead = obj.ahead.get(CLAIMS) if obj.ahead else None
        if ahead is not None:  # extracted ahead, by an ingest worker process
            found, keys = from_ahead(ahead)
        else:
            found = extract(body, self.resolve, self.config)
            keys = {claim_key(c): c for c in found.claims}
        if not found.claims:
            return _Item(obj, body, partner, "done",
                         Observation(obj.id, obj.version, partner, "ignored"))
        return _Item(obj, body, partner, "assert", None, found, keys)


class _Batch:
    """Reads for a whole batch, the per-object rules in memory, then the writes."""

    def __init__(self, conn: sa.Connection, config: TrustConfig) -> None:
        self.conn, self.config = conn, config
        self.pg = is_postgres(conn.engine)
        self.states: dict[tuple[str, str], _State] = {}
        #: claim key -> partner -> assertions: a partner repeating a claim costs nothing
        #: when another partner's report of it is linked (no scan over its own copies)
        self.by_key: dict[str, dict[str, list[_Claimed]]] = {}
        self.refs: dict[int, set[str]] = {}
        self.derived: set[tuple[str, str]] = set()
        self.old_links: set[tuple[int, int]] = set()
        self.new_links: dict[tuple[int, int], _NewLink] = {}
        self.links_by_object: dict[str, list[tuple[int, int]]] = {}
        self.object_of: dict[int, str] = {}
        self.writes_derived: list[dict[str, Any]] = []
        self.writes_marks: list[tuple[str, str, str]] = []
        self.writes_claims: list[tuple[int, str, str, bool]] = []
        self.writes_topics: list[tuple[int, str]] = []
        self.writes_refs: list[tuple[int, str]] = []

    def run(self, items: list[_Item]) -> None:
        """Observe ``items`` (derivations and assertions), setting each one's ``done``."""
        asserted = [it for it in items if it.kind == "assert"]
        self._load(items, asserted)
        self._plan(asserted)
        self._write_assertions()
        for it in items:
            it.done = self._derived(it) if it.kind == "derived" else self._assert(it)
        self._write_rest()

    # -- reads --------------------------------------------------------------------------
    def _select(self, stmt_for: Any, values: set[Any] | list[Any]) -> list[Any]:
        """Rows of ``stmt_for(within)``, where ``within(column)`` is ``column IN values``
        (one bound parameter, :func:`~detente.store.engine.among`)."""
        if not values:
            return []
        items = sorted(values)
        return list(self.conn.execute(stmt_for(
            lambda col: among(col, items, postgres=self.pg))).all())

    def _load(self, items: list[_Item], asserted: list[_Item]) -> None:
        a, c = t.assertions.c, t.claims.c
        oids = {it.obj.id for it in asserted}
        for r in self._select(lambda p: sa.select(
                a.id, a.partner, a.object_id, a.version, a.echo, a.echo_reason, a.seq)
                .where(p(a.object_id)), oids):
            st = _State(r.partner, r.object_id, int(r.seq), r.version, bool(r.echo),
                        r.echo_reason, int(r.id))
            self.states[(st.partner, st.object_id)] = st
            self.object_of[st.id] = st.object_id
        known = {st.id: st for st in self.states.values()}
        keys = {k for it in asserted for k in it.keys}
        # other sources' assertions of any claim in the batch (also the batch's own)
        others: set[int] = set()
        for r in self._select(lambda p: sa.select(a.id, a.partner, a.object_id, a.seq, c.key,
                                                  c.echo)
                              .join(t.claims, c.assertion_id == a.id).where(p(c.key)),
                              keys):
            aid = int(r.id)
            self.by_key.setdefault(r.key, {}).setdefault(r.partner, []).append(
                (aid, r.partner, r.object_id, int(r.seq), bool(r.echo)))
            self.object_of[aid] = r.object_id
            others.add(aid)
        for aid, key in self._select(lambda p: sa.select(c.assertion_id, c.key)
                                     .where(p(c.assertion_id)), set(known)):
            known[int(aid)].keys.add(key)
        for aid, topic in self._select(lambda p: sa.select(t.topics).where(
                p(t.topics.c.assertion_id)), set(known)):
            known[int(aid)].topics.add(topic)
        for aid, ref in self._select(lambda p: sa.select(t.extrefs).where(
                p(t.extrefs.c.assertion_id)), others | set(known)):
            self.refs.setdefault(int(aid), set()).add(ref)
        for st in known.values():
            st.refs = self.refs.setdefault(st.id, set())
        lk = t.links.c
        for col in (lk.first, lk.later):
            for first, later in self._select(lambda p, col=col: sa.select(lk.first, lk.later)
                                             .where(p(col)), set(known)):
                self.old_links.add((int(first), int(later)))
        d = t.derived.c
        ends = oids | {str(it.body["source_ref"]) for it in items if it.kind == "derived"}
        for col in (d.source_id, d.target_id):
            for src, dst in self._select(lambda p, col=col: sa.select(d.source_id, d.target_id)
                                         .where(p(col)), ends):
                self.derived.add((src, dst))
        self._echoes(asserted)

    def _echoes(self, asserted: list[_Item]) -> None:
        """(3a) for every object of the batch: released claim times, first releases.

        Only a partner is ever released anything (a feed or a local import has no tier
        and is sent nothing), so the release records are read for partners' objects
        alone: for any other source both reads would find nothing."""
        foreign = [it for it in asserted if it.partner != LOCAL]
        partners = [it for it in foreign if is_partner_origin(it.partner)]
        times: dict[tuple[str, str], int] = {}
        rc = t.released_claims.c
        for partner, key, seq in self._select(
                lambda p: sa.select(rc.partner, rc.key, rc.first_seq).where(p(rc.key)),
                {k for it in partners for k in it.keys}):
            times[(str(partner), str(key))] = int(seq)
        unflagged = {it.obj.id for it in partners if not it.obj.provenance.flags.get("echo")}
        firsts = first_releases(self.conn, unflagged) if unflagged else {}
        if not times and not firsts:  # nothing released: only a flagged object is an echo
            foreign = [it for it in foreign if it.obj.provenance.flags.get("echo")]
        for it in foreign:
            obj, partner = it.obj, it.partner
            received = obj.provenance.received_at or obj.date_added
            it.echo_keys = {k for k in it.keys
                            if (s := times.get((partner, k))) is not None and s < received}
            first = firsts.get((partner, obj.id))
            if obj.provenance.flags.get("echo"):
                it.echo, it.echo_reason = True, "flagged as an echo by the federation layer"
                it.echo_keys = set(it.keys)
            elif first is not None and first < received:
                it.echo, it.echo_keys = True, set(it.keys)
                it.echo_reason = f"we released {obj.id} to {partner} before it sent it"
            elif it.keys and it.echo_keys == set(it.keys):
                it.echo = True
                it.echo_reason = f"every claim was released to {partner} before it sent it"

    # -- the first pass: which objects make or extend an assertion ----------------------
    def _plan(self, asserted: list[_Item]) -> None:
        for it in asserted:
            obj, found = it.obj, it.found
            assert found is not None
            st = self.states.get((it.partner, obj.id))
            if st is not None and obj.version <= st.version:
                continue  # an older or the same version: nothing new
            values = {"version": obj.version, "revoked": obj.revoked,
                      "importance": found.importance, "valid_until": _valid_until(it.body)}
            if st is None:
                received = obj.provenance.received_at or obj.date_added
                st = _State(it.partner, obj.id, obj.date_added, obj.version, it.echo,
                            it.echo_reason, new=True)
                st.values = {"partner": it.partner, "object_id": obj.id, "type": obj.type,
                             "time": received, "seq": obj.date_added, "echo": it.echo,
                             "echo_reason": it.echo_reason}
                self.states[(it.partner, obj.id)] = st
            elif not st.new:
                st.values = {}
            assert st.values is not None
            st.values.update(values)
            st.version = obj.version
            it.state = st

    def _write_assertions(self) -> None:
        a = t.assertions.c
        new = [st for st in self.states.values() if st.new and st.values is not None]
        if new:
            ids = _new_ids(self.conn, len(new))
            rows = []
            for st, aid in zip(new, ids, strict=True):
                st.id = aid
                self.object_of[st.id] = st.object_id
                st.refs = self.refs.setdefault(st.id, set())
                v = st.values or {}
                rows.append((aid, *_assertion_values(v)))
            insert_rows(self.conn, t.assertions, ("id", *_ASSERTION_COLUMNS), rows)
        changed = [{"b_id": st.id, **{f"b_{k}": v for k, v in st.values.items()}}
                   for st in self.states.values() if not st.new and st.values]
        if changed:
            self.conn.execute(t.assertions.update().where(a.id == sa.bindparam("b_id"))
                              .values({k: sa.bindparam(f"b_{k}") for k in (
                                  "version", "revoked", "importance", "valid_until")}),
                              changed)

    # -- the second pass, in intake order -----------------------------------------------
    def _derived(self, it: _Item) -> Observation:
        obj, body = it.obj, it.body
        src, dst = str(body["source_ref"]), str(body["target_ref"])
        if (src, dst) not in self.derived:
            self.derived.add((src, dst))
            self.writes_derived.append({"source_id": src, "target_id": dst})
        reason = f"declared {body['relationship_type']} ({obj.id})"
        ends = {src, dst}
        for key in {k for end in ends for k in self.links_by_object.get(end, ())}:
            if self.object_of[key[0]] in ends and self.object_of[key[1]] in ends:
                link = self.new_links[key]
                link.independent, link.reason = False, reason
        self.writes_marks.append((src, dst, reason))
        return Observation(obj.id, obj.version, it.partner, "derived-from", target=dst)

    def _assert(self, it: _Item) -> Observation:
        obj, found, st = it.obj, it.found, it.state
        assert found is not None
        if st is None:
            return Observation(obj.id, obj.version, it.partner, "ignored", found.claims,
                               found.importance)
        fresh = {k: (c, st.echo or k in it.echo_keys) for k, c in it.keys.items()
                 if k not in st.keys}
        self._record(st, fresh, found, it.body)
        corroborates, excluded = self._link(st, fresh) if fresh else ([], [])
        for k, (_, echo) in fresh.items():
            self.by_key.setdefault(k, {}).setdefault(st.partner, []).append(
                (st.id, st.partner, st.object_id, st.seq, echo))
        return Observation(obj.id, obj.version, it.partner, "assertion", found.claims,
                           found.importance, st.echo, st.echo_reason,
                           tuple(corroborates), tuple(excluded))

    def _record(self, st: _State, fresh: dict[str, tuple[str, bool]], found: Extracted,
                body: Mapping[str, Any]) -> None:
        for k, (c, e) in fresh.items():
            st.keys.add(k)
            self.writes_claims.append((st.id, k, c, e))
        for x in dict.fromkeys(found.topics):
            if x not in st.topics:
                st.topics.add(x)
                self.writes_topics.append((st.id, x))
        for r in dict.fromkeys(refs_of(body, self.config.vocabulary_sources)):
            if r not in st.refs:
                st.refs.add(r)
                self.writes_refs.append((st.id, r))

    def _link(self, me: _State, fresh: dict[str, tuple[str, bool]],
              ) -> tuple[list[str], list[tuple[str, str]]]:
        """(3b): link to other sources' assertions of the claims new in this one."""
        others: dict[int, tuple[str, str, int, set[str], bool]] = {}
        for key in fresh:
            for source, claimed in self.by_key.get(key, {}).items():
                if source == me.partner:
                    continue
                for oid, opartner, oobj, oseq, oecho in claimed:
                    entry = others.get(oid)
                    if entry is None:
                        others[oid] = (opartner, oobj, oseq, {key}, oecho)
                    else:
                        entry[3].add(key)
                        others[oid] = (*entry[:4], entry[4] and oecho)
        corroborates, excluded = [], []
        for oid, (opartner, oobj, oseq, shared, all_echo) in sorted(
                others.items(), key=lambda kv: (kv[1][2], kv[0])):
            me_later = (oseq, oid) < (me.seq, me.id)
            first, later = (oid, me.id) if me_later else (me.id, oid)
            ok, why = self._independent(me, fresh, shared, all_echo, (oid, opartner, oobj),
                                        me_later)
            self._put_link(first, later, ok, why)
            (corroborates.append(oobj) if ok else excluded.append((oobj, why)))
        return corroborates, excluded

    def _independent(self, me: _State, fresh: dict[str, tuple[str, bool]], shared: set[str],
                     other_all_echo: bool, other: tuple[int, str, str],
                     me_is_later: bool) -> tuple[bool, str]:
        oid, opartner, oobj = other
        partner, object_id = me.partner, me.object_id
        if all(fresh[k][1] for k in shared):
            return False, f"echo: {partner} had received it from us"
        if other_all_echo:
            return False, f"echo: {opartner} had received it from us"
        if oobj == object_id:
            return False, "the same object forwarded, not an independent report"
        if (object_id, oobj) in self.derived or (oobj, object_id) in self.derived:
            return False, "declared derived-from"
        if not me.refs.isdisjoint(self.refs.get(oid, ())):
            return False, "cites the same external report"
        if LOCAL in (partner, opartner) and (partner if me_is_later else opartner) == LOCAL:
            return False, "our report came later and may derive from the partner's"
        return True, "independent"

    def _put_link(self, first: int, later: int, ok: bool, why: str) -> None:
        key = (first, later)
        if key in self.old_links or key in self.new_links:
            return
        self.new_links[key] = _NewLink(first, later, ok, why)
        for aid in {first, later}:
            self.links_by_object.setdefault(self.object_of[aid], []).append(key)

    # -- writes -------------------------------------------------------------------------
    def _write_rest(self) -> None:
        conn = self.conn
        if self.writes_derived:
            conn.execute(t.derived.insert(), self.writes_derived)
        a, lk = t.assertions.c, t.links.c
        for src, dst, reason in self.writes_marks:  # links that existed before the batch
            ids = sa.select(a.id).where(a.object_id.in_([src, dst])).scalar_subquery()
            conn.execute(t.links.update().where(lk.first.in_(ids), lk.later.in_(ids))
                         .values(independent=False, reason=reason))
        insert_rows(conn, t.claims, ("assertion_id", "key", "claim", "echo"),
                    self.writes_claims)
        insert_rows(conn, t.topics, ("assertion_id", "topic"), self.writes_topics)
        insert_rows(conn, t.extrefs, ("assertion_id", "ref"), self.writes_refs)
        insert_rows(conn, t.links, ("first", "later", "independent", "reason"),
                    [(x.first, x.later, x.independent, x.reason)
                     for x in self.new_links.values()])


#: the columns of a new assertion row, after its id (every one: no defaults apply)
_ASSERTION_COLUMNS = ("partner", "object_id", "type", "time", "seq", "echo", "echo_reason",
                      "version", "revoked", "importance", "valid_until")
_assertion_values = itemgetter(*_ASSERTION_COLUMNS)


def _new_ids(conn: sa.Connection, n: int) -> list[int]:
    """``n`` fresh assertion ids, taken before the rows are inserted in bulk.

    PostgreSQL: from the column's own sequence (safe beside any other writer).  SQLite:
    after the largest id, which is what SQLite itself assigns (no AUTOINCREMENT), and the
    write lock held since ``BEGIN IMMEDIATE`` means nobody else inserts meanwhile."""
    if is_postgres(conn.engine):
        seq = sa.text("SELECT nextval(pg_get_serial_sequence('trust_assertions', 'id')) "
                      "FROM generate_series(1, :n)")
        return sorted(int(x) for x in conn.execute(seq, {"n": n}).scalars())
    last = conn.execute(sa.select(sa.func.max(t.assertions.c.id))).scalar()
    start = int(last or 0) + 1
    return list(range(start, start + n))


def _valid_until(body: Mapping[str, Any]) -> int | None:
    value = body.get("valid_until")
    if value is None:
        return None
    try:
        return micros_from_stix(value, field="valid_until")
    except Exception:  # a partner's malformed timestamp: no expiry rather than a crash
        return None
