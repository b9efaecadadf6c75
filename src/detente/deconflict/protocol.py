"""ECDH private set intersection over ristretto255: the requester and responder state machines.

Why this protocol and group. ristretto255 is a prime-order group with a proper hash-to-group
(libsodium's ``crypto_core_ristretto255_from_hash``, the RFC 9496 one-way map on 64 uniform
bytes), so ``H(x)`` has no known discrete log and DDH holds; scalars are invertible, which
lets the requester *unblind* and compare against a prepared, reusable set. X25519 through
``cryptography`` is faster here (26 µs against 36 µs per multiplication, measured), but it
is not a prime-order group (cofactor 8, twist points accepted), its API clamps every scalar
(no inverse, so no unblinding and no prepared sets) and offers no hash-to-curve: we would
have to write Elligator 2 ourselves. Not worth 28 %.

Protocol (``a``: the requester's secret, fresh per session; ``b``: the responder's, fresh per
session or the key of a prepared set scoped to one partner and epoch):

* (1) requester → responder: ``a·H(x)`` for each of its items (:class:`QueryMessage`).
* (2) responder: check budgets and replay; reply ``b·a·H(x)`` (shuffled in cardinality and
  pointer modes) and the Golomb-coded set of ``tag(b·H(y))`` (omitted when the requester
  already holds that prepared set), plus sealed pointer boxes in pointer mode.
* (3) requester: ``a⁻¹`` gives ``b·H(x)``; its tag is looked up in the set.

Mutual mode keeps both sets as full elements and adds commitments:

* (1) as above; (2) responder: ``b·H(y)`` for its items and a commitment to ``b·a·H(x)``,
  which it withholds; (3) requester → responder: ``a·b·H(y)`` (:class:`RevealMessage`);
  the responder now knows the intersection; (4) responder → requester: opens the commitment
  (:class:`OpeningMessage`) and the requester learns it too. See docs for the guarantee.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TypeVar

from detente.deconflict import _group
from detente.deconflict.budget import BudgetBook, Budgets
from detente.deconflict.errors import ProtocolError, WrongModeError
from detente.deconflict.items import Item
from detente.deconflict.messages import (
    PROTOCOL_VERSION,
    Mode,
    OpeningMessage,
    QueryMessage,
    ResponseMessage,
    RevealMessage,
)
from detente.deconflict.prepared import Pointer, PreparedSet, SetDigest, element_tags, open_box
from detente.deconflict.records import Outcome, Role, SessionRecord
from detente.errors import DetenteError

__all__ = ["Requester", "Responder", "Result"]

DEFAULT_FALSE_POSITIVE_RATE = 1e-9
_COMMIT_PERSON = b"dpsi1-commit"
Clock = Callable[[], datetime]
_T = TypeVar("_T")


def _now() -> datetime:
    return datetime.now(UTC)


def _commit(session_id: bytes, elements: bytes) -> bytes:
    return hashlib.blake2b(session_id + elements, digest_size=32, person=_COMMIT_PERSON).digest()


def _shuffled(elements: bytes) -> bytes:
    parts = _group.split(elements)
    secrets.SystemRandom().shuffle(parts)
    return b"".join(parts)


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
    """One session, requester side: ``start()``, then ``finish()`` (or, in mutual mode,
    ``reveal()`` then ``conclude()``). Any bad message aborts the session for good."""

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
        self._peer = b""  # mutual: a·b·H(y), kept between reveal() and conclude()
        self._commitment = b""
        self._record = self._make_record(Outcome.PENDING, 0, None, None)
        self.digest: SetDigest | None = known  # the responder's set, to reuse next time

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
        points = _group.hash_to_group([i.encoded() for i in self._items])
        known = self._known
        usable = known is not None and self.mode is not Mode.MUTUAL
        if usable and self.mode is Mode.POINTER and known is not None and not known.has_boxes():
            usable = False
        set_id = known.set_id if usable and known is not None else b""
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
        """(3) Unblind, look up, and return what this mode reveals."""
        if self.mode is Mode.MUTUAL:
            raise WrongModeError("mutual mode continues with reveal(), not finish()")
        return self._guarded(response, lambda: self._finish(response))

    def _digest_for(self, response: ResponseMessage) -> SetDigest:
        if response.digest is not None:
            return SetDigest(response.set_id, response.digest, response.boxes)
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
        result = Result(self.session_id.hex(), self.mode, len(hits))
        if self.mode is Mode.INTERSECTION:
            result = replace(result, items=tuple(self._items[i] for i in hits))
        elif self.mode is Mode.POINTER:
            pointers = self._open(digest, tags, unblinded, hits)
            result = replace(result, count=len(pointers), pointers=pointers)
        self.digest, self._expect = digest, -1
        self._record = self._make_record(
            Outcome.COMPLETED, 3, response.responder_size, result.count
        )
        return result

    @staticmethod
    def _open(
        digest: SetDigest, tags: list[int], unblinded: bytes, hits: list[int]
    ) -> tuple[Pointer, ...]:
        out = []
        for i in hits:
            box = digest.box_for(tags[i])
            pointer = None if box is None else open_box(box, unblinded[i * 32 : i * 32 + 32])
            if pointer is not None:  # a box that does not open was a Golomb false hit
                out.append(pointer)
        return tuple(out)

    def reveal(self, response: ResponseMessage) -> RevealMessage:
        """Mutual (3): blind the responder's items with our secret; keep its commitment."""
        if self.mode is not Mode.MUTUAL:
            raise WrongModeError("reveal() belongs to mutual mode")

        def step() -> RevealMessage:
            self._peer = _group.multiply(self._secret, response.peer_elements)
            self._commitment = response.commitment
            self._expect = OpeningMessage.STEP
            self._record = self._make_record(Outcome.PENDING, 3, response.responder_size, None)
            return RevealMessage(self.session_id, self._peer)

        return self._guarded(response, step)

    def conclude(self, opening: OpeningMessage) -> Result:
        """Mutual (4): check the opening against the commitment, then learn the result."""
        if self.mode is not Mode.MUTUAL:
            raise WrongModeError("conclude() belongs to mutual mode")
        return self._guarded(opening, lambda: self._conclude(opening))

    def _conclude(self, opening: OpeningMessage) -> Result:
        if _commit(self.session_id, opening.elements) != self._commitment:
            raise ProtocolError("opening does not match the responder's commitment")
        if len(opening.elements) != 32 * len(self._items):
            raise ProtocolError("opening does not cover our items")
        peer = set(_group.split(self._peer))
        hits = [i for i, e in enumerate(_group.split(opening.elements)) if e in peer]
        if len(hits) != opening.count:
            raise ProtocolError(
                f"results disagree: responder found {opening.count}, we {len(hits)}"
            )
        self._expect = -1
        remote = len(self._peer) // 32
        self._record = self._make_record(Outcome.COMPLETED, 4, remote, len(hits))
        items = tuple(self._items[i] for i in hits)
        return Result(self.session_id.hex(), self.mode, len(hits), items)


