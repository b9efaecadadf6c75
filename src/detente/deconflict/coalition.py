"""Coalition-wide deconfliction: over-threshold multi-party PSI without a centre.

Each of N participants (2 ≤ N ≤ 10) learns, for each of its own items, whether at least T
participants (itself included) hold it, and in pointer mode the contact pointers of those
co-holders. Message in, message out; the HTTP edge (``federation/psi/coalition.py``) only
carries bytes, and :func:`run_locally` plays a whole run in memory.

A run (``spec``: run id, participants, T, kind, mode, reconstructor R) has two roles besides
holding items: the relay M is the initiator; the reconstructor R is named in the spec. At
T ≥ 3, R must be a node that **holds no items** in the run (``--reconstructor NODE``): one
that held items would know their tags and could count their holders below T. Every
participant checks this when it reads the spec (:class:`RunSpec` refuses otherwise), so a
deviating initiator cannot force a holding R. At T = 2 R may instead be a participant drawn
from the run id (:func:`roles_for`): an item of R's is below T = 2 only if R alone holds it.

  (1) every participant ``i`` draws a run key ``k_i`` and a blind ``r_i``, and blinds its
      items: ``B_i = H(x)^{r_i}`` (:meth:`Participant.blinded`);
  (2) ``B_i`` passes through every other participant ``j`` in turn, each raising it to its
      run key (:meth:`Participant.raise_for`; budgets and one list per asker per run; a
      non-holding R takes no part in the ring and no participant raises a list for it);
  (3) ``i`` removes its blind and applies its own key: ``tag(x) = H(x)^{k_1 … k_N}``
      (:meth:`Participant.unblind`) — a joint OPRF no one can evaluate alone;
  (4) from each tag ``i`` derives a bin and a polynomial of degree T-1 through the origin
      (:mod:`._shares`), puts its share — and in pointer mode its contact sealed under a
      tag-derived key — in a fixed-shape upload padded with random dummies, and seals it,
      with the digest of the spec it agreed to and a fresh result key, to R's run key
      (:meth:`Participant.upload`);
  (5) M takes one upload per participant, and once it holds all N shuffles them
      (:meth:`Relay.accept`, :meth:`Relay.batch`);
  (6) R opens the N uploads, refuses any malformed, replayed or foreign one or one made
      under another spec, finds per bin the groups of ≥ T shares from distinct uploads on
      one polynomial, and seals to each upload's result key one flag per slot (pointer
      mode: the co-holders' sealed pointers) (:meth:`Reconstructor.reconstruct`); M hands
      each result back to its participant (:meth:`Relay.deliver`);
  (7) ``i`` opens its result and reads it against its own slots (:meth:`Participant.read`).

What each party learns, and what deviating parties can, is in ``docs/deconfliction.md``
(Coalition deconfliction); every statement there has a test in
``tests/deconflict/test_coalition_*.py``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

import nacl.exceptions
import nacl.public
import nacl.secret
import orjson

from detente.deconflict import _group, _shares
from detente.deconflict.budget import BudgetBook, Budgets
from detente.deconflict.errors import ProtocolError, ReplayError, WrongModeError
from detente.deconflict.items import Item

__all__ = [
    "MAX_PARTICIPANTS",
    "ROLE_HINT",
    "CoalitionMode",
    "CoalitionResult",
    "ContactPointer",
    "Counters",
    "Participant",
    "Reconstructor",
    "Relay",
    "RunSpec",
    "capacity_for",
    "new_run",
    "pack_frames",
    "roles_for",
    "run_locally",
    "unpack_frames",
]

MAX_PARTICIPANTS = 10
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_UPLOAD_MAGIC = b"DMPSU2"  # DMPSU1 (no spec digest) is retired, never reused
_RESULT_MAGIC = b"DMPSR1"
_POINTER_PLAIN = 256
_POINTER_BLOB = nacl.secret.SecretBox.NONCE_SIZE + nacl.secret.SecretBox.MACBYTES + \
    _POINTER_PLAIN
#: magic, run id, spec digest, result key, bins, load, pointer
_HEADER = struct.Struct(">6s16s32s32sIIB")
ROLE_HINT = ("name as reconstructor a partner that holds no items in the run: "
             "--reconstructor NODE; or use threshold 2")


class CoalitionMode(StrEnum):
    MEMBERSHIP = "membership"  # each learns, per own item, whether >= T hold it
    POINTER = "pointer"        # … and the contact pointers of the co-holders


def roles_for(run_id: bytes, participants: Sequence[str], initiator: str) -> tuple[str, str]:
    """(reconstructor, relay) when no reconstructor is named (T = 2 only): the initiator
    relays (it carries every message of the run, and sees only blinded points and sealed
    boxes); the reconstructor is another participant, drawn from the run id."""
    others = sorted(n for n in participants if n != initiator)
    digest = hashlib.blake2b(run_id, digest_size=8, person=b"detente-mpsi-rl").digest()
    return others[int.from_bytes(digest, "little") % len(others)], initiator


@dataclass(frozen=True)
class RunSpec:
    """One coalition run, as every participant — and the reconstructor — checks it before
    it takes part. ``participants`` hold items; ``reconstructor`` is R: a node outside
    ``participants`` (it holds no items in the run; required at T ≥ 3), or, at T = 2 only,
    the participant :func:`roles_for` draws (left empty, it is drawn)."""

    run_id: bytes
    initiator: str
    participants: tuple[str, ...]
    threshold: int
    kind: str
    mode: CoalitionMode = CoalitionMode.MEMBERSHIP
    reconstructor: str = ""

    def __post_init__(self) -> None:
        if len(self.run_id) != 16:
            raise ProtocolError("a run id is 16 bytes")
        names = self.participants
        if list(names) != sorted(set(names)):
            raise ProtocolError("participants must be distinct and sorted")
        if not 2 <= len(names) <= MAX_PARTICIPANTS:
            raise ProtocolError(f"a coalition run has 2 to {MAX_PARTICIPANTS} participants, "
                                f"not {len(names)}")
        bad = [n for n in names if not _NAME.fullmatch(n)]
        if bad:
            raise ProtocolError(f"participant name {bad[0]!r} is not a node name")
        if self.initiator not in names:
            raise ProtocolError("the initiator must take part in the run")
        if not 2 <= self.threshold <= len(names):
            raise ProtocolError(f"threshold {self.threshold} is outside 2..{len(names)}")
        if not _NAME.fullmatch(self.kind):
            raise ProtocolError(f"item kind {self.kind!r} is not a kind name")
        self._check_reconstructor()

    def _check_reconstructor(self) -> None:
        """(0) The roles: R is never the relay; at T ≥ 3 R holds no items (fail closed)."""
        drawn = roles_for(self.run_id, self.participants, self.initiator)[0]
        if not self.reconstructor:
            if self.threshold >= 3:
                raise ProtocolError(
                    f"threshold {self.threshold} needs a reconstructor that holds no items: "
                    f"one that did could count the holders of its own items below the "
                    f"threshold", hint=ROLE_HINT)
            object.__setattr__(self, "reconstructor", drawn)
            return
        r = self.reconstructor
        if not _NAME.fullmatch(r):
            raise ProtocolError(f"reconstructor name {r!r} is not a node name")
        if r == self.initiator:
            raise ProtocolError("the initiator relays: it may not reconstruct too (R and M "
                                "together would know whose upload is whose)", hint=ROLE_HINT)
        if r in self.participants and self.threshold >= 3:
            raise ProtocolError(
                f"{r} holds items in this run and may not reconstruct it at threshold "
                f"{self.threshold}: it could count the holders of its own items below the "
                f"threshold", hint=ROLE_HINT)
        if r in self.participants and r != drawn:
            raise ProtocolError(f"{r} is not the participant this run id draws as "
                                f"reconstructor ({drawn})", hint=ROLE_HINT)

    @property
    def holding_reconstructor(self) -> bool:
        """Whether R holds items in this run (only ever at T = 2)."""
        return self.reconstructor in self.participants

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node taking part: the participants, and a non-holding R."""
        extra = () if self.holding_reconstructor else (self.reconstructor,)
        return tuple(sorted((*self.participants, *extra)))

    @property
    def roles(self) -> tuple[str, str]:
        return self.reconstructor, self.initiator

    @property
    def relay(self) -> str:
        return self.initiator

    @property
    def digest(self) -> bytes:
        """What every upload carries: R refuses one made under another spec."""
        return hashlib.blake2b(_canonical(self.to_json()), digest_size=32,
                               person=b"detente-mpsi-sp").digest()

    def others(self, name: str) -> tuple[str, ...]:
        """The participants ``name``'s list passes through, in ring order after it."""
        i = self.participants.index(name)
        return self.participants[i + 1:] + self.participants[:i]

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.run_id.hex(), "initiator": self.initiator,
                "participants": list(self.participants), "threshold": self.threshold,
                "kind": self.kind, "mode": self.mode.value,
                "reconstructor": self.reconstructor}

    @classmethod
    def from_json(cls, doc: Any) -> RunSpec:
        if not isinstance(doc, dict):
            raise ProtocolError("a run spec is a JSON object")
        try:
            run_id = bytes.fromhex(str(doc["run_id"]))
            names = doc["participants"]
            threshold = doc["threshold"]
            reconstructor = doc.get("reconstructor", "")
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise ProtocolError("participants must be a list of names")
            if not isinstance(threshold, int) or isinstance(threshold, bool):
                raise ProtocolError("threshold must be an integer")
            if not isinstance(reconstructor, str):
                raise ProtocolError("reconstructor must be a node name")
            return cls(run_id, str(doc["initiator"]), tuple(names), threshold,
                       str(doc["kind"]), CoalitionMode(doc.get("mode", "membership")),
                       reconstructor)
        except (KeyError, ValueError) as exc:
            raise ProtocolError(f"malformed run spec: {exc}") from None


