"""THE intake path: everything that enters a node's store passes through :class:`Intake`.

Four routes use it and nothing else: local ingest (``detente ingest``, the demo), a
partner's TAXII push into our ``inbox``, a pull from a partner (``detente sync``) and a
pull from a TAXII feed (``detente feed pull``, provenance ``feed:NAME``).
For each batch, :meth:`Intake.receive`:

  (1) validates each object (STIX 2.1, one entry point: :func:`detente.stix.validate`);
  (2) refuses what the sender may not say — from a partner or a feed: objects claiming
      to be created by this node, and new versions (or "corrections") of objects
      created here;
  (3) tells echoes apart (a partner only, :mod:`detente.federation.exchange.echo`): our
      own (id, version) coming back is not stored again; our content re-issued under
      another id is stored flagged ``echo`` so it never counts as corroboration;
  (4) stores the rest with provenance (origin, received_at, the request's signature) and,
      for a partner's or a feed's versions, a ledger ``receipt`` entry each — one
      transaction.  Locally ingested objects whose ``created_by_ref`` names someone else
      are third-party material: stored with origin ``local:import``, their creator kept,
      never "created on this node".  A source that accepts corrections (``ingest
      --accept-corrections``, a feed added with it) may replace the body of a version it
      sent before: a ``correction`` ledger entry each, and the views released of it are
      cut again (:meth:`detente.release.Releaser.reissue`);
  (5) gives earned trust what was stored (corroboration by independent sources, our own
      sightings confirming a partner's report), as evidence only; and credits a partner's
      answer to one of our requests for information (:mod:`detente.rfi`) in the ledger;

and :meth:`Intake.close`, once per run, (6) refreshes the earned tiers: a tier that
changed reaches the release policy through the node's one wiring (``Node.trust``).
Steps (2) to (4) share one read of what the store holds of the batch's ids
(:meth:`~detente.store.base.Store.held_versions`: which versions, and from whom).

When the sender reads our answer (a TAXII push: ``answers_sender``), two more rules hold:

  (0) the push is budgeted per partner (``push_objects_per_day``; 429 past it), counted
      before anything else is done;
  (7) an object the sender may not see — an id we hold that was never released to it and
      that it never sent us — is answered exactly as an unknown id would be: a plain
      success, whatever happened to it (refused as ours, refused by the versioning rules,
      a duplicate of a version we hold, an echo of a release to someone else).  Nothing
      is stored for it; the refused write is recorded for the operator
      (``refused_writes``, :func:`refused_writes`), never told to the sender.  Refusals
      that depend only on what the sender wrote (invalid STIX, an object claiming to be
      created by this node) are answered as they are.

Every route therefore counts, flags and learns from the same object identically; the
intake-parity test (``tests/federation/exchange/test_parity.py``) runs the same cases
through all three.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa

from detente.errors import DetenteError
from detente.federation.exchange.echo import Echo, EchoIndex
from detente.federation.schema import push_budget
from detente.federation.schema import refused_writes as refused_table
from detente.ledger import Entry
from detente.ledger.entry import format_time as format_entry_time
from detente.node import Node
from detente.release import released_ids
from detente.stix.model import StixObject
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.validate import validate
from detente.store.base import (
    FEED_PREFIX,
    IMPORTED,
    LOCAL,
    Outcome,
    Provenance,
    PutResult,
    StoredObject,
    feed_origin,
)
from detente.store.engine import writer

__all__ = ["Detail", "Intake", "IntakeResult", "PushBudgetExceeded", "Received",
           "RefusedWrite", "Source", "receive", "refused_writes", "screen"]


@dataclass(frozen=True, slots=True)
class Source:
    """Who sends a batch: this node (``local``), a partner by name, or a feed
    (``feed:NAME``)."""

    name: str = LOCAL
    identity_id: str | None = None
    #: the same version with other content replaces the stored body (local imports
    #: and feeds only; never material created on this node)
    accept_corrections: bool = False

    @property
    def is_partner(self) -> bool:
        return self.name != LOCAL and not self.is_feed

    @property
    def is_feed(self) -> bool:
        return self.name.startswith(FEED_PREFIX)

    @property
    def is_remote(self) -> bool:
        """A partner or a feed: anything not typed in by this node's operator."""
        return self.name != LOCAL

    @classmethod
    def partner(cls, node: Node, name: str) -> Source:
        """A known partner (a removed partner cannot send: NotFoundError)."""
        return cls(name, node.partners.get(name).identity_id)

    @classmethod
    def feed(cls, name: str, *, accept_corrections: bool = False) -> Source:
        """A TAXII feed: no identity, no tier, nothing released to it."""
        return cls(feed_origin(name), None, accept_corrections)


