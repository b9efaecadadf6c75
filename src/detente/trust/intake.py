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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from detente.stix.timestamps import micros_from_stix
from detente.store.base import LOCAL, StoredObject
from detente.trust import schema as t
from detente.trust.claims import Extracted, Resolver, claim_key, extract, refs_of
from detente.trust.config import TrustConfig
from detente.trust.records import Observation
from detente.trust.released import first_release_of_object, released_claim_times

__all__ = ["Intake", "is_false_positive"]

_META_RELATIONSHIPS = frozenset({"derived-from", "duplicate-of"})
_FALSE_POSITIVE_KEYS = ("x_opencti_negative", "x_false_positive", "false_positive")


def is_false_positive(body: Mapping[str, Any]) -> bool:
    """Sightings carry no false-positive property in STIX 2.1 core: these conventions
    (OpenCTI's ``x_opencti_negative``, ``x_false_positive``, the label) are honoured."""
    labels = body.get("labels")
    flagged = isinstance(labels, list) and "false-positive" in labels
    return flagged or any(body.get(k) is True for k in _FALSE_POSITIVE_KEYS)


@dataclass
class _Asserted:
    id: int
    echo: bool
    echo_reason: str | None
    new_keys: dict[str, tuple[str, bool]]


class Intake:
    """The write side of ``observe``, working inside one transaction."""

    def __init__(self, conn: sa.Connection, resolve: Resolver, config: TrustConfig) -> None:
        self.conn, self.resolve, self.config = conn, resolve, config
        #: (object id, outcome, why) our sightings asked for, applied by the engine
        self.judgements: list[tuple[str, str, str, int]] = []

    def observe(self, obj: StoredObject) -> Observation:
        body = obj.body
        partner = obj.provenance.origin
        if body.get("relationship_type") in _META_RELATIONSHIPS:
            return self._derived(obj, body, partner)
        if obj.type == "sighting" and partner == LOCAL:
            return self._sighting(obj, body)
        found = extract(body, self.resolve, self.config)
        if not found.claims:
            return Observation(obj.id, obj.version, partner, "ignored")
        return self._assert(obj, body, partner, found)

    # (1) ---------------------------------------------------------------------------------
    def _derived(self, obj: StoredObject, body: Mapping[str, Any], partner: str) -> Observation:
        src, dst = body.get("source_ref"), body.get("target_ref")
        if not (isinstance(src, str) and isinstance(dst, str)):
            return Observation(obj.id, obj.version, partner, "ignored")
        known = self.conn.execute(sa.select(t.derived).where(
            t.derived.c.source_id == src, t.derived.c.target_id == dst)).first()
        if known is None:
            self.conn.execute(t.derived.insert().values(source_id=src, target_id=dst))
        ids = [r[0] for r in self.conn.execute(sa.select(t.assertions.c.id).where(
            t.assertions.c.object_id.in_([src, dst])))]
        self.conn.execute(t.links.update().where(
            t.links.c.first.in_(ids), t.links.c.later.in_(ids)).values(
            independent=False, reason=f"declared {body['relationship_type']} ({obj.id})"))
        return Observation(obj.id, obj.version, partner, "derived-from", target=dst)

    # (2) ---------------------------------------------------------------------------------
    def _sighting(self, obj: StoredObject, body: Mapping[str, Any]) -> Observation:
        target = body.get("sighting_of_ref")
        if not isinstance(target, str):
            return Observation(obj.id, obj.version, LOCAL, "ignored")
        outcome = "refuted" if is_false_positive(body) else "confirmed"
        why = f"our sighting {obj.id}" + (" (false positive)" if outcome == "refuted" else "")
        self.judgements.append((target, outcome, why, obj.date_added))
        return Observation(obj.id, obj.version, LOCAL,
                           "refutes" if outcome == "refuted" else "confirms", target=target)

    # (3) ---------------------------------------------------------------------------------
    def _assert(self, obj: StoredObject, body: Mapping[str, Any], partner: str,
                found: Extracted) -> Observation:
        received = obj.provenance.received_at or obj.date_added
        asserted = self._upsert(obj, body, partner, received, found)
        if asserted is None:
            return Observation(obj.id, obj.version, partner, "ignored", found.claims,
                               found.importance)
        corroborates, excluded = self._link(asserted, partner, obj.id, received, body)
        return Observation(obj.id, obj.version, partner, "assertion", found.claims,
                           found.importance, asserted.echo, asserted.echo_reason,
                           tuple(corroborates), tuple(excluded))

    def _echo(self, obj: StoredObject, partner: str, received: int,
              keys: dict[str, str]) -> tuple[bool, str | None, set[str]]:
        """(3a): whole-object echo and reason, and the claim keys that are echoes."""
        if partner == LOCAL:
            return False, None, set()
        times = released_claim_times(self.conn, partner, keys)
        echo_keys = {k for k, s in times.items() if s < received}
        if obj.provenance.flags.get("echo"):
            return True, "flagged as an echo by the federation layer", set(keys)
        first = first_release_of_object(self.conn, partner, obj.id)
        if first is not None and first < received:
            return True, f"we released {obj.id} to {partner} before it sent it", set(keys)
        if keys and echo_keys == set(keys):
            return True, f"every claim was released to {partner} before it sent it", echo_keys
        return False, None, echo_keys

    def _upsert(self, obj: StoredObject, body: Mapping[str, Any], partner: str,
                received: int, found: Extracted) -> _Asserted | None:
        a = t.assertions.c
        row = self.conn.execute(sa.select(a.id, a.version, a.echo, a.echo_reason).where(
            a.partner == partner, a.object_id == obj.id)).first()
        keys = {claim_key(c): c for c in found.claims}
        echo, reason, echo_keys = self._echo(obj, partner, received, keys)
        if row is not None and obj.version <= row.version:
            return None
        values = {"version": obj.version, "revoked": obj.revoked,
                  "importance": found.importance, "valid_until": _valid_until(body)}
        if row is None:
            inserted = self.conn.execute(t.assertions.insert().values(
                partner=partner, object_id=obj.id, type=obj.type, time=received,
                seq=obj.date_added, echo=echo, echo_reason=reason, **values))
            aid = int(inserted.inserted_primary_key[0])  # type: ignore[index]
        else:
            aid, echo, reason = int(row.id), bool(row.echo), row.echo_reason
            self.conn.execute(t.assertions.update().where(a.id == aid).values(**values))
        known = {r[0] for r in self.conn.execute(sa.select(t.claims.c.key).where(
            t.claims.c.assertion_id == aid))}
        fresh = {k: (c, echo or k in echo_keys) for k, c in keys.items() if k not in known}
        self._record(aid, fresh, found, body)
        return _Asserted(aid, echo, reason, fresh)

    def _record(self, aid: int, fresh: dict[str, tuple[str, bool]], found: Extracted,
                body: Mapping[str, Any]) -> None:
        if fresh:
            self.conn.execute(t.claims.insert(), [
                {"assertion_id": aid, "key": k, "claim": c, "echo": e}
                for k, (c, e) in fresh.items()])
        known_topics = {r[0] for r in self.conn.execute(sa.select(t.topics.c.topic).where(
            t.topics.c.assertion_id == aid))}
        new_topics = [x for x in found.topics if x not in known_topics]
        if new_topics:
            self.conn.execute(t.topics.insert(), [{"assertion_id": aid, "topic": x}
                                                  for x in new_topics])
        known_refs = {r[0] for r in self.conn.execute(sa.select(t.extrefs.c.ref).where(
            t.extrefs.c.assertion_id == aid))}
        refs = [r for r in dict.fromkeys(refs_of(body, self.config.vocabulary_sources))
                if r not in known_refs]
        if refs:
            self.conn.execute(t.extrefs.insert(), [{"assertion_id": aid, "ref": r}
                                                   for r in refs])

    def _link(self, me: _Asserted, partner: str, object_id: str, received: int,
              body: Mapping[str, Any]) -> tuple[list[str], list[tuple[str, str]]]:
        """(3b): link to other sources' assertions of the claims new in this one."""
        if not me.new_keys:
            return [], []
        a, c = t.assertions.c, t.claims.c
        rows = self.conn.execute(
            sa.select(a.id, a.partner, a.object_id, a.seq, c.key, c.echo)
            .join(t.claims, c.assertion_id == a.id)
            .where(c.key.in_(me.new_keys), a.partner != partner)).all()
        others: dict[int, tuple[str, str, int, set[str], bool]] = {}
        for oid, opartner, oobj, oseq, key, oecho in rows:
            entry = others.setdefault(int(oid), (opartner, oobj, int(oseq), set(), True))
            entry[3].add(key)
            others[int(oid)] = (*entry[:4], entry[4] and bool(oecho))
        corroborates, excluded = [], []
        me_seq = self._seq(me.id)
        for oid, (opartner, oobj, oseq, shared, all_echo) in others.items():
            first, later = (oid, me.id) if (oseq, oid) < (me_seq, me.id) else (me.id, oid)
            ok, why = self._independent(me, partner, object_id, shared, all_echo,
                                        (oid, opartner, oobj), later == me.id)
            self._put_link(first, later, ok, why)
            (corroborates.append(oobj) if ok else excluded.append((oobj, why)))
        return corroborates, excluded

    def _seq(self, aid: int) -> int:
        return int(self.conn.execute(sa.select(t.assertions.c.seq).where(
            t.assertions.c.id == aid)).scalar_one())

    def _independent(self, me: _Asserted, partner: str, object_id: str, shared: set[str],
                     other_all_echo: bool, other: tuple[int, str, str],
                     me_is_later: bool) -> tuple[bool, str]:
        oid, opartner, oobj = other
        if all(me.new_keys[k][1] for k in shared):
            return False, f"echo: {partner} had received it from us"
        if other_all_echo:
            return False, f"echo: {opartner} had received it from us"
        if oobj == object_id:
            return False, "the same object forwarded, not an independent report"
        if self._derived_between(object_id, oobj):
            return False, "declared derived-from"
        if self._shared_ref(me.id, oid):
            return False, "cites the same external report"
        if LOCAL in (partner, opartner) and (partner if me_is_later else opartner) == LOCAL:
            return False, "our report came later and may derive from the partner's"
        return True, "independent"

    def _derived_between(self, x: str, y: str) -> bool:
        d = t.derived.c
        return self.conn.execute(sa.select(d.source_id).where(sa.or_(
            sa.and_(d.source_id == x, d.target_id == y),
            sa.and_(d.source_id == y, d.target_id == x))).limit(1)).first() is not None

    def _shared_ref(self, x: int, y: int) -> bool:
        e = t.extrefs.c
        theirs = sa.select(e.ref).where(e.assertion_id == x)
        return self.conn.execute(sa.select(e.ref).where(
            e.assertion_id == y, e.ref.in_(theirs)).limit(1)).first() is not None

    def _put_link(self, first: int, later: int, ok: bool, why: str) -> None:
        l_ = t.links.c
        exists = self.conn.execute(sa.select(l_.first).where(
            l_.first == first, l_.later == later)).first()
        if exists is None:
            self.conn.execute(t.links.insert().values(first=first, later=later,
                                                      independent=ok, reason=why))


def _valid_until(body: Mapping[str, Any]) -> int | None:
    value = body.get("valid_until")
    if value is None:
        return None
    try:
        return micros_from_stix(value, field="valid_until")
    except Exception:  # a partner's malformed timestamp: no expiry rather than a crash
        return None
