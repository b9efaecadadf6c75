"""C2SP signed-note primitives: key hashes, signature lines, verifier keys.

Hand-written because no maintained Python package implements C2SP signed-note; it is a
small line format, parsed here strictly because notes arrive from partners:

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(key hash (4 bytes) || signature)>

The key hash is the first four bytes of ``SHA-256(name || 0x0A || type || public key)``,
with type ``0x01`` for Ed25519 note signatures and ``0x04`` for tlog cosignatures/v1.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from nacl.signing import VerifyKey

from detente.ledger.errors import CheckpointError, SignatureError

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "NoteSignature",
    "b64decode",
    "format_vkey",
    "key_hash",
    "parse_note",
    "parse_vkey",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
_SIG_PREFIX = "— "  # U+2014 EM DASH, then a space
_NAME = re.compile(r"[^\s+]+")
_MAX_SIGNATURES = 100


def key_hash(name: str, alg: int, public_key: bytes) -> bytes:
    """``SHA-256(name || 0x0A || alg || public_key)[:4]``."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4]


def b64decode(text: str, what: str) -> bytes:
    """Strict standard base64, raising :class:`CheckpointError` naming ``what``."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not valid base64") from None


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise CheckpointError(f"key name {name!r} is empty or has spaces or '+'")
    return name


@dataclass(frozen=True, slots=True)
class NoteSignature:
    """One signature line: the key name, its 4-byte key hash, and the signature bytes."""

    name: str
    key_hash: bytes
    signature: bytes

    @property
    def line(self) -> str:
        blob = base64.b64encode(self.key_hash + self.signature).decode()
        return f"{_SIG_PREFIX}{self.name} {blob}\n"

    @classmethod
    def from_line(cls, line: str) -> NoteSignature:
        if not line.startswith(_SIG_PREFIX):
            raise CheckpointError("signature line does not start with '— '")
        parts = line[len(_SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise CheckpointError("signature line is not '— <name> <signature>'")
        blob = b64decode(parts[1], "signature")
        if len(blob) < 5:
            raise CheckpointError("signature is too short to hold a key hash")
        return cls(check_name(parts[0]), blob[:4], blob[4:])


def parse_note(text: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text (with final newline) and its signature lines."""
    if not isinstance(text, str):
        raise CheckpointError("a note must be text")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointError("note contains control characters")
    # (1) the signature block follows the last blank line
    cut = text.rfind("\n\n")
    if cut < 0:
        raise CheckpointError("note has no blank line before its signatures")
    body, block = text[: cut + 1], text[cut + 2 :]
    # (2) every line of the block is a signature line, ending in a newline
    if not block.endswith("\n"):
        raise CheckpointError("note does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > _MAX_SIGNATURES:
        raise CheckpointError(f"note has more than {_MAX_SIGNATURES} signatures")
    return body, [NoteSignature.from_line(line) for line in lines]


def format_vkey(name: str, key: VerifyKey) -> str:
    """The C2SP verifier key string ``<name>+<hex key hash>+<base64(0x01 || key)>``."""
    raw = bytes(key)
    blob = base64.b64encode(bytes([ALG_ED25519]) + raw).decode()
    return f"{check_name(name)}+{key_hash(name, ALG_ED25519, raw).hex()}+{blob}"


def parse_vkey(vkey: str) -> tuple[str, VerifyKey]:
    """Parse a verifier key string; refuses other algorithms and mismatched key hashes."""
    parts = vkey.split("+")
    if len(parts) != 3:
        raise SignatureError("verifier key is not '<name>+<hash>+<key>'")
    name, hash_hex, blob = check_name(parts[0]), parts[1], b64decode(parts[2], "verifier key")
    if len(blob) != 33 or blob[0] != ALG_ED25519:
        raise SignatureError("verifier key is not an Ed25519 key")
    if key_hash(name, ALG_ED25519, blob[1:]).hex() != hash_hex:
        raise SignatureError("verifier key hash does not match its name and key")
    return name, VerifyKey(blob[1:])
