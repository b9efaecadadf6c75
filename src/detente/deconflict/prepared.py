"""The responder's blinded set: built once, sent compressed, reusable across sessions.

A :class:`PreparedSet` is the responder's secret half: a key ``b`` and the Golomb-coded set
of ``tag(b·H(y))`` over its items (plus, in pointer mode, one sealed box per item). A
:class:`SetDigest` is what the requester receives and may keep: the coded set and the boxes,
nothing that reveals an item without the key.

Tags and box keys are BLAKE2b (``hashlib``) of the 32-byte element with distinct
personalisations; boxes are libsodium secretbox (PyNaCl). A box key is derived from
``b·H(y)``, which a requester obtains only by having the responder blind its own copy of
``y``: only a requester that holds the item can open its box.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import nacl.exceptions
import nacl.secret

from detente.deconflict import _group
from detente.deconflict._gcs import GolombSet, rice_bits
from detente.deconflict._wire import Reader, Writer
from detente.deconflict.errors import EncodingError, ProtocolError
from detente.deconflict.items import Item
from detente.deconflict.messages import BOX_BYTES, PROTOCOL_VERSION

__all__ = ["Pointer", "PreparedSet", "SetDigest", "element_tags", "open_box"]

_TAG_PERSON = b"dpsi1-tag"
_KEY_PERSON = b"dpsi1-boxkey"
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
    boxes: bytes = b""
    _members: set[int] | None = field(default=None, compare=False, repr=False)

    @property
    def size(self) -> int:
        return self.golomb.count

    def has_boxes(self) -> bool:
        return bool(self.boxes) or self.golomb.count == 0

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
        return (
            w.u8(g.bits)
            .u32(g.count)
            .blob(g.quotients)
            .blob(g.remainders)
            .blob(self.boxes)
            .getvalue()
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SetDigest:
        r = Reader(data, "set digest")
        if r.raw(4, "magic") != _DIGEST_MAGIC or r.u8("version") != PROTOCOL_VERSION:
            raise ProtocolError("not a version-1 detente set digest")
        set_id, bits, count = r.raw(16, "set id"), r.u8("bits"), r.u32("count")
        golomb = GolombSet(count, bits, r.blob("quotients"), r.blob("remainders"))
        boxes = r.blob("boxes")
        r.end()
        if boxes and len(boxes) != count * BOX_BYTES:
            raise ProtocolError("set digest: boxes do not match the set size")
        return cls(set_id, golomb, boxes)

    def box_for(self, value: int) -> bytes | None:
        ordered = self.golomb.values()
        i = bisect_left(ordered, value)
        if i == len(ordered) or ordered[i] != value or not self.boxes:
            return None
        return self.boxes[i * BOX_BYTES : (i + 1) * BOX_BYTES]


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
        pointers: Mapping[Item, Pointer] | None = None,
        key: bytes | None = None,
    ) -> PreparedSet:
        """(P1) H(y) for every item; (P2) b·H(y); (P3) tags into a Golomb-coded set;
        (P4) in pointer mode, seal each item's pointer under a key derived from b·H(y)."""
        b = key if key is not None else _group.random_scalar()
        blinded = _group.multiply(b, _group.hash_to_group([i.encoded() for i in items]))
        bits = rice_bits(max_query_items, false_positive_rate)
        tags = element_tags(blinded, max(1, len(items)) << bits)
        by_tag = dict(zip(tags, range(len(items)), strict=True))
        golomb = GolombSet.build(tags, bits)  # a (~2**-bits) tag collision stays a duplicate
        boxes = b""
        if pointers is not None:
            boxes = _seal_boxes(golomb.values(), by_tag, items, blinded, pointers)
        digest = SetDigest(secrets.token_bytes(16), golomb, boxes)
        return cls(b, digest, max_query_items)


def _seal_boxes(
    ordered: list[int],
    by_tag: dict[int, int],
    items: Sequence[Item],
    blinded: bytes,
    pointers: Mapping[Item, Pointer],
) -> bytes:
    out = []
    for value in ordered:
        i = by_tag[value]
        pointer = pointers.get(items[i])
        if pointer is None:
            raise EncodingError(f"pointer mode: no pointer for item of kind {items[i].kind!r}")
        box = nacl.secret.SecretBox(_box_key(blinded[i * 32 : i * 32 + 32]))
        out.append(bytes(box.encrypt(pointer._plain())))
    return b"".join(out)