def new_run(initiator: str, others: Iterable[str], threshold: int, kind: str,
            mode: CoalitionMode | str = CoalitionMode.MEMBERSHIP, *,
            reconstructor: str | None = None) -> RunSpec:
    """A fresh run: ``reconstructor`` names a node holding no items (required at T ≥ 3);
    without it (T = 2) R is drawn among the participants other than the initiator."""
    names = tuple(sorted({initiator, *others}))
    return RunSpec(secrets.token_bytes(16), initiator, names, threshold, kind,
                   CoalitionMode(mode), reconstructor or "")


@dataclass(frozen=True)
class ContactPointer:
    """A co-holder's pointer: its node name and what it chose to say (handle, contact)."""

    node: str
    handle: str
    contact: str

    def to_plain(self) -> bytes:
        body = _canonical({"node": self.node, "handle": self.handle, "contact": self.contact})
        if len(body) > _POINTER_PLAIN:
            raise ProtocolError(f"a contact pointer is at most {_POINTER_PLAIN} bytes")
        return body.ljust(_POINTER_PLAIN, b"\x00")

    @classmethod
    def from_plain(cls, raw: bytes) -> ContactPointer:
        try:
            doc = orjson.loads(raw.rstrip(b"\x00"))
            return cls(str(doc["node"]), str(doc["handle"]), str(doc["contact"]))
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise ProtocolError(f"malformed contact pointer: {exc}") from None


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return orjson.dumps(dict(doc), option=orjson.OPT_SORT_KEYS)


