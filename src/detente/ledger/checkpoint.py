"""Checkpoints (C2SP tlog-checkpoint) and witness cosignatures (C2SP tlog-cosignature v1).

Hand-written on top of :mod:`detente.ledger.note` for the same reason: no maintained Python
implementation exists, and both formats are a few strict lines. A checkpoint body is

    <origin>
    <tree size, decimal>
    <base64 root hash>
    [extension lines]

signed as a C2SP signed note by the log's Ed25519 key. A witness cosignature signs
``"cosignature/v1\\ntime <t>\\n" + body`` and is carried as one more signature line whose
bytes are ``key hash (4) || timestamp (8, big-endian) || Ed25519 signature (64)``.
A :class:`Checkpoint` that exists is well formed; one built by :meth:`Checkpoint.from_note`
also carries a valid signature from a key the caller trusts.
"""

from __future__ import annotations

import base64
import re
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from detente.ledger.errors import CheckpointError, SignatureError
from detente.ledger.hashing import HASH_SIZE
from detente.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    NoteSignature,
    b64decode,
    check_name,
    key_hash,
    parse_note,
)

__all__ = ["Checkpoint", "Cosignature"]

_SIZE = re.compile(r"0|[1-9][0-9]{0,18}")
_MAX_SIZE = (1 << 63) - 1


def _check_line(text: str, what: str) -> str:
    if not isinstance(text, str) or not text or any(ord(c) < 0x20 for c in text):
        raise CheckpointError(f"checkpoint {what} is empty or has control characters")
    return text


