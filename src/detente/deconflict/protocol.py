"""ECDH private set intersection over ristretto255: the requester and responder state machines.

Why this protocol and group. ristretto255 is a prime-order group with a proper hash-to-group
(libsodium's ``crypto_core_ristretto255_from_hash``, the RFC 9496 one-way map on 64 uniform
bytes), so ``H(x)`` has no known discrete log and DDH holds, and scalars are invertible, which
lets the requester *unblind* against a prepared, reusable set (intersection mode). Every
group operation is libsodium's (see :mod:`._group`).

``a``: the requester's secret, fresh per session; ``b``: the responder's, fresh per session
(or, in intersection mode only, the key of a prepared set scoped to one partner and epoch).

Intersection mode (the requester learns which of its items match; a requester that deviates
can only learn membership of the items it sends, which is what this mode gives anyway):

* (1) requester → responder: ``a·H(x)`` for each of its items (:class:`QueryMessage`).
* (2) responder: check the policy, budget and replay; reply ``b·a·H(x)`` in order and the
  Golomb-coded set of ``tag(b·H(y))`` (omitted when the requester holds that prepared set).
* (3) requester: ``a⁻¹`` gives ``b·H(x)``; its tag is looked up in the set.

Cardinality and pointer modes (the requester learns a count, or per match a pointer, and not
which of its items matched). *The responder compares*, so a requester never holds both its
own items and the responder's under one key it can strip item by item:

* (1) as above.
* (2) responder (fresh ``b``): ``R = b·H(y)`` for its items, shuffled; it keeps
  ``T = b·a·H(x)``. Pointer mode adds, per item, a box sealed under ``d·H(y)`` (``d`` fresh).
* (3) requester → responder (:class:`RevealMessage`): ``S = a·R``, shuffled by the requester.
  The responder checks ``S`` has exactly ``|R|`` distinct valid elements, once per session.
* (4) responder → requester (:class:`OpeningMessage`): the count ``|T ∩ S|``; in pointer
  mode also ``(d/b)·s = a·d·H(y)`` for each matching ``s ∈ S`` (shuffled), from which the
  requester gets ``d·H(y)`` and opens that item's box.

What a deviating requester gains: an element of ``S`` can equal ``b·q`` (``q`` from its query)
only if it is ``α·R_j`` with ``q = α·H(y_j)`` (anything else would need ``b`` or a discrete
log). ``R`` is in a fresh random order under a fresh key, and ``|S| = |R|``, so with any mix
of per-item scalars, repeated items or crafted elements the count is a sum over at most
``|R|`` (scalar, position) pairs: one number, never more than an honest query on some of its
items against (a random part of) our set would give. It never sees ``b·a·H(x)``, so there is
nothing to unblind item by item. See docs/deconfliction.md.

Mutual mode (both learn the intersection):

* (1) as above; (2) responder: ``b·H(y)`` (shuffled) and a commitment
  ``BLAKE2b(session ‖ salt ‖ b·a·H(x))`` with a fresh 32-byte salt; (3) requester →
  responder: ``a·b·H(y)`` in order; the responder learns the intersection; (4) responder →
  requester: the opening (elements, salt, count). Without the salt, a requester holding
  ``a·b·H(y)`` could test candidate openings against the commitment at step (2).

A session the partner leaves after step (2) stays *pending* only until :meth:`Responder.abandon`
(the HTTP layer calls it when a session expires); it is then recorded ``aborted``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from detente.deconflict import _group
from detente.deconflict.budget import BudgetBook, Budgets
from detente.deconflict.errors import ProtocolError, WrongModeError
from detente.deconflict.items import Item
from detente.deconflict.messages import (
    COMPARED_MODES,
    PROTOCOL_VERSION,
    SALT_BYTES,
    Mode,
    OpeningMessage,
    QueryMessage,
    ResponseMessage,
    RevealMessage,
)
from detente.deconflict.prepared import (
    Pointer,
    PreparedSet,
    SetDigest,
    box_id,
    box_index,
    element_tags,
    open_box,
    seal_boxes,
    session_handle,
)
from detente.deconflict.records import Outcome, Role, SessionRecord
from detente.errors import DetenteError

__all__ = ["Requester", "Responder", "Result"]

DEFAULT_FALSE_POSITIVE_RATE = 1e-9
_COMMIT_PERSON = b"dpsi2-commit"
Clock = Callable[[], datetime]
_T = TypeVar("_T")


def _now() -> datetime:
    return datetime.now(UTC)


def _commit(session_id: bytes, salt: bytes, elements: bytes) -> bytes:
    return hashlib.blake2b(
        session_id + salt + elements, digest_size=32, person=_COMMIT_PERSON
    ).digest()


def _unique(items: Iterable[Item]) -> list[Item]:
    out = list(dict.fromkeys(items))
    if not all(isinstance(i, Item) for i in out):
        raise WrongModeError("PSI items must be deconflict.Item values (use the encoders)")
    return out


@dataclass(frozen=True)
class Result:
    """What one side learned. ``items`` is None unless the mode reveals items to this side;
    ``pointers`` is None outside pointer mode. Cardinality mode yields only ``count``."""

    session_id: str
    mode: Mode
    count: int
    items: tuple[Item, ...] | None = None
    pointers: tuple[Pointer, ...] | None = None


class Requester:
    """One session, requester side: ``start()``, then ``finish()`` in intersection mode, or
    ``reveal()`` then ``conclude()`` in the others. Any bad message aborts the session."""

    def __init__(
        self,
        items: Iterable[Item],
        *,
        mode: Mode | str,
        partner: str,
        known: SetDigest | None = None,
        clock: Clock = _now,
    ) -> None:
        self.mode = Mode(mode)
        self.partner = partner
        self._items = _unique(items)
        if not self._items:
            raise WrongModeError("a PSI query needs at least one item")
        self._known = known
        self._clock = clock
        self.session_id = secrets.token_bytes(16)
        self._expect = 0  # the step of the next message we accept; 0 = not started
        self._secret = b""
        self._peer = b""  # a·b·H(y), kept between reveal() and conclude()
        self._peer_count = 0
        self._boxes: dict[bytes, bytes] = {}
        self._commitment = b""
        self._record = self._make_record(Outcome.PENDING, 0, None, None)
        self.digest: SetDigest | None = known  # the responder's set, to reuse next time

    @property
    def needs_reveal(self) -> bool:
        """Whether this mode continues with ``reveal()``/``conclude()`` (all but intersection)."""
        return self.mode is not Mode.INTERSECTION

    def _make_record(
        self, outcome: Outcome, step: int, remote: int | None, matches: int | None
    ) -> SessionRecord:
        return SessionRecord(
            self.session_id.hex(), Role.REQUESTER, self.partner, self.mode.value,
            PROTOCOL_VERSION, self._clock(), len(self._items), remote, matches, outcome, step,
        )  # fmt: skip

    @property
    def record(self) -> SessionRecord:
        return self._record

    def start(self) -> QueryMessage:
        """(1) Blind every item with a fresh secret."""
        if self._expect:
            raise ProtocolError("session already started")
        self._secret = _group.random_scalar()
        order = list(self._items)
        if self.mode is not Mode.INTERSECTION:
            secrets.SystemRandom().shuffle(order)  # our order says nothing either
            self._items = order
        points = _group.hash_to_group([i.encoded() for i in order])
        known = self._known
        set_id = known.set_id if known is not None and self.mode is Mode.INTERSECTION else b""
        self._expect = ResponseMessage.STEP
        elements = _group.multiply(self._secret, points)
        self._record = self._make_record(Outcome.PENDING, 1, None, None)
        return QueryMessage(self.session_id, self.mode, elements, set_id)

    def _accept(self, msg: QueryMessage | ResponseMessage | RevealMessage | OpeningMessage) -> None:
        if self._expect == -1:
            raise ProtocolError(f"session {self.session_id.hex()} is already over")
        if msg.session_id != self.session_id:
            raise ProtocolError("message belongs to another session")
        if self._expect != msg.STEP:
            raise ProtocolError(f"out of order: got step {msg.STEP}, expected {self._expect}")
        if msg.mode is not self.mode:
            raise ProtocolError(f"message is for mode {msg.mode}, session is {self.mode}")

    def _guarded(self, msg: ResponseMessage | OpeningMessage, step: Callable[[], _T]) -> _T:
        try:
            self._accept(msg)
            return step()
        except ProtocolError as exc:
            if self._expect != -1:
                self._record = replace(
                    self._record, outcome=Outcome.ABORTED, reason=exc.message, at=self._clock()
                )
                self._expect = -1
            raise

    def finish(self, response: ResponseMessage) -> Result:
        """Intersection (3): unblind, look up, and return the matching items."""
        if self.needs_reveal:
            raise WrongModeError(f"{self.mode} mode continues with reveal(), not finish()")
        return self._guarded(response, lambda: self._finish(response))

    def _digest_for(self, response: ResponseMessage) -> SetDigest:
        if response.digest is not None:
            return SetDigest(response.set_id, response.digest)
        if self._known is None or self._known.set_id != response.set_id:
            raise ProtocolError("response omits the responder's set, and we do not hold it")
        return self._known

    def _finish(self, response: ResponseMessage) -> Result:
        if response.count != len(self._items):
            raise ProtocolError(
                f"response has {response.count} elements for our {len(self._items)}"
            )
        digest = self._digest_for(response)
        unblinded = _group.multiply(_group.invert(self._secret), response.elements)
        tags = element_tags(unblinded, digest.golomb.modulus)
        hits = [i for i, hit in enumerate(digest.contains(tags)) if hit]
        result = Result(self.session_id.hex(), self.mode, len(hits),
                        items=tuple(self._items[i] for i in hits))  # fmt: skip
        self.digest, self._expect = digest, -1
        self._record = self._make_record(
            Outcome.COMPLETED, 3, response.responder_size, result.count
        )
        return result

    def reveal(self, response: ResponseMessage) -> RevealMessage:
        """(3) Blind the responder's items with our secret: in its order (mutual), or in a
        fresh random order of ours (cardinality, pointer)."""
        if not self.needs_reveal:
            raise WrongModeError("intersection mode ends with finish(), it has no reveal()")

        def step() -> RevealMessage:
            peer = _group.multiply(self._secret, response.peer_elements)
            if self.mode in COMPARED_MODES:
                peer = _group.shuffled(peer)
                self._boxes = box_index(response.boxes)
            self._peer, self._peer_count = peer, response.responder_size
            self._commitment = response.commitment
            self._expect = OpeningMessage.STEP
            self._record = self._make_record(Outcome.PENDING, 3, response.responder_size, None)
            return RevealMessage(self.session_id, peer, self.mode)

        return self._guarded(response, step)

    def conclude(self, opening: OpeningMessage) -> Result:
        """(4) Learn the result: check the opening (mutual), take the count (cardinality), or
        open the boxes of the matches (pointer)."""
        if not self.needs_reveal:
            raise WrongModeError("conclude() does not belong to intersection mode")
        if self.mode is Mode.MUTUAL:
            return self._guarded(opening, lambda: self._conclude_mutual(opening))
        return self._guarded(opening, lambda: self._conclude_compared(opening))

    def _done(self, count: int) -> None:
        self._expect = -1
        self._record = self._make_record(Outcome.COMPLETED, 4, self._peer_count, count)

    def _conclude_compared(self, opening: OpeningMessage) -> Result:
        if opening.count > min(len(self._items), self._peer_count):
            raise ProtocolError(
                f"opening claims {opening.count} matches between {len(self._items)} items "
                f"and {self._peer_count}"
            )
        if self.mode is Mode.CARDINALITY:
            self._done(opening.count)
            return Result(self.session_id.hex(), self.mode, opening.count)
        keys = _group.split(_group.multiply(_group.invert(self._secret), opening.elements))
        pointers = []
        for key in keys:
            box = self._boxes.get(box_id(key))
            pointer = None if box is None else open_box(box, key)
            if pointer is None:
                raise ProtocolError("a pointer-mode match opens none of the responder's boxes")
            pointers.append(pointer)
        self._done(len(pointers))
        return Result(self.session_id.hex(), self.mode, len(pointers), pointers=tuple(pointers))

    def _conclude_mutual(self, opening: OpeningMessage) -> Result:
        if _commit(self.session_id, opening.salt, opening.elements) != self._commitment:
            raise ProtocolError("opening does not match the responder's commitment")
        if len(opening.elements) != 32 * len(self._items):
            raise ProtocolError("opening does not cover our items")
        peer = set(_group.split(self._peer))
        hits = [i for i, e in enumerate(_group.split(opening.elements)) if e in peer]
        if len(hits) != opening.count:
            raise ProtocolError(
                f"results disagree: responder found {opening.count}, we {len(hits)}"
            )
        self._done(len(hits))
        items = tuple(self._items[i] for i in hits)
        return Result(self.session_id.hex(), self.mode, len(hits), items)


@dataclass
class _Pending:
    partner: str
    mode: Mode
    query_size: int
    order: list[Item]  # mutual: our items in the order of the peer elements we sent
    doubled: bytes  # b·a·H(x): withheld (mutual) or compared against (cardinality, pointer)
    peer_count: int
    salt: bytes = b""
    box_scalar: bytes = b""  # pointer: d/b, turning a matching a·b·H(y) into a·d·H(y)


class Responder:
    """Answers partners' queries over one item set, within each partner's budget and in the
    modes this node offers for that set (``modes``; default every mode, pointer mode only
    when ``pointers`` are given). ``handle_key`` keys the per-session pointer handles
    (default: a fresh key per responder, so handles cannot be mapped back later)."""

    def __init__(
        self,
        items: Iterable[Item],
        *,
        book: BudgetBook,
        budgets: Budgets | None = None,
        pointers: Mapping[Item, Pointer] | None = None,
        modes: Collection[Mode] | None = None,
        handle_key: bytes | None = None,
        false_positive_rate: float = DEFAULT_FALSE_POSITIVE_RATE,
        clock: Clock = _now,
        on_record: Callable[[SessionRecord], None] | None = None,
    ) -> None:
        self._items = _unique(items)
        self._book = book
        self._budgets = budgets or Budgets()
        self._pointers = pointers
        self._modes = frozenset(Mode) if modes is None else frozenset(Mode(m) for m in modes)
        self._handle_key = handle_key or secrets.token_bytes(32)
        self._fpr = false_positive_rate
        self._clock = clock
        self._on_record = on_record
        self._prepared: dict[str, PreparedSet] = {}
        self._pending: dict[bytes, _Pending] = {}
        self.records: list[SessionRecord] = []

    @property
    def size(self) -> int:
        return len(self._items)

    @property
    def pending(self) -> tuple[str, ...]:
        """Session ids (hex) waiting for the partner's step (3)."""
        return tuple(sid.hex() for sid in self._pending)

    def prepare(self, partner: str) -> SetDigest:
        """Blind our set once for ``partner``'s intersection-mode sessions (reused until
        :meth:`forget` is called, e.g. each day); returns the digest it may cache."""
        budget = self._budgets.for_partner(partner)
        prepared = PreparedSet.build(
            self._items, max_query_items=budget.items_per_query, false_positive_rate=self._fpr
        )
        self._prepared[partner] = prepared
        return prepared.digest

    def forget(self, partner: str) -> None:
        """Drop the partner's prepared set (rotate its key)."""
        self._prepared.pop(partner, None)

    def resolve(self, session_id: bytes, handle: str) -> Pointer | None:
        """The pointer behind a handle a partner saw in session ``session_id`` (or None)."""
        for pointer in (self._pointers or {}).values():
            if session_handle(self._handle_key, session_id, pointer.handle) == handle:
                return pointer
        return None

    def _log(
        self,
        q: QueryMessage | RevealMessage | bytes,
        partner: str,
        mode: Mode,
        outcome: Outcome,
        step: int,
        remote: int | None,
        matches: int | None = None,
        reason: str | None = None,
    ) -> SessionRecord:
        sid = q if isinstance(q, bytes) else q.session_id
        rec = SessionRecord(
            sid.hex(), Role.RESPONDER, partner, mode.value, PROTOCOL_VERSION,
            self._clock(), self.size, remote, matches, outcome, step, reason,
        )  # fmt: skip
        self.records.append(rec)
        if self._on_record is not None:
            self._on_record(rec)
        return rec

    def _check_mode(self, mode: Mode) -> None:
        if mode is Mode.POINTER and self._pointers is None:
            raise WrongModeError("this node does not offer pointer mode")
        if mode not in self._modes:
            offered = ", ".join(sorted(m.value for m in self._modes)) or "none"
            raise WrongModeError(f"this set is not offered in {mode} mode (offered: {offered})")

    def answer(self, query: QueryMessage, *, partner: str) -> ResponseMessage:
        """(2) Check the mode policy, the budget and replay, then answer in the query's mode."""
        budget = self._budgets.for_partner(partner)
        try:
            self._check_mode(query.mode)
            budget.check_query(query.count, self.size)
            self._book.charge(
                partner=partner, session_id=query.session_id.hex(),
                day=self._clock().date(), items=query.count, budget=budget,
            )  # fmt: skip
            if query.mode is Mode.INTERSECTION:
                response = self._answer_lookup(query, partner)
            else:
                response = self._answer_peer(query, partner)
        except DetenteError as exc:
            outcome = Outcome.ABORTED if isinstance(exc, ProtocolError) else Outcome.REFUSED
            self._log(query, partner, query.mode, outcome, 1, query.count, reason=str(exc))
            raise
        done = query.mode is Mode.INTERSECTION
        outcome = Outcome.COMPLETED if done else Outcome.PENDING
        self._log(query, partner, query.mode, outcome, 2, query.count)
        return response

    def _answer_lookup(self, query: QueryMessage, partner: str) -> ResponseMessage:
        prepared = self._prepared.get(partner)
        if prepared is None or query.count > prepared.max_query_items:
            prepared = PreparedSet.build(
                self._items, max_query_items=query.count, false_positive_rate=self._fpr
            )
        doubled = _group.multiply(prepared.key, query.elements)
        digest = prepared.digest
        send = query.known_set != digest.set_id
        return ResponseMessage(
            query.session_id, query.mode, digest.size, doubled, digest.set_id,
            digest.golomb if send else None,
        )  # fmt: skip

    def _answer_peer(self, query: QueryMessage, partner: str) -> ResponseMessage:
        """(2) for mutual, cardinality and pointer modes: a fresh key, our items blinded in a
        fresh random order, and the query's doubly blinded elements kept here."""
        b = _group.random_scalar()
        order = list(self._items)
        secrets.SystemRandom().shuffle(order)
        points = _group.hash_to_group([i.encoded() for i in order])
        mine = _group.multiply(b, points)
        doubled = _group.multiply(b, query.elements)
        pending = _Pending(partner, query.mode, query.count, order, doubled, len(order))
        commitment = boxes = b""
        if query.mode is Mode.MUTUAL:
            pending.salt = secrets.token_bytes(SALT_BYTES)
            commitment = _commit(query.session_id, pending.salt, doubled)
        elif query.mode is Mode.POINTER:
            assert self._pointers is not None  # _check_mode refused pointer mode without them
            d = _group.random_scalar()
            pending.box_scalar = _group.scalar_product(d, _group.invert(b))
            fresh = {
                item: Pointer(session_handle(self._handle_key, query.session_id, p.handle),
                              p.contact)
                for item, p in self._pointers.items()
            }  # fmt: skip
            boxes = seal_boxes(_group.multiply(d, points), order, fresh)
        self._pending[query.session_id] = pending
        return ResponseMessage(
            query.session_id, query.mode, len(order),
            peer_elements=mine, boxes=boxes, commitment=commitment,
        )  # fmt: skip

    def conclude(self, reveal: RevealMessage, *, partner: str) -> tuple[Result, OpeningMessage]:
        """(3)→(4): compare (cardinality, pointer) or learn the intersection (mutual), then
        send the opening. Each session accepts one reveal, from the partner it belongs to."""
        pending = self._pending.get(reveal.session_id)
        if pending is None or pending.partner != partner:
            raise ProtocolError("no session of this mode is waiting for this reveal")
        del self._pending[reveal.session_id]
        try:
            if pending.mode is not reveal.mode:
                raise ProtocolError(f"reveal is for {reveal.mode} mode, the session is "
                                    f"{pending.mode}")  # fmt: skip
            if len(reveal.elements) != 32 * pending.peer_count:
                raise ProtocolError(
                    f"reveal has {len(reveal.elements) // 32} elements for our "
                    f"{pending.peer_count}"
                )
            _group.check_elements(reveal.elements)
            theirs = set(_group.split(pending.doubled))
            revealed = _group.split(reveal.elements)
            hits = [j for j, e in enumerate(revealed) if e in theirs]
        except ProtocolError as exc:
            self._log(reveal, partner, pending.mode, Outcome.ABORTED, 3, pending.query_size,
                      reason=str(exc))  # fmt: skip
            raise
        self._log(reveal, partner, pending.mode, Outcome.COMPLETED, 4, pending.query_size,
                  len(hits))  # fmt: skip
        sid = reveal.session_id
        if pending.mode is Mode.MUTUAL:
            items = tuple(pending.order[j] for j in hits)
            result = Result(sid.hex(), Mode.MUTUAL, len(hits), items)
            return result, OpeningMessage(sid, pending.doubled, len(hits), Mode.MUTUAL,
                                          pending.salt)  # fmt: skip
        keys = b""
        if pending.mode is Mode.POINTER:
            matched = b"".join(revealed[j] for j in hits)
            keys = _group.shuffled(_group.multiply(pending.box_scalar, matched))
        result = Result(sid.hex(), pending.mode, len(hits))
        return result, OpeningMessage(sid, keys, len(hits), pending.mode)

    def abandon(self, session_id: bytes | None = None, *,
                reason: str = "abandoned by the partner after step 2") -> list[SessionRecord]:
        """Record waiting sessions (one, or all) as ``aborted``: the partner left after our
        step (2). Returns the records written; the sessions accept no reveal any more."""
        sids = list(self._pending) if session_id is None else [session_id]
        out = []
        for sid in sids:
            pending = self._pending.pop(sid, None)
            if pending is not None:
                out.append(self._log(sid, pending.partner, pending.mode, Outcome.ABORTED, 2,
                                     pending.query_size, reason=reason))  # fmt: skip
        return out