class PushBudgetExceeded(DetenteError):
    """The partner pushed its objects for today (``push_objects_per_day``)."""

    http_status = 429


@dataclass(frozen=True, slots=True)
class RefusedWrite:
    """A write refused for an object its sender may not see (the operator's record)."""

    partner: str
    object_id: str
    version: str
    reason: str
    at: int


@dataclass(frozen=True, slots=True)
class Detail:
    """One object's fate: id, version, a message, and where it was in the input."""

    id: str
    version: str
    message: str | None = None
    position: str | None = None
    #: the message would tell something about what this node holds (rule (7)): never
    #: set for refusals that depend only on what the sender wrote
    about_held: bool = False

    def to_json(self) -> dict[str, str]:
        out = {"id": self.id, "version": self.version}
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True, slots=True)
class Received:
    """A version stored by this intake."""

    object: StixObject
    date_added: int
    flags: dict[str, Any] = field(default_factory=dict)
    #: the provenance it was stored with (None: derived again from the intake's source)
    provenance: Provenance | None = None


@dataclass
class IntakeResult:
    """What one batch (or a whole run, see :meth:`add`) did, in the same terms on every
    route: new and updated versions, duplicates, echoes, rejections."""

    source: str
    received_at: int
    successes: list[Detail] = field(default_factory=list)
    failures: list[Detail] = field(default_factory=list)
    stored: list[Received] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    echoes: int = 0
    #: answered as plain successes, for objects the sender may not see (rule (7))
    concealed: int = 0
    #: versions whose stored body a correction replaced
    corrected: int = 0

    @property
    def total(self) -> int:
        return len(self.successes) + len(self.failures)

    @property
    def rejected(self) -> int:
        return len(self.failures)


#: the page's ids the store holds, each with its versions and the origin of each
#: (:meth:`~detente.store.base.Store.held_versions`), read once before (2)
_Held = Mapping[str, Mapping[str, str]]


def _local(held: _Held) -> set[str]:
    """Those ids held as material created on this node (any version)."""
    return {oid for oid, versions in held.items() if LOCAL in versions.values()}


def _guess(obj: Any) -> tuple[str, str]:
    """id and version of a (possibly invalid) object, for the status resource."""
    if not isinstance(obj, dict):
        return "unknown", ""
    oid = obj.get("id") if isinstance(obj.get("id"), str) else "unknown"
    version = obj.get("modified") or obj.get("created") or ""
    return str(oid)[:300], str(version)[:64] if isinstance(version, str) else ""


def screen(obj: Any, position: str) -> StixObject | Detail:
    """Step (1) for one object: the validated object, or its rejection at ``position``
    (also run ahead in an ingest worker process, :mod:`detente.federation.exchange.pipe`)."""
    try:
        return validate(obj)
    except DetenteError as exc:
        message = exc.message
    except (ValueError, TypeError, KeyError, RecursionError):
        message = "object could not be validated"
    oid, version = _guess(obj)
    return Detail(oid, version, message, position)


def _version_of(obj: StixObject, fallback: int) -> str:
    value = obj.body.get("modified") or obj.body.get("created")
    return value if isinstance(value, str) else format_micros(fallback)