@dataclass
class Counters:
    """Work and traffic of one participant in one run (for the benchmark)."""

    hashes: int = 0
    multiplications: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


@dataclass(frozen=True)
class CoalitionResult:
    """What one participant learned: its own items held by ≥ T participants and, in pointer
    mode, the co-holders' pointers for each."""

    run_id: bytes
    threshold: int
    size: int
    matched: tuple[Item, ...]
    pointers: Mapping[Item, tuple[ContactPointer, ...]] = field(default_factory=dict)


def _budget_session(run_id: bytes, asker: str) -> str:
    return hashlib.sha256(b"mpsi\x00" + run_id + asker.encode()).hexdigest()[:64]


class Participant:
    """One node's part in a run: steps (1)-(4) and (7), and step (2) for the others."""

    def __init__(self, spec: RunSpec, name: str, items: Iterable[Item], *,
                 pointers: Mapping[Item, ContactPointer] | None = None,
                 budgets: Budgets | None = None, book: BudgetBook | None = None,
                 today: date | None = None) -> None:
        if name not in spec.participants:
            if name == spec.reconstructor:
                raise ProtocolError(f"{name} reconstructs this run: it holds no items in it")
            raise ProtocolError(f"{name!r} does not take part in this run")
        unique = list(dict.fromkeys(items))
        if any(not isinstance(i, Item) for i in unique):
            raise WrongModeError("coalition items must be deconflict.Item values")
        if spec.mode is CoalitionMode.POINTER and (
                pointers is None or any(i not in pointers for i in unique)):
            raise WrongModeError("pointer mode needs a contact pointer for every item")
        self.spec, self.name, self.items = spec, name, unique
        self._pointers = dict(pointers or {})
        self._key = _group.random_scalar()
        self._blind = _group.random_scalar()
        self._budgets, self._book, self._today = budgets, book, today
        self._raised: set[str] = set()
        self._tags: list[bytes] | None = None
        self._result_key: nacl.public.PrivateKey | None = None
        self._slots: dict[int, int] = {}  # slot -> index in self.items
        self._n_slots = 0
        self.counters = Counters()

    @property
    def size(self) -> int:
        return len(self.items)

    def blinded(self) -> bytes:
        """(1) ``H(x)^r`` for every own item, in our order."""
        points = _group.hash_to_group([i.encoded() for i in self.items])
        self.counters.hashes += len(self.items)
        self.counters.multiplications += len(self.items)
        return _group.multiply(self._blind, points) if self.items else b""

    def raise_for(self, asker: str, elements: bytes) -> bytes:
        """(2) Raise ``asker``'s list to our run key: once per asker per run, within its
        budget (:class:`~detente.deconflict.BudgetExceeded` names the limit)."""
        if asker == self.spec.reconstructor and asker not in self.spec.participants:
            raise ProtocolError(f"{asker} reconstructs this run and holds no items in it: "
                                f"nobody raises a list for it")
        if asker == self.name or asker not in self.spec.participants:
            raise ProtocolError(f"{asker!r} is not another participant of this run")
        if asker in self._raised:
            raise ReplayError(f"{asker} already had its list raised in this run")
        n = len(elements) // _group.ELEMENT_BYTES
        if self._budgets is not None:
            budget = self._budgets.for_partner(asker)
            budget.check_query(n, self.size)
            if self._book is not None:
                self._book.charge(partner=asker, day=self._today or date.today(), items=n,
                                  session_id=_budget_session(self.spec.run_id, asker),
                                  budget=budget)
        out = _group.multiply(self._key, elements)  # validates every element
        self._raised.add(asker)
        self.counters.multiplications += n
        self.counters.bytes_received += len(elements)
        self.counters.bytes_sent += len(out)
        return out

    def unblind(self, elements: bytes) -> None:
        """(3) Remove our blind and apply our key: the joint tags of our items."""
        if self._tags is not None:
            raise ProtocolError("this participant's tags are already final")
        if len(elements) != self.size * _group.ELEMENT_BYTES:
            raise ProtocolError(f"the ring returned {len(elements)} bytes for {self.size} items")
        scalar = _group.scalar_product(_group.invert(self._blind), self._key)
        self._tags = _group.split(_group.multiply(scalar, elements)) if elements else []
        self.counters.multiplications += self.size

    def _slot_plain(self, shape: _shares.Shape) -> tuple[bytes, dict[int, int]]:
        assert self._tags is not None
        run, spec = self.spec.run_id, self.spec
        bins: list[list[int]] = [[] for _ in range(shape.bins)]
        for k, tag in enumerate(self._tags):
            bins[_shares.item_bin(run, tag, shape.bins)].append(k)
        if any(len(b) > shape.load for b in bins):
            raise ProtocolError("a bin overflowed (probability < 2^-40): rerun")
        slots: dict[int, int] = {}
        parts: list[bytes] = []
        pointer = spec.mode is CoalitionMode.POINTER
        for b, members in enumerate(bins):
            for s in range(shape.load):
                if s < len(members):
                    k = members[s]
                    tag = self._tags[k]
                    share = _shares.make_share(_shares.coefficients(run, tag, spec.threshold))
                    parts.append(share.to_bytes())
                    if pointer:
                        box = nacl.secret.SecretBox(_shares.pointer_key(run, tag))
                        parts.append(bytes(box.encrypt(
                            self._pointers[self.items[k]].to_plain())))
                    slots[b * shape.load + s] = k
                else:
                    parts.append(_shares.random_share().to_bytes())
                    if pointer:
                        parts.append(secrets.token_bytes(_POINTER_BLOB))
        return b"".join(parts), slots

    def upload(self, capacity: int, reconstructor_key: bytes) -> bytes:
        """(4) Our shares, padded to the run's shape, sealed to R's run key."""
        if self._tags is None:
            raise ProtocolError("upload before the ring finished")
        if self.size > capacity:
            raise ProtocolError(f"{self.name} holds {self.size} items, more than the run's "
                                f"capacity of {capacity}")
        shape = _shares.shape_for(self.spec.threshold, capacity)
        body, self._slots = self._slot_plain(shape)
        self._n_slots = shape.slots
        self._result_key = nacl.public.PrivateKey.generate()
        header = _HEADER.pack(_UPLOAD_MAGIC, self.spec.run_id, self.spec.digest,
                              bytes(self._result_key.public_key), shape.bins, shape.load,
                              int(self.spec.mode is CoalitionMode.POINTER))
        try:
            box = nacl.public.SealedBox(nacl.public.PublicKey(reconstructor_key))
        except (nacl.exceptions.CryptoError, TypeError, ValueError) as exc:
            raise ProtocolError(f"reconstructor key is not an X25519 key: {exc}") from None
        sealed = bytes(box.encrypt(header + body))
        self.counters.bytes_sent += len(sealed)
        return sealed

    def read(self, sealed: bytes) -> CoalitionResult:
        """(7) Open R's answer for our upload and read it against our own slots."""
        if self._result_key is None or self._tags is None:
            raise ProtocolError("no upload of ours is waiting for a result")
        self.counters.bytes_received += len(sealed)
        try:
            plain = nacl.public.SealedBox(self._result_key).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise ProtocolError("the result is not sealed to our result key") from None
        flags = _parse_result(plain, self.spec, self._n_slots)
        matched: list[Item] = []
        pointers: dict[Item, tuple[ContactPointer, ...]] = {}
        for slot, k in sorted(self._slots.items()):
            over, blobs = flags[slot]
            if not over:
                continue
            item = self.items[k]
            matched.append(item)
            if self.spec.mode is CoalitionMode.POINTER:
                pointers[item] = self._open_pointers(self._tags[k], blobs)
        self._result_key = None  # one result per upload
        return CoalitionResult(self.spec.run_id, self.spec.threshold, self.size,
                               tuple(matched), pointers)

    def _open_pointers(self, tag: bytes, blobs: Sequence[bytes]) -> tuple[ContactPointer, ...]:
        box = nacl.secret.SecretBox(_shares.pointer_key(self.spec.run_id, tag))
        found: list[ContactPointer] = []
        for blob in blobs:
            try:
                found.append(ContactPointer.from_plain(box.decrypt(blob)))
            except nacl.exceptions.CryptoError:
                continue  # not sealed under this item's tag: not a co-holder's pointer
        return tuple(found)


