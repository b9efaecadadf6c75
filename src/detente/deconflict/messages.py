"""The four PSI messages, versioned and validated when built.

Why hand-written: a compact binary format (32-byte elements back to back, a Golomb-coded
set) keeps the wire at about 67 bytes per element for a balanced intersection, and one
entry point (``from_bytes`` / :func:`parse_message`) refuses anything malformed before a
protocol step sees it. A message object that exists is valid.

Every message starts with the same header::

    magic "DPSI" | version u8 | type u8 | mode u8 | step u8 | session id (16 bytes)

Type tags and mode tags are stable and never reused (old nodes refuse new ones clearly);
the type of a message fixes its step: 1 query, 2 response, 3 reveal, 4 opening (3 and 4
exist in every mode but intersection). Lengths are u64-prefixed blobs; nothing may trail a
message. Version 2 (this one) moved the comparison of cardinality and pointer modes to the
responder and salted mutual mode's commitment; version-1 messages are refused by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, TypeVar

from detente.deconflict._gcs import GolombSet
from detente.deconflict._group import ELEMENT_BYTES
from detente.deconflict._wire import Reader, Writer
from detente.deconflict.errors import ProtocolError, UnsupportedVersion

__all__ = [
    "BOX_BYTES",
    "BOX_ENTRY_BYTES",
    "BOX_ID_BYTES",
    "COMPARED_MODES",
    "PROTOCOL_VERSION",
    "SALT_BYTES",
    "Message",
    "Mode",
    "OpeningMessage",
    "QueryMessage",
    "ResponseMessage",
    "RevealMessage",
    "parse_message",
]

PROTOCOL_VERSION = 2
MAGIC = b"DPSI"
SESSION_ID_BYTES = 16
SET_ID_BYTES = 16
COMMITMENT_BYTES = 32
MAX_ELEMENTS = 1 << 24
SALT_BYTES = 32
BOX_BYTES = 24 + 16 + 228  # secretbox nonce + MAC + padded (handle, contact)
BOX_ID_BYTES = 16
BOX_ENTRY_BYTES = BOX_ID_BYTES + BOX_BYTES


class Mode(StrEnum):
    """What the requester (and, in mutual mode, the responder) learns."""

    INTERSECTION = "intersection"
    CARDINALITY = "cardinality"
    POINTER = "pointer"
    MUTUAL = "mutual"


_MODE_TAGS: dict[Mode, int] = {
    Mode.INTERSECTION: 1,
    Mode.CARDINALITY: 2,
    Mode.POINTER: 3,
    Mode.MUTUAL: 4,
}
_TAG_MODES = {tag: mode for mode, tag in _MODE_TAGS.items()}
COMPARED_MODES = frozenset({Mode.CARDINALITY, Mode.POINTER})  # the responder compares


def _check_session(session_id: bytes) -> None:
    if not isinstance(session_id, bytes) or len(session_id) != SESSION_ID_BYTES:
        raise ProtocolError(f"session id must be {SESSION_ID_BYTES} bytes")


def _check_distinct(elements: bytes, what: str) -> None:
    chunks = {elements[i : i + ELEMENT_BYTES] for i in range(0, len(elements), ELEMENT_BYTES)}
    if len(chunks) != len(elements) // ELEMENT_BYTES:
        raise ProtocolError(f"{what} repeats an element")


def _check_elements(elements: bytes, what: str, *, allow_empty: bool = False) -> int:
    if len(elements) % ELEMENT_BYTES:
        raise ProtocolError(f"{what}: {len(elements)} bytes is not a whole number of elements")
    count = len(elements) // ELEMENT_BYTES
    if count > MAX_ELEMENTS:
        raise ProtocolError(f"{what}: {count} elements exceeds the limit of {MAX_ELEMENTS}")
    if count == 0 and not allow_empty:
        raise ProtocolError(f"{what}: no elements")
    return count


@dataclass(frozen=True)
class _Header:
    type_tag: int
    mode: Mode
    step: int
    session_id: bytes


def _write_header(msg: Message) -> Writer:
    w = Writer().raw(MAGIC).u8(PROTOCOL_VERSION).u8(msg.TYPE_TAG)
    return w.u8(_MODE_TAGS[msg.mode]).u8(msg.STEP).raw(msg.session_id)


def _read_header(r: Reader) -> _Header:
    if r.raw(len(MAGIC), "magic") != MAGIC:
        raise ProtocolError("not a detente PSI message (bad magic)")
    version = r.u8("version")
    if version != PROTOCOL_VERSION:
        raise UnsupportedVersion(
            f"PSI protocol version {version} is not supported (this node speaks {PROTOCOL_VERSION})"
        )
    type_tag, mode_tag, step = r.u8("type"), r.u8("mode"), r.u8("step")
    if mode_tag not in _TAG_MODES:
        raise ProtocolError(f"unknown PSI mode tag {mode_tag}")
    return _Header(type_tag, _TAG_MODES[mode_tag], step, r.raw(SESSION_ID_BYTES, "session id"))


@dataclass(frozen=True)
class QueryMessage:
    """(1) requester → responder: the requester's items, each blinded by its session secret."""

    TYPE_TAG: ClassVar[int] = 1
    STEP: ClassVar[int] = 1
    session_id: bytes
    mode: Mode
    elements: bytes
    known_set: bytes = b""  # id of a prepared set the requester already holds, or empty

    def __post_init__(self) -> None:
        _check_session(self.session_id)
        _check_elements(self.elements, "query")
        if self.known_set and len(self.known_set) != SET_ID_BYTES:
            raise ProtocolError(f"known set id must be empty or {SET_ID_BYTES} bytes")
        if self.known_set and self.mode is not Mode.INTERSECTION:
            raise ProtocolError(f"{self.mode} mode does not use prepared sets")
        _check_distinct(self.elements, "query")

    @property
    def count(self) -> int:
        return len(self.elements) // ELEMENT_BYTES

    def to_bytes(self) -> bytes:
        return _write_header(self).blob(self.elements).blob(self.known_set).getvalue()

    @classmethod
    def _read(cls, h: _Header, r: Reader) -> QueryMessage:
        return cls(h.session_id, h.mode, r.blob("elements"), r.blob("known set"))

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryMessage:
        return _expect(parse_message(data), cls)