class Intake:
    """One run of the intake path for one source; use as a context manager (or call
    :meth:`close`) so tiers are refreshed once at the end of the run."""

    def __init__(self, node: Node, source: Source, *, trust: bool = True,
                 echoes: bool = True, answers_sender: bool = False) -> None:
        self.node, self.source = node, source
        # the ledger is opened (opening it writes) before any store transaction writes
        # entries into it: opened inside one, it would wait on that very transaction
        self.ledger = node.ledger
        self.trust = trust
        self.answers_sender = answers_sender and source.is_partner
        self.check_echoes = echoes and source.is_partner
        self._echo_index: EchoIndex | None = None
        self._pending: list[StoredObject] = []
        #: corrected versions whose released views wait for the caller's commit
        self._corrections: list[tuple[str, str]] = []
        #: third-party creators named by the objects of this (local) run
        self._creators: set[str] = set()
        self.observed = False

    def __enter__(self) -> Intake:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- one batch ------------------------------------------------------------------
    def receive(self, objects: Sequence[Any], *, signature: str | None = None,
                positions: Sequence[str] | None = None,
                conn: sa.Connection | None = None) -> IntakeResult:
        """Steps (1)-(5) for one batch; never raises for bad objects.

        With ``conn`` (a strict, all-or-nothing ingest) the batch joins that transaction
        and its trust evidence waits until :meth:`close` (after the caller committed)."""
        result = IntakeResult(self.source.name, now_micros())
        if self.answers_sender:
            self._spend(len(objects))                                            # (0)
        where = list(positions) if positions is not None else [str(i) for i in
                                                                 range(len(objects))]
        valid, at = self._validated(objects, where, result)                      # (1)
        # what the store holds of the page's ids (versions, from whom): one read for (2)-(4)
        held = self.node.store.held_versions({o.id for o in valid}) if valid else {}
        local = _local(held)
        valid, at = self._admissible(valid, at, held, local, result)             # (2)
        echoes = self._echoes(valid, held, local) if self.check_echoes and valid else {}  # (3)
        if valid:
            self._store(valid, at, echoes, held, signature, result, conn)        # (4)
        if self.answers_sender:
            self._conceal(result)                                                # (7)
        if result.stored and self.trust:                                         # (5)
            stored = [self._stored_object(r, result.received_at, signature)
                      for r in result.stored]
            if conn is None:
                self._observe(stored, [r.object.body for r in result.stored])
            else:
                self._pending += stored  # bodies decoded again later: memory stays small
        if result.stored and self.source.is_partner:                             # (5)
            notes = [self._stored_object(r, result.received_at, signature)
                     for r in result.stored if r.object.type == "note"]
            if notes:  # answers to our RFIs: credited to the answering partner
                self.node.rfis.credit_answers(notes)
        return result

    def _validated(self, objects: Sequence[Any], where: list[str],
                   result: IntakeResult) -> tuple[list[StixObject], list[str]]:
        valid: list[StixObject] = []
        at: list[str] = []
        for obj, pos in zip(objects, where, strict=True):
            checked = screen(obj, pos)
            if isinstance(checked, Detail):
                result.failures.append(checked)
            else:
                valid.append(checked)
                at.append(pos)
        return valid, at

    def _admissible(self, valid: list[StixObject], at: list[str], held: _Held,
                    local: set[str], result: IntakeResult
                    ) -> tuple[list[StixObject], list[str]]:
        if not self.source.is_remote:
            return valid, at
        ours = self.node.identity_id
        forged = self._partner_versions(valid, held) if self.source.is_feed else {}
        kept: list[StixObject] = []
        kept_at: list[str] = []
        for obj, pos in zip(valid, at, strict=True):
            if obj.created_by_ref == ours:
                reason = f"{obj.id} claims to be created by this node ({ours}); refused"
            elif (obj.id, obj.version) in forged:
                reason = (f"{obj.id} is created by partner {forged[obj.id, obj.version]}: "
                          "only its own signed answers add versions of it, not a feed")
            elif obj.id in local:
                result.failures.append(Detail(
                    obj.id, _version_of(obj, result.received_at),
                    f"{obj.id} was created on this node: "
                    f"{'feeds' if self.source.is_feed else 'partners'} cannot add versions "
                    "of it, nor correct it",
                    pos, about_held=True))
                continue
            else:
                kept.append(obj)
                kept_at.append(pos)
                continue
            result.failures.append(Detail(obj.id, _version_of(obj, result.received_at),
                                          reason, pos))
        return kept, kept_at

    def _partner_versions(self, valid: list[StixObject],
                          held: _Held) -> dict[tuple[str, str], str]:
        """A feed's objects that would add a version to a partner's object (its creator
        is that partner), as (id, version) -> partner.  A feed's answers are unsigned, so
        anyone could write the partner's identity into ``created_by_ref``; the same
        version as held is left to the store (a duplicate by another route)."""
        creators = {p.identity_id: p.name for p in self.node.partners.all() if p.identity_id}
        suspects = [o for o in valid if o.created_by_ref in creators]
        if not suspects:
            return {}
        out: dict[tuple[str, str], str] = {}
        for o in suspects:
            if o.version and o.id in held and o.version not in held[o.id]:
                out[o.id, o.version] = creators[str(o.created_by_ref)]
        return out

    def _echoes(self, valid: list[StixObject], held: _Held, local: set[str]
                ) -> dict[int, Echo]:
        if self._echo_index is None:
            self._echo_index = EchoIndex.build(self.node.store, self.source.name)
        found = self._echo_index.classify([o.body for o in valid], local=local)
        # a content echo is a *new* id repeating what we released to this partner; an id
        # we already hold (an update, a re-issue, a relay of a third party's object we
        # have from its creator) is not one
        return {i: e for i, e in found.items() if e.by_id or valid[i].id not in held}

    def _provenance(self, signature: str | None, received_at: int,
                    flags: dict[str, Any] | None = None, *,
                    imported: bool = False) -> Provenance:
        corrections = self.source.accept_corrections
        if not self.source.is_remote:
            return Provenance(origin=IMPORTED if imported else LOCAL, flags=flags or {},
                              accept_corrections=corrections and imported)
        return Provenance(origin=self.source.name, origin_identity=self.source.identity_id,
                          received_at=received_at, signature=signature, flags=flags or {},
                          accept_corrections=corrections and self.source.is_feed)

    def _imported(self, obj: StixObject) -> bool:
        """Third-party material typed in locally: its creator is someone else — or it is
        the identity of a third-party creator (MITRE's identity carries no
        ``created_by_ref``; the objects of this run that name it as creator say whose)."""
        if self.source.is_remote:
            return False
        if obj.created_by_ref is not None:
            return obj.created_by_ref != self.node.identity_id
        return obj.type == "identity" and obj.id in self._creators

    def _note_creators(self, valid: list[StixObject]) -> None:
        ours = self.node.identity_id
        self._creators.update(o.created_by_ref for o in valid
                              if o.created_by_ref is not None and o.created_by_ref != ours)

    def _store(self, valid: list[StixObject], at: list[str], echoes: dict[int, Echo],
               held: _Held, signature: str | None, result: IntakeResult,
               conn: sa.Connection | None) -> None:
        by_id = {i for i, e in echoes.items() if e.by_id}
        for i in sorted(by_id):  # our own version back: not stored again
            obj = valid[i]
            version = _version_of(obj, result.received_at)
            if echoes[i].how == "support":
                result.duplicates += 1
                result.successes.append(Detail(obj.id, version, "already stored", at[i],
                                               about_held=True))
            else:
                result.echoes += 1
                result.successes.append(Detail(obj.id, version, "echo of our release", at[i],
                                               about_held=True))
        # plain objects in one put, each flagged content echo with its own flags
        groups: list[tuple[list[int], dict[str, Any] | None]] = [
            ([i for i in range(len(valid)) if i not in echoes], None)]
        groups += [([i], echoes[i].flags) for i in sorted(set(echoes) - by_id)]
        if not self.source.is_remote:  # ours and third-party material, put apart
            self._note_creators(valid)
            imported = [self._imported(o) for o in valid]
            groups = [(part, flags) for indexes, flags in groups for part in (
                [i for i in indexes if not imported[i]], [i for i in indexes if imported[i]])]
        corrected: list[tuple[str, str]] = []
        if conn is not None:
            self._put_groups(conn, valid, at, groups, held, signature, result, corrected)
            self._corrections += corrected
        else:
            with self.node.store.transaction() as own:
                self._put_groups(own, valid, at, groups, held, signature, result, corrected)
            self._reissue(corrected)

    def _put_groups(self, conn: sa.Connection, valid: list[StixObject], at: list[str],
                    groups: list[tuple[list[int], dict[str, Any] | None]], held: _Held,
                    signature: str | None, result: IntakeResult,
                    corrected: list[tuple[str, str]]) -> None:
        entries: list[Entry] = []
        now = format_entry_time(datetime.now(UTC))  # one time for the batch's entries
        for indexes, flags in groups:
            if not indexes:
                continue
            batch = [valid[i] for i in indexes]
            prov = self._provenance(signature, result.received_at, flags,
                                    imported=self._imported(batch[0]))
            for r in self.node.store.put_many(batch, prov, conn=conn):
                i = indexes[r.index]
                self._record(result, valid[i], r, at[i], held, flags, prov)
                if r.corrected:
                    corrected.append((r.id, r.version))
                    entries.append(_correction(prov.origin, valid[i], now))
                elif r.outcome is Outcome.STORED and self.source.is_remote:
                    entries.append(_receipt(self.source.name, valid[i], now))
        if entries:
            self.node.ledger.append_many(entries, conn)

    def _reissue(self, corrected: list[tuple[str, str]]) -> None:
        """Corrected versions: the views released of them are cut again."""
        if corrected:
            self.node.releaser.reissue(corrected)

    def _record(self, result: IntakeResult, obj: StixObject, r: PutResult, pos: str,
                held: _Held, flags: dict[str, Any] | None, prov: Provenance) -> None:
        version = _version_of(obj, r.date_added or result.received_at)
        if r.outcome is Outcome.STORED:
            assert r.date_added is not None
            result.stored.append(Received(obj, r.date_added, flags or {}, prov))
            result.successes.append(Detail(obj.id, version,
                                           "correction accepted" if r.corrected else None, pos))
            if r.corrected:
                result.corrected += 1
            elif flags:
                result.echoes += 1
            elif obj.id in held:
                result.updated += 1
            else:
                result.new += 1
        elif r.outcome is Outcome.DUPLICATE or self._held_from_elsewhere(obj, r):
            result.duplicates += 1
            result.successes.append(Detail(obj.id, version, "already stored", pos,
                                           about_held=True))
        else:
            result.failures.append(Detail(obj.id, version, r.reason or "refused by the store",
                                          pos, about_held=True))

    def _held_from_elsewhere(self, obj: StixObject, r: PutResult) -> bool:
        """A version conflict with the view of the same version another partner sent us
        (views differ by recipient: redaction, fingerprints) — a duplicate, not a fault."""
        if not self.source.is_partner or not (r.reason or "").startswith("version conflict"):
            return False
        held = self.node.store.get(obj.id, r.version)
        return held is not None and held.provenance.origin not in {self.source.name, LOCAL}

    def _stored_object(self, r: Received, received_at: int,
                       signature: str | None) -> StoredObject:
        """A version just stored, as the store now holds it (no read-back): with the
        provenance its group was stored with (one per group, not one per object)."""
        o = r.object
        prov = r.provenance if r.provenance is not None else self._provenance(
            signature, received_at, r.flags, imported=self._imported(o))
        return StoredObject(
            id=o.id, type=o.type, version=o.version, spec_version=o.spec_version,
            created_by_ref=o.created_by_ref, revoked=o.revoked, date_added=r.date_added,
            raw=o.raw, provenance=prov, ahead=o.ahead)

    def _observe(self, stored: list[StoredObject],
                 bodies: list[dict[str, Any]] | None = None) -> None:
        self.node.trust.observe(stored, refresh=False, bodies=bodies)
        self.observed = True

    # -- (0) and (7): when the sender reads the answer ------------------------------------
    def _spend(self, count: int) -> None:
        t = push_budget.c
        limit = int(self.node.settings["push_objects_per_day"])
        day = now_micros() // 86_400_000_000
        with writer(self.node.store.engine).begin() as conn:
            row = conn.execute(sa.select(t.day, t.objects).where(
                t.partner == self.source.name)).first()
            used = int(row.objects) if row is not None and int(row.day) == day else 0
            if used + count > limit:
                raise PushBudgetExceeded(
                    f"{self.source.name} pushed {used} of its {limit} objects for today; "
                    f"{count} more refused", hint="push again tomorrow (UTC), or ask the "
                    "node's operator to raise push_objects_per_day")
            if row is None:
                conn.execute(push_budget.insert().values(partner=self.source.name, day=day,
                                                         objects=count))
            else:
                conn.execute(push_budget.update().where(t.partner == self.source.name)
                             .values(day=day, objects=used + count))

    def _conceal(self, result: IntakeResult) -> None:
        """(7) Answer as for an unknown id wherever the truth would name an object the
        sender may not see; record the refused write for the operator."""
        suspects = {d.id for d in [*result.failures, *result.successes] if d.about_held}
        if not suspects:
            return
        visible = released_ids(self.node.store.engine, self.source.name, suspects)
        visible |= self.node.store.held(suspects - visible, (self.source.name,))
        hidden = suspects - visible
        if not hidden:
            return
        records: list[dict[str, Any]] = []
        kept: list[Detail] = []
        for d in result.failures:
            if d.id in hidden and d.about_held:
                records.append(self._record_refusal(d, result.received_at))
                result.successes.append(Detail(d.id, d.version, None, d.position))
            else:
                kept.append(d)
        result.failures = kept
        for i, d in enumerate(result.successes):
            if d.id in hidden and d.about_held:
                records.append(self._record_refusal(d, result.received_at))
                result.successes[i] = Detail(d.id, d.version, None, d.position)
        result.concealed += len(records)
        with writer(self.node.store.engine).begin() as conn:
            conn.execute(refused_table.insert(), records)

    def _record_refusal(self, d: Detail, at: int) -> dict[str, Any]:
        return {"partner": self.source.name, "object_id": d.id, "version": d.version,
                "reason": d.message or "refused", "at": at}

    # -- end of the run ---------------------------------------------------------------
    def discard(self) -> None:
        """Forget evidence waiting on a transaction the caller rolled back."""
        self._pending = []
        self._corrections = []

    def close(self) -> None:
        """(6) Evidence still waiting is observed; tiers are refreshed once."""
        if self._corrections:
            corrections, self._corrections = self._corrections, []
            self._reissue(corrections)
        if self._pending:
            pending, self._pending = self._pending, []
            for start in range(0, len(pending), _OBSERVE_CHUNK):
                self._observe(pending[start:start + _OBSERVE_CHUNK])
        if self.observed:
            self.observed = False
            self.node.trust.refresh()


