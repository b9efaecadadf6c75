"""The responder's blinded set (intersection mode) and its pointer boxes (pointer mode).

A :class:`PreparedSet` is the responder's secret half for intersection mode: a key ``b`` and
the Golomb-coded set of ``tag(b·H(y))`` over its items. A :class:`SetDigest` is what the
requester receives and may keep: the coded set, nothing that reveals an item without the key.

Pointer mode seals one box per item (:func:`seal_boxes`): libsodium secretbox (PyNaCl) under
a key derived from ``d·H(y)``, ``d`` a fresh per-session secret of the responder, filed under
an id derived from the same element. The responder hands out ``a·d·H(y)`` only for an item
that matched, so only a requester that holds the item can open its box.

Tags, box ids and box keys are BLAKE2b (``hashlib``) of the 32-byte element with distinct
personalisations. Handles are replaced per session (:func:`session_handle`): a keyed BLAKE2b
of the session id and the stable handle, so the same operation shows a different handle in
every session and only the responder (holding the key) can map it back.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.secret

from detente.deconflict import _group
from detente.deconflict._gcs import GolombSet, rice_bits
from detente.deconflict._wire import Reader, Writer
from detente.deconflict.errors import EncodingError, ProtocolError
from detente.deconflict.items import Item
from detente.deconflict.messages import BOX_BYTES, BOX_ENTRY_BYTES, BOX_ID_BYTES, PROTOCOL_VERSION

__all__ = [
    "Pointer",
    "PreparedSet",
    "SetDigest",
    "box_id",
    "element_tags",
    "open_box",
    "seal_boxes",
    "session_handle",
]

_TAG_PERSON = b"dpsi1-tag"
_KEY_PERSON = b"dpsi1-boxkey"
_ID_PERSON = b"dpsi2-boxid"
_HANDLE_PERSON = b"dpsi2-handle"
_PLAIN_BYTES = BOX_BYTES - 24 - 16
_DIGEST_MAGIC = b"DPSD"


@dataclass(frozen=True)
class Pointer:
    """What a requester learns for a match in pointer mode: an opaque handle (meaning chosen
    by the responder) and the contact channel to use for that match."""

    handle: str
    contact: str

    def __post_init__(self) -> None:
        if len(self.handle.encode()) > 64 or len(self.contact.encode()) > 160:
            raise EncodingError("pointer handle is limited to 64 bytes, contact to 160")

    def _plain(self) -> bytes:
        h, c = self.handle.encode(), self.contact.encode()
        body = struct.pack(">B", len(h)) + h + struct.pack(">B", len(c)) + c
        return body.ljust(_PLAIN_BYTES, b"\x00")

    @classmethod
    def _from_plain(cls, plain: bytes) -> Pointer:
        try:
            hl = plain[0]
            cl = plain[1 + hl]
            return cls(plain[1 : 1 + hl].decode(), plain[2 + hl : 2 + hl + cl].decode())
        except (IndexError, UnicodeDecodeError):
            raise ProtocolError("a pointer box opened to a malformed payload") from None


def element_tags(elements: bytes, modulus: int) -> list[int]:
    """The set value of each 32-byte element: BLAKE2b-128, reduced mod the set's range."""
    out = []
    for e in _group.split(elements):
        digest = hashlib.blake2b(e, digest_size=16, person=_TAG_PERSON).digest()
        out.append(int.from_bytes(digest, "big") % modulus)
    return out


def _box_key(element: bytes) -> bytes:
    return hashlib.blake2b(element, digest_size=32, person=_KEY_PERSON).digest()


def box_id(element: bytes) -> bytes:
    """Where the box opened by ``element`` is filed (sorted by id, so the order of the boxes
    says nothing about the order of the items)."""
    return hashlib.blake2b(element, digest_size=BOX_ID_BYTES, person=_ID_PERSON).digest()


def session_handle(key: bytes, session_id: bytes, handle: str) -> str:
    """The handle a requester sees for ``handle`` in one session: fresh per session."""
    mac = hashlib.blake2b(session_id + handle.encode(), key=key, digest_size=10,
                          person=_HANDLE_PERSON)  # fmt: skip
    return "h-" + mac.hexdigest()