@dataclass(frozen=True)
class ResponseMessage:
    """(2) responder → requester. Contents depend on the mode; see :meth:`_validate_mode`."""

    TYPE_TAG: ClassVar[int] = 2
    STEP: ClassVar[int] = 2
    session_id: bytes
    mode: Mode
    responder_size: int
    elements: bytes = b""  # the query, multiplied by the responder's secret
    set_id: bytes = b""
    digest: GolombSet | None = None  # the responder's blinded set, unless already held
    boxes: bytes = b""  # pointer mode: one sealed (handle, contact) per digest value
    peer_elements: bytes = b""  # mutual mode: the responder's items, blinded
    commitment: bytes = b""  # mutual mode: hash of the withheld doubly-blinded query

    def __post_init__(self) -> None:
        _check_session(self.session_id)
        if not 0 <= self.responder_size <= MAX_ELEMENTS:
            raise ProtocolError(f"responder size {self.responder_size} out of range")
        self._validate_mode()

    def _validate_mode(self) -> None:
        if self.mode is not Mode.INTERSECTION:
            if self.elements or self.digest or self.set_id:
                raise ProtocolError(f"{self.mode} response carries only the responder's "
                                    "blinded items (and boxes or a commitment)")
            n = _check_elements(self.peer_elements, "peer elements", allow_empty=True)
            if n != self.responder_size:
                raise ProtocolError(f"{self.mode} response: peer elements do not match its size")
            wanted = COMMITMENT_BYTES if self.mode is Mode.MUTUAL else 0
            if len(self.commitment) != wanted:
                raise ProtocolError(f"{self.mode} response: commitment must be {wanted} bytes")
            boxes = n * BOX_ENTRY_BYTES if self.mode is Mode.POINTER else 0
            if len(self.boxes) != boxes:
                raise ProtocolError(f"response: {len(self.boxes)} box bytes, expected {boxes}")
            return
        _check_elements(self.elements, "response elements")
        if self.peer_elements or self.commitment or self.boxes:
            raise ProtocolError("intersection response must not carry peer elements, boxes "
                                "or a commitment (mutual-mode fields)")
        if len(self.set_id) != SET_ID_BYTES:
            raise ProtocolError(f"set id must be {SET_ID_BYTES} bytes")
        if self.digest is not None and self.digest.count != self.responder_size:
            raise ProtocolError("response: set digest size disagrees with responder size")

    @property
    def count(self) -> int:
        return len(self.elements) // ELEMENT_BYTES

    def to_bytes(self) -> bytes:
        w = _write_header(self).u32(self.responder_size).blob(self.elements).blob(self.set_id)
        d = self.digest
        if d is None:
            w.u8(0)
        else:
            w.u8(1).u8(d.bits).u32(d.count).blob(d.quotients).blob(d.remainders)
        w.blob(self.boxes).blob(self.peer_elements).blob(self.commitment)
        return w.getvalue()

    @classmethod
    def _read(cls, h: _Header, r: Reader) -> ResponseMessage:
        size, elements, set_id = r.u32("responder size"), r.blob("elements"), r.blob("set id")
        flag = r.u8("digest flag")
        if flag not in (0, 1):
            raise ProtocolError(f"response: digest flag {flag} is neither 0 nor 1")
        digest = None
        if flag:
            bits, count = r.u8("digest bits"), r.u32("digest count")
            digest = GolombSet(count, bits, r.blob("digest quotients"), r.blob("digest rems"))
        boxes, peer, commitment = r.blob("boxes"), r.blob("peer elements"), r.blob("commitment")
        return cls(h.session_id, h.mode, size, elements, set_id, digest, boxes, peer, commitment)

    @classmethod
    def from_bytes(cls, data: bytes) -> ResponseMessage:
        return _expect(parse_message(data), cls)