def _parse_result(plain: bytes, spec: RunSpec, slots: int
                  ) -> list[tuple[bool, tuple[bytes, ...]]]:
    head = len(_RESULT_MAGIC) + 16
    if plain[:len(_RESULT_MAGIC)] != _RESULT_MAGIC or plain[len(_RESULT_MAGIC):head] != \
            spec.run_id:
        raise ProtocolError("the result is not for this run")
    out: list[tuple[bool, tuple[bytes, ...]]] = []
    pos = head
    pointer = spec.mode is CoalitionMode.POINTER
    try:
        while pos < len(plain):
            flag = plain[pos]
            pos += 1
            blobs: list[bytes] = []
            if pointer and flag:
                count = plain[pos]
                pos += 1
                for _ in range(count):
                    blobs.append(plain[pos:pos + _POINTER_BLOB])
                    pos += _POINTER_BLOB
            out.append((flag == 1, tuple(blobs)))
    except IndexError:
        raise ProtocolError("the result is truncated") from None
    if pos != len(plain) or len(out) != slots:
        raise ProtocolError("the result does not match our upload's shape")
    return out


class Relay:
    """M: one upload per participant, shuffled before R sees them, results handed back."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self._uploads: dict[str, bytes] = {}
        self._order: list[str] | None = None

    def accept(self, sender: str, sealed: bytes) -> None:
        """(5) Take ``sender``'s upload; a second one, or one from outside the run, is refused."""
        if sender not in self.spec.participants:
            raise ProtocolError(f"{sender!r} holds no items in this run: it uploads nothing")
        if sender in self._uploads or self._order is not None:
            raise ReplayError(f"{sender} already uploaded in this run")
        self._uploads[sender] = sealed

    @property
    def complete(self) -> bool:
        return len(self._uploads) == len(self.spec.participants)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(n for n in self.spec.participants if n not in self._uploads)

    def batch(self) -> list[bytes]:
        """(5) All N uploads in a uniformly random order (``secrets.SystemRandom``)."""
        if not self.complete:
            raise ProtocolError(f"uploads missing from {', '.join(self.missing)}")
        order = list(self._uploads)
        secrets.SystemRandom().shuffle(order)
        self._order = order
        return [self._uploads[n] for n in order]

    def deliver(self, results: Sequence[bytes]) -> dict[str, bytes]:
        """(6) R's results, in the batch's order, back to each participant."""
        if self._order is None or len(results) != len(self._order):
            raise ProtocolError("the reconstructor answered a different number of uploads")
        return dict(zip(self._order, results, strict=True))


