"""The claim commitment and its opening.

Written by hand because no library offers "commit to a STIX object": it is the textbook hash
commitment, ``SHA-256(tag || salt || content)`` with a fresh 32-byte salt from the OS
(``secrets``) and the object's canonical JSON (sorted keys, as the ledger's entries) without
its handling (``modified``, markings: see :data:`HANDLING`), so nothing here is a primitive
of our own. **Hiding**: without the salt (256 bits) nobody can
test a guessed content against the commitment, however few the candidates (one IP address
among 2^32). **Binding**: opening one commitment to two contents needs a SHA-256 collision.
The ledger entry carries only the commitment: partners see it as a leaf hash, and what an
unrevealed claim tells anyone is that *a* claim was made, when.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from detente.errors import DetenteError, ValidationError
from detente.ledger import Entry, EntryError

__all__ = ["ClaimError", "Opening", "RevealRefused", "canonical", "check_opening", "claim_entry",
           "commitment"]

TAG = b"detente-claim-v1\x00"
SALT_BYTES = 32
KIND = "claim"
_DETAIL = re.compile(r"commitment ([0-9a-f]{64})")
#: an opening larger than this is refused before parsing (one STIX object and a ledger entry)
MAX_OPENING = 1024 * 1024


class ClaimError(ValidationError):
    """A claim or its opening does not hold (forged, altered, or malformed)."""


class RevealRefused(DetenteError):
    """The release policy does not let this claim be revealed to that partner as committed."""


#: handling, not content: a claim made while an object was held back (TLP:RED) is revealed
#: once a later version may be released — re-marked, hence re-versioned, same content
HANDLING = frozenset({"modified", "object_marking_refs", "granular_markings"})


def canonical(obj: Any) -> bytes:
    """The committed bytes of one STIX object: its content without its handling
    (``modified`` and markings), JSON with sorted keys, no whitespace."""
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k not in HANDLING}
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def commitment(salt: bytes, obj: Any) -> bytes:
    if len(salt) != SALT_BYTES:
        raise ClaimError(f"a claim's salt is {SALT_BYTES} bytes, not {len(salt)}")
    return hashlib.sha256(TAG + salt + canonical(obj)).digest()


def claim_entry(digest: bytes, time: datetime) -> Entry:
    """The ledger entry of a claim: the commitment and nothing else (no id, no partner)."""
    return Entry(kind=KIND, time=time, detail=f"commitment {digest.hex()}")


@dataclass(frozen=True)
class Opening:
    """What a reveal sends: the object as committed, the salt, and where the claim sits."""

    object: dict[str, Any]
    salt: bytes
    index: int
    entry: bytes  # the claim entry's canonical JSON (its leaf hash is in the log)

    def to_json(self) -> dict[str, Any]:
        return {"object": self.object, "salt": self.salt.hex(), "index": self.index,
                "entry": self.entry.decode()}

    @classmethod
    def from_bytes(cls, body: bytes) -> Opening:
        if len(body) > MAX_OPENING:
            raise ClaimError(f"a claim opening is at most {MAX_OPENING} bytes")
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ClaimError("the claim opening is not JSON") from None
        if not isinstance(doc, dict) or set(doc) != {"object", "salt", "index", "entry"}:
            raise ClaimError('a claim opening is {"object", "salt", "index", "entry"}')
        obj, salt, index, entry = doc["object"], doc["salt"], doc["index"], doc["entry"]
        if not isinstance(obj, dict):
            raise ClaimError("the opening's object is not a JSON object")
        if not isinstance(salt, str) or not re.fullmatch(r"[0-9a-f]{64}", salt):
            raise ClaimError("the opening's salt is not 32 bytes of lower-case hex")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise ClaimError("the opening's index is not a leaf index")
        if not isinstance(entry, str):
            raise ClaimError("the opening's entry is not the claim entry's JSON")
        return cls(obj, bytes.fromhex(salt), index, entry.encode())


def check_opening(opening: Opening) -> tuple[Entry, bytes]:
    """The claim entry and the commitment, if the opening opens that entry's commitment."""
    try:
        entry = Entry.from_json(opening.entry)
    except (EntryError, ValueError) as exc:
        raise ClaimError(f"the opening's entry is not a ledger entry: {exc}") from None
    if entry.kind != KIND or entry.partner or entry.object_id:
        raise ClaimError("the opening's entry is not a claim")
    m = _DETAIL.fullmatch(entry.detail or "")
    if m is None:
        raise ClaimError("the claim entry carries no commitment")
    digest = commitment(opening.salt, opening.object)
    if digest.hex() != m.group(1):
        raise ClaimError("the object and salt do not open the claim's commitment: the "
                         "content differs from what was claimed")
    return entry, digest