_OBSERVE_CHUNK = 2000


def receive(node: Node, partner: str, objects: Sequence[Any],
            signature: str | None) -> IntakeResult:
    """One batch pushed by a partner to our inbox, start to finish: budgeted, and answered
    without naming anything the partner may not see (rules (0) and (7))."""
    with Intake(node, Source.partner(node, partner), answers_sender=True) as intake:
        return intake.receive(objects, signature=signature)


def refused_writes(node: Node, partner: str | None = None,
                   limit: int = 1000) -> list[RefusedWrite]:
    """Writes refused for objects their sender may not see, newest first (the operator's
    view: ``detente log refused``)."""
    t = refused_table.c
    stmt = sa.select(t.partner, t.object_id, t.version, t.reason, t.at).order_by(
        t.id.desc()).limit(limit)
    if partner is not None:
        stmt = stmt.where(t.partner == partner)
    with node.store.engine.connect() as conn:
        return [RefusedWrite(r[0], r[1], r[2], r[3], int(r[4])) for r in conn.execute(stmt)]


def _correction(origin: str, obj: StixObject, now: str) -> Entry:
    return Entry(kind="correction", time=now, partner=origin, object_id=obj.id,
                 object_version=obj.version or None,
                 view_hash=hashlib.sha256(obj.raw).hexdigest(),
                 detail=f"the stored body of this version was replaced by {origin}'s "
                        "correction (same version, new content)")


def _receipt(partner: str, obj: StixObject, now: str) -> Entry:
    """The receipt of a version stored as sent: the SHA-256 of its stored bytes (``raw``;
    the store's ``digest`` hashes other bytes, the sorted-key JSON)."""
    return Entry.receipt(now, partner, obj.id, obj.version or None,
                         hashlib.sha256(obj.raw).hexdigest())