@dataclass(frozen=True)
class _Upload:
    result_key: bytes
    shape: _shares.Shape
    shares: list[_shares.Share]
    blobs: list[bytes]


class Reconstructor:
    """R: a run key that uploads are sealed to, and step (6)."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self._key = nacl.public.PrivateKey.generate()
        self._done = False
        #: what R learns beyond N opaque uploads: per over-threshold group, how many
        #: (anonymous, shuffled) uploads it spans — sorted, for the leakage tests
        self.learned: list[int] = []
        self.counters = Counters()

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.public_key)

    def _open(self, k: int, sealed: bytes, capacity: int) -> _Upload:
        try:
            plain = nacl.public.SealedBox(self._key).decrypt(sealed)
        except nacl.exceptions.CryptoError:
            raise ProtocolError(f"upload {k} is not sealed to this run's key") from None
        if len(plain) < _HEADER.size:
            raise ProtocolError(f"upload {k} is truncated")
        magic, run_id, digest, result_key, bins, load, pointer = _HEADER.unpack_from(plain)
        shape = _shares.shape_for(self.spec.threshold, capacity)
        if magic != _UPLOAD_MAGIC or run_id != self.spec.run_id:
            raise ProtocolError(f"upload {k} belongs to another run (or protocol version)")
        if digest != self.spec.digest:
            raise ProtocolError(f"upload {k} was made under another spec of this run (the "
                                f"initiator told its participants different roles or "
                                f"thresholds)")
        if (bins, load) != (shape.bins, shape.load) or \
                bool(pointer) != (self.spec.mode is CoalitionMode.POINTER):
            raise ProtocolError(f"upload {k} does not have the run's shape")
        width = 2 * _shares.FIELD_BYTES + (_POINTER_BLOB if pointer else 0)
        body = plain[_HEADER.size:]
        if len(body) != shape.slots * width:
            raise ProtocolError(f"upload {k} has {len(body)} bytes, not {shape.slots * width}")
        shares, blobs = [], []
        for s in range(shape.slots):
            raw = body[s * width:(s + 1) * width]
            try:
                shares.append(_shares.Share.from_bytes(raw))
            except ValueError:
                raise ProtocolError(f"upload {k} slot {s} is not a share") from None
            blobs.append(raw[2 * _shares.FIELD_BYTES:])
        return _Upload(result_key, shape, shares, blobs)

    def reconstruct(self, uploads: Sequence[bytes], capacity: int) -> list[bytes]:
        """(6) One sealed result per upload, in the order given. Refuses (and answers
        nothing) unless there are exactly N well-formed uploads of this run, none a copy."""
        if self._done:
            raise ReplayError("this run was already reconstructed")
        if len(uploads) != len(self.spec.participants):
            raise ProtocolError(f"{len(uploads)} uploads for a run of "
                                f"{len(self.spec.participants)} participants")
        opened = [self._open(k, u, capacity) for k, u in enumerate(uploads)]
        self.counters.bytes_received += sum(len(u) for u in uploads)
        if len({u.result_key for u in opened}) != len(opened):
            raise ReplayError("two uploads carry the same result key (a replayed upload)")
        xs: set[int] = set()
        for k, opened_k in enumerate(opened):
            mine = {sh.x for sh in opened_k.shares}
            if len(mine) != len(opened_k.shares) or xs & mine:
                raise ReplayError(f"upload {k} repeats a share (a replayed or copied upload)")
            xs |= mine
        self._done = True
        shape = opened[0].shape
        bins: list[list[tuple[int, int, _shares.Share]]] = [[] for _ in range(shape.bins)]
        for u, up in enumerate(opened):
            for s, share in enumerate(up.shares):
                bins[s // shape.load].append((u, s, share))
        over: list[dict[int, list[bytes]]] = [{} for _ in opened]
        for group in _shares.find_groups(bins, self.spec.threshold):
            self.learned.append(len({u for u, _s in group}))
            for u, s in group:
                co = {v: opened[v].blobs[t] for v, t in group if v != u}
                over[u][s] = list(co.values())
        self.learned.sort()
        results = [self._seal(up, over[u]) for u, up in enumerate(opened)]
        self.counters.bytes_sent += sum(len(r) for r in results)
        return results

    def _seal(self, up: _Upload, over: Mapping[int, list[bytes]]) -> bytes:
        pointer = self.spec.mode is CoalitionMode.POINTER
        parts = [_RESULT_MAGIC, self.spec.run_id]
        for s in range(up.shape.slots):
            if s not in over:
                parts.append(b"\x00")
            elif pointer:
                blobs = over[s][:255]
                parts.append(bytes([1, len(blobs)]) + b"".join(blobs))
            else:
                parts.append(b"\x01")
        return bytes(nacl.public.SealedBox(nacl.public.PublicKey(up.result_key))
                     .encrypt(b"".join(parts)))


def pack_frames(parts: Sequence[bytes]) -> bytes:
    """Length-prefixed concatenation (the uploads M sends R, the results R sends back)."""
    return b"".join(struct.pack(">I", len(p)) + p for p in parts)


def unpack_frames(blob: bytes, expected: int) -> list[bytes]:
    """The ``expected`` frames of :func:`pack_frames`, or a :class:`ProtocolError`."""
    out: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob) or len(out) >= expected:
            raise ProtocolError(f"framing broken at byte {pos}")
        (size,) = struct.unpack_from(">I", blob, pos)
        if pos + 4 + size > len(blob):
            raise ProtocolError(f"frame {len(out)} is truncated")
        out.append(blob[pos + 4:pos + 4 + size])
        pos += 4 + size
    if len(out) != expected:
        raise ProtocolError(f"{len(out)} frames, expected {expected}")
    return out


def capacity_for(sizes: Iterable[int]) -> int:
    """The capacity a run pads every upload to: the next power of two ≥ the largest set
    (at least 8), so R never learns a set's size."""
    largest = max([8, *sizes])
    return 1 << (largest - 1).bit_length()