@dataclass(frozen=True)
class RevealMessage:
    """(3) requester → responder (all modes but intersection): the responder's items,
    doubly blinded; shuffled by the requester in cardinality and pointer modes."""

    TYPE_TAG: ClassVar[int] = 3
    STEP: ClassVar[int] = 3
    session_id: bytes
    elements: bytes
    mode: Mode = Mode.MUTUAL

    def __post_init__(self) -> None:
        _check_session(self.session_id)
        _check_elements(self.elements, "reveal", allow_empty=True)
        if self.mode is Mode.INTERSECTION:
            raise ProtocolError("intersection mode has no reveal message")
        _check_distinct(self.elements, "reveal")

    def to_bytes(self) -> bytes:
        return _write_header(self).blob(self.elements).getvalue()

    @classmethod
    def _read(cls, h: _Header, r: Reader) -> RevealMessage:
        return cls(h.session_id, r.blob("elements"), h.mode)

    @classmethod
    def from_bytes(cls, data: bytes) -> RevealMessage:
        return _expect(parse_message(data), cls)


@dataclass(frozen=True)
class OpeningMessage:
    """(4) responder → requester (all modes but intersection). Mutual: opens the commitment
    of step (2) (``elements`` and ``salt``); cardinality: the count only; pointer: the count
    and, per match, the element that opens that match's box."""

    TYPE_TAG: ClassVar[int] = 4
    STEP: ClassVar[int] = 4
    session_id: bytes
    elements: bytes
    count: int
    mode: Mode = Mode.MUTUAL
    salt: bytes = b""

    def __post_init__(self) -> None:
        _check_session(self.session_id)
        if self.mode is Mode.INTERSECTION:
            raise ProtocolError("intersection mode has no opening message")
        if not 0 <= self.count <= MAX_ELEMENTS:
            raise ProtocolError(f"opening: match count {self.count} out of range")
        if self.mode is Mode.MUTUAL:
            n = _check_elements(self.elements, "opening")
            if self.count > n:
                raise ProtocolError(f"opening: match count {self.count} out of range")
            if len(self.salt) != SALT_BYTES:
                raise ProtocolError(f"opening: the salt must be {SALT_BYTES} bytes")
            return
        if self.salt:
            raise ProtocolError(f"{self.mode} opening carries no salt")
        n = _check_elements(self.elements, "opening", allow_empty=True)
        wanted = self.count if self.mode is Mode.POINTER else 0
        if n != wanted:
            raise ProtocolError(f"{self.mode} opening: {n} elements for {self.count} matches")
        _check_distinct(self.elements, "opening")

    def to_bytes(self) -> bytes:
        w = _write_header(self).blob(self.elements).u32(self.count)
        return w.blob(self.salt).getvalue()

    @classmethod
    def _read(cls, h: _Header, r: Reader) -> OpeningMessage:
        return cls(h.session_id, r.blob("elements"), r.u32("count"), h.mode, r.blob("salt"))

    @classmethod
    def from_bytes(cls, data: bytes) -> OpeningMessage:
        return _expect(parse_message(data), cls)


Message = QueryMessage | ResponseMessage | RevealMessage | OpeningMessage
_BY_TAG: dict[int, type[Message]] = {
    c.TYPE_TAG: c for c in (QueryMessage, ResponseMessage, RevealMessage, OpeningMessage)
}


_M = TypeVar("_M", QueryMessage, ResponseMessage, RevealMessage, OpeningMessage)


def parse_message(data: bytes) -> Message:
    """Decode any PSI message; every defect is a :class:`ProtocolError` naming it."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError("a PSI message must be bytes")
    r = Reader(bytes(data), "PSI message")
    h = _read_header(r)
    cls = _BY_TAG.get(h.type_tag)
    if cls is None:
        raise ProtocolError(f"unknown PSI message type {h.type_tag}")
    if h.step != cls.STEP:
        raise ProtocolError(f"{cls.__name__} must carry step {cls.STEP}, not {h.step}")
    msg = cls._read(h, r)
    r.end()
    return msg


def _expect(msg: Message, cls: type[_M]) -> _M:
    if not isinstance(msg, cls):
        raise ProtocolError(f"expected a {cls.__name__}, got a {type(msg).__name__}")
    return msg