def seal_boxes(keys: bytes, items: Sequence[Item], pointers: Mapping[Item, Pointer]) -> bytes:
    """(P4) One ``id ‖ secretbox`` entry per item, the box sealed under the item's element in
    ``keys`` (``d·H(y)``, in item order), entries sorted by id."""
    out = []
    for item, element in zip(items, _group.split(keys), strict=True):
        pointer = pointers.get(item)
        if pointer is None:
            raise EncodingError(f"pointer mode: no pointer for item of kind {item.kind!r}")
        box = nacl.secret.SecretBox(_box_key(element)).encrypt(pointer._plain())
        out.append(box_id(element) + bytes(box))
    out.sort()
    return b"".join(out)


def box_index(boxes: bytes) -> dict[bytes, bytes]:
    """The boxes of a pointer-mode response by id."""
    return {
        boxes[i : i + BOX_ID_BYTES]: boxes[i + BOX_ID_BYTES : i + BOX_ENTRY_BYTES]
        for i in range(0, len(boxes), BOX_ENTRY_BYTES)
    }


def open_box(box: bytes, element: bytes) -> Pointer | None:
    """Open the box of a matching element; ``None`` when it does not open (a GCS false hit)."""
    try:
        plain = nacl.secret.SecretBox(_box_key(element)).decrypt(box)
    except nacl.exceptions.CryptoError:
        return None
    return Pointer._from_plain(plain)


@dataclass(frozen=True)
class SetDigest:
    """The requester's copy of a responder's prepared set (safe to cache and reuse)."""

    set_id: bytes
    golomb: GolombSet
    _members: set[int] | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        return self.golomb.count

    def contains(self, values: Sequence[int]) -> list[bool]:
        if self._members is None:
            object.__setattr__(self, "_members", set(self.golomb.values()))
        members = self._members
        assert members is not None
        return [v in members for v in values]

    def to_bytes(self) -> bytes:
        """For the requester's cache: ``"DPSD" | version | set id | k | count | streams``."""
        g = self.golomb
        w = Writer().raw(_DIGEST_MAGIC).u8(PROTOCOL_VERSION).raw(self.set_id)
        return w.u8(g.bits).u32(g.count).blob(g.quotients).blob(g.remainders).getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> SetDigest:
        r = Reader(data, "set digest")
        if r.raw(4, "magic") != _DIGEST_MAGIC or r.u8("version") != PROTOCOL_VERSION:
            raise ProtocolError(f"not a version-{PROTOCOL_VERSION} detente set digest")
        set_id, bits, count = r.raw(16, "set id"), r.u8("bits"), r.u32("count")
        golomb = GolombSet(count, bits, r.blob("quotients"), r.blob("remainders"))
        r.end()
        return cls(set_id, golomb)


@dataclass(frozen=True)
class PreparedSet:
    """The responder's blinded set under one secret key. Keep it secret; give out
    :attr:`digest`. Scope one prepared set to one partner and one epoch (see docs)."""

    key: bytes = field(repr=False)
    digest: SetDigest
    max_query_items: int

    @property
    def set_id(self) -> bytes:
        return self.digest.set_id

    @property
    def size(self) -> int:
        return self.digest.size

    @classmethod
    def build(
        cls,
        items: Sequence[Item],
        *,
        max_query_items: int,
        false_positive_rate: float,
        key: bytes | None = None,
    ) -> PreparedSet:
        """(P1) H(y) for every item; (P2) b·H(y); (P3) tags into a Golomb-coded set."""
        b = key if key is not None else _group.random_scalar()
        blinded = _group.multiply(b, _group.hash_to_group([i.encoded() for i in items]))
        bits = rice_bits(max_query_items, false_positive_rate)
        tags = element_tags(blinded, max(1, len(items)) << bits)
        golomb = GolombSet.build(tags, bits)  # a (~2**-bits) tag collision stays a duplicate
        digest = SetDigest(secrets.token_bytes(16), golomb)
        return cls(b, digest, max_query_items)