@dataclass
class _Pending:
    partner: str
    order: list[Item]
    doubled: bytes  # b·a·H(x), withheld until the reveal
    query_size: int


class Responder:
    """Answers partners' queries over one item set, within each partner's budget."""

    def __init__(
        self,
        items: Iterable[Item],
        *,
        book: BudgetBook,
        budgets: Budgets | None = None,
        pointers: Mapping[Item, Pointer] | None = None,
        false_positive_rate: float = DEFAULT_FALSE_POSITIVE_RATE,
        clock: Clock = _now,
        on_record: Callable[[SessionRecord], None] | None = None,
    ) -> None:
        self._items = _unique(items)
        self._book = book
        self._budgets = budgets or Budgets()
        self._pointers = pointers
        self._fpr = false_positive_rate
        self._clock = clock
        self._on_record = on_record
        self._prepared: dict[str, PreparedSet] = {}
        self._pending: dict[bytes, _Pending] = {}
        self.records: list[SessionRecord] = []

    @property
    def size(self) -> int:
        return len(self._items)

    def prepare(self, partner: str) -> SetDigest:
        """Blind our set once for ``partner`` (reused by its later non-mutual sessions until
        :meth:`forget` is called, e.g. each day); returns the digest it may cache."""
        budget = self._budgets.for_partner(partner)
        prepared = PreparedSet.build(
            self._items, max_query_items=budget.items_per_query,
            false_positive_rate=self._fpr, pointers=self._pointers,
        )  # fmt: skip
        self._prepared[partner] = prepared
        return prepared.digest

    def forget(self, partner: str) -> None:
        """Drop the partner's prepared set (rotate its key)."""
        self._prepared.pop(partner, None)

    def _log(
        self,
        q: QueryMessage | RevealMessage,
        partner: str,
        outcome: Outcome,
        step: int,
        remote: int | None,
        matches: int | None = None,
        reason: str | None = None,
    ) -> None:
        rec = SessionRecord(
            q.session_id.hex(), Role.RESPONDER, partner, q.mode.value, PROTOCOL_VERSION,
            self._clock(), self.size, remote, matches, outcome, step, reason,
        )  # fmt: skip
        self.records.append(rec)
        if self._on_record is not None:
            self._on_record(rec)

    def answer(self, query: QueryMessage, *, partner: str) -> ResponseMessage:
        """(2) Check the budget and replay, then answer in the query's mode."""
        budget = self._budgets.for_partner(partner)
        try:
            if query.mode is Mode.POINTER and self._pointers is None:
                raise WrongModeError("this node does not offer pointer mode")
            budget.check_query(query.count, self.size)
            self._book.charge(
                partner=partner, session_id=query.session_id.hex(),
                day=self._clock().date(), items=query.count, budget=budget,
            )  # fmt: skip
            if query.mode is Mode.MUTUAL:
                response = self._answer_mutual(query, partner)
            else:
                response = self._answer_lookup(query, partner)
        except DetenteError as exc:
            outcome = Outcome.ABORTED if isinstance(exc, ProtocolError) else Outcome.REFUSED
            self._log(query, partner, outcome, 1, query.count, reason=str(exc))
            raise
        pending = query.mode is Mode.MUTUAL
        self._log(query, partner, Outcome.PENDING if pending else Outcome.COMPLETED, 2, query.count)
        return response

    def _answer_lookup(self, query: QueryMessage, partner: str) -> ResponseMessage:
        prepared = self._prepared.get(partner)
        if prepared is None or query.count > prepared.max_query_items:
            prepared = PreparedSet.build(
                self._items, max_query_items=query.count, false_positive_rate=self._fpr,
                pointers=self._pointers if query.mode is Mode.POINTER else None,
            )  # fmt: skip
        doubled = _group.multiply(prepared.key, query.elements)
        if query.mode in (Mode.CARDINALITY, Mode.POINTER):
            doubled = _shuffled(doubled)
        digest = prepared.digest
        send = query.known_set != digest.set_id
        boxes = digest.boxes if send and query.mode is Mode.POINTER else b""
        return ResponseMessage(
            query.session_id, query.mode, digest.size, doubled, digest.set_id,
            digest.golomb if send else None, boxes,
        )  # fmt: skip

    def _answer_mutual(self, query: QueryMessage, partner: str) -> ResponseMessage:
        b = _group.random_scalar()
        order = list(self._items)
        secrets.SystemRandom().shuffle(order)
        mine = _group.multiply(b, _group.hash_to_group([i.encoded() for i in order]))
        doubled = _group.multiply(b, query.elements)
        self._pending[query.session_id] = _Pending(partner, order, doubled, query.count)
        return ResponseMessage(
            query.session_id, Mode.MUTUAL, len(order),
            peer_elements=mine, commitment=_commit(query.session_id, doubled),
        )  # fmt: skip

    def conclude(self, reveal: RevealMessage, *, partner: str) -> tuple[Result, OpeningMessage]:
        """Mutual (3)→(4): learn the intersection, then open the commitment to the requester."""
        pending = self._pending.get(reveal.session_id)
        if pending is None or pending.partner != partner:
            raise ProtocolError("no mutual session is waiting for this reveal")
        del self._pending[reveal.session_id]
        try:
            if len(reveal.elements) != 32 * len(pending.order):
                raise ProtocolError("reveal does not cover our items")
            theirs = set(_group.split(pending.doubled))
            hits = [j for j, e in enumerate(_group.split(reveal.elements)) if e in theirs]
        except ProtocolError as exc:
            self._log(reveal, partner, Outcome.ABORTED, 3, pending.query_size, reason=str(exc))
            raise
        self._log(reveal, partner, Outcome.COMPLETED, 4, pending.query_size, len(hits))
        items = tuple(pending.order[j] for j in hits)
        result = Result(reveal.session_id.hex(), Mode.MUTUAL, len(hits), items)
        return result, OpeningMessage(reveal.session_id, pending.doubled, len(hits))