def _verify(key: VerifyKey, message: bytes, signature: bytes) -> bool:
    try:
        key.verify(message, signature)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement "the log ``origin`` has ``size`` entries with ``root``"."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()
    signatures: tuple[NoteSignature, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not isinstance(self.size, int) or not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError(f"checkpoint size {self.size!r} is out of range")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_SIZE:
            raise CheckpointError(f"checkpoint root is not a {HASH_SIZE}-byte hash")
        for ext in self.extensions:
            _check_line(ext, "extension line")

    @property
    def body(self) -> str:
        """The signed text: origin, size, base64 root, extension lines, each newline-ended."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()]
        return "".join(line + "\n" for line in (*lines, *self.extensions))

    def to_note(self) -> str:
        """The signed note: body, blank line, one line per signature and cosignature."""
        return self.body + "\n" + "".join(sig.line for sig in self.signatures)

    @classmethod
    def sign(
        cls,
        origin: str,
        size: int,
        root: bytes,
        key: SigningKey,
        name: str,
        extensions: tuple[str, ...] = (),
    ) -> Checkpoint:
        """Build and sign a checkpoint with the log's Ed25519 key named ``name``."""
        unsigned = cls(origin, size, root, extensions)
        public = bytes(key.verify_key)
        sig = key.sign(unsigned.body.encode()).signature
        line = NoteSignature(check_name(name), key_hash(name, ALG_ED25519, public), sig)
        return replace(unsigned, signatures=(line,))

    @classmethod
    def from_note(cls, text: str, verifier_keys: Mapping[str, VerifyKey]) -> Checkpoint:
        """Parse a checkpoint note and require a valid signature by one of ``verifier_keys``."""
        body, signatures = parse_note(text)  # (1) split body and signature block
        lines = body[:-1].split("\n")  # (2) origin, size, root, extensions
        if len(lines) < 3:
            raise CheckpointError("checkpoint body has fewer than three lines")
        if not _SIZE.fullmatch(lines[1]):
            raise CheckpointError(f"checkpoint size {lines[1]!r} is not a decimal number")
        root = b64decode(lines[2], "checkpoint root")
        checkpoint = cls(lines[0], int(lines[1]), root, tuple(lines[3:]), tuple(signatures))
        if checkpoint.body != body:
            raise CheckpointError("checkpoint body is not in canonical form")
        checkpoint.verify(verifier_keys)  # (3) a known key signed it
        return checkpoint

    def verify(self, verifier_keys: Mapping[str, VerifyKey]) -> list[str]:
        """Names of the known keys that signed; refuses none, or a known key's bad signature."""
        message, signers = self.body.encode(), []
        for sig in self.signatures:
            key = verifier_keys.get(sig.name)
            if key is None or sig.key_hash != key_hash(sig.name, ALG_ED25519, bytes(key)):
                continue  # unknown keys (and cosignatures) are ignored, as signed-note says
            if not _verify(key, message, sig.signature):
                raise SignatureError(f"signature by {sig.name!r} on {self.origin!r} is invalid")
            signers.append(sig.name)
        if not signers:
            raise SignatureError(f"checkpoint of {self.origin!r} has no signature by a known key")
        return signers

    def with_cosignature(self, cosignature: Cosignature) -> Checkpoint:
        """This checkpoint with one more (cosignature) line."""
        return replace(self, signatures=(*self.signatures, cosignature.note_signature))

    def cosignatures(self, witness_keys: Mapping[str, VerifyKey]) -> list[Cosignature]:
        """The cosignatures by ``witness_keys``, each verified; a bad one is refused."""
        found = []
        for sig in self.signatures:
            key = witness_keys.get(sig.name)
            if key is None or sig.key_hash != key_hash(sig.name, ALG_COSIGNATURE_V1, bytes(key)):
                continue
            cosig = Cosignature.from_note_signature(sig)
            cosig.verify(self, key)
            found.append(cosig)
        return found

    def same_tree(self, other: Checkpoint) -> bool:
        return (self.origin, self.size, self.root) == (other.origin, other.size, other.root)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A witness's statement that it verified ``checkpoint`` consistent at ``timestamp``."""

    name: str
    key_hash: bytes
    timestamp: int
    signature: bytes

    @staticmethod
    def message(checkpoint: Checkpoint, timestamp: int) -> bytes:
        return f"cosignature/v1\ntime {timestamp}\n{checkpoint.body}".encode()

    @classmethod
    def create(
        cls, checkpoint: Checkpoint, key: SigningKey, name: str, timestamp: int | None = None
    ) -> Cosignature:
        """Cosign ``checkpoint`` as witness ``name`` (``timestamp`` in seconds since epoch)."""
        when = int(time.time()) if timestamp is None else timestamp
        sig = key.sign(cls.message(checkpoint, when)).signature
        khash = key_hash(check_name(name), ALG_COSIGNATURE_V1, bytes(key.verify_key))
        return cls(name, khash, when, sig)

    @classmethod
    def from_note_signature(cls, sig: NoteSignature) -> Cosignature:
        if len(sig.signature) != 8 + 64:
            raise SignatureError(f"cosignature by {sig.name!r} is not timestamp || signature")
        (when,) = struct.unpack(">Q", sig.signature[:8])
        return cls(sig.name, sig.key_hash, when, sig.signature[8:])

    @property
    def note_signature(self) -> NoteSignature:
        return NoteSignature(
            self.name, self.key_hash, struct.pack(">Q", self.timestamp) + self.signature
        )

    @property
    def line(self) -> str:
        """The signature line ``— <name> <base64(key hash || timestamp || signature)>``."""
        return self.note_signature.line

    def verify(self, checkpoint: Checkpoint, key: VerifyKey) -> None:
        """Raise :class:`SignatureError` unless ``key`` made this cosignature on ``checkpoint``."""
        if self.key_hash != key_hash(self.name, ALG_COSIGNATURE_V1, bytes(key)):
            raise SignatureError(f"cosignature key hash does not match witness {self.name!r}")
        if not _verify(key, self.message(checkpoint, self.timestamp), self.signature):
            raise SignatureError(
                f"cosignature by {self.name!r} on {checkpoint.origin!r} is invalid"
            )