def run_locally(spec: RunSpec, sets: Mapping[str, Sequence[Item]], *,
                pointers: Mapping[str, Mapping[Item, ContactPointer]] | None = None
                ) -> tuple[dict[str, CoalitionResult], dict[str, Participant]]:
    """A whole run in memory, steps (1)-(7): what the HTTP edge does, without the wire.
    A non-holding reconstructor given items is refused (it holds none in a run it
    reconstructs)."""
    if not spec.holding_reconstructor and sets.get(spec.reconstructor):
        raise ProtocolError(f"{spec.reconstructor} reconstructs this run: it holds no items "
                            f"in it")
    parts = {n: Participant(spec, n, sets.get(n, ()),
                            pointers=(pointers or {}).get(n)) for n in spec.participants}
    for name, p in parts.items():                                   # (1)-(3)
        elements = p.blinded()
        for other in spec.others(name):
            elements = parts[other].raise_for(name, elements)
        p.unblind(elements)
    capacity = capacity_for(p.size for p in parts.values())
    reconstructor = Reconstructor(spec)
    relay = Relay(spec)
    for name, p in parts.items():                                   # (4)-(5)
        relay.accept(name, p.upload(capacity, reconstructor.public_key))
    results = relay.deliver(reconstructor.reconstruct(relay.batch(), capacity))  # (6)
    return {n: parts[n].read(results[n]) for n in spec.participants}, parts  # (7)
