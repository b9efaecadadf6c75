"""The ledger's JSON wire format, encoded and decoded here and nowhere else.

What a node serves at ``/ledger/…`` and its partners read back: hashes and proofs as
standard base64 of 32-byte SHA-256 values; checkpoints as C2SP signed notes; each document
a JSON object.  Decoders take hostile input and raise :class:`ProofError` naming what was
wrong (never ``KeyError``/``ValueError``).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from detente.ledger.batch import batch_root
from detente.ledger.entry import Entry
from detente.ledger.errors import EntryError, ProofError
from detente.ledger.hashing import HASH_SIZE

__all__ = ["MAX_PROOF", "EntryRow", "batch_doc", "checkpoint_doc", "consistency_doc",
           "decode_hash", "decode_proof", "encode_hash", "entries_doc", "inclusion_doc",
           "read_batch", "read_consistency", "read_entries", "read_inclusion", "read_note"]

#: a proof in a tree of at most 2^64 leaves has at most 64 hashes (128 for consistency)
MAX_PROOF = 128


def encode_hash(value: bytes) -> str:
    return base64.b64encode(value).decode()


def decode_hash(value: Any, what: str) -> bytes:
    """One base64 32-byte hash."""
    if not isinstance(value, str):
        raise ProofError(f"{what} is not a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ProofError(f"{what} is not base64") from None
    if len(raw) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")
    return raw


def decode_proof(value: Any, what: str) -> list[bytes]:
    """A proof: a list of at most :data:`MAX_PROOF` base64 32-byte hashes."""
    if not isinstance(value, list) or len(value) > MAX_PROOF:
        raise ProofError(f"{what} is not a list of at most {MAX_PROOF} hashes")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ProofError(f"{what} element {i} is not a {HASH_SIZE}-byte hash")
        try:
            raw = base64.b64decode(item.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise ProofError(f"{what} element {i} is not base64") from None
        if len(raw) != HASH_SIZE:
            raise ProofError(f"{what} element {i} is not a {HASH_SIZE}-byte hash")
        out.append(raw)
    return out


# -- documents ---------------------------------------------------------------------------
def checkpoint_doc(origin: str, size: int, root: bytes, note: str,
                   witnesses: Sequence[str]) -> dict[str, Any]:
    return {"origin": origin, "size": size, "root": encode_hash(root), "note": note,
            "witnesses": list(witnesses)}


def read_note(doc: dict[str, Any], what: str) -> str:
    """The signed note of a checkpoint document (its signatures are checked by the caller)."""
    note = doc.get("note")
    if not isinstance(note, str):
        raise ProofError(f"{what} carries no checkpoint note")
    return note


def inclusion_doc(index: int, size: int, leaf_hash: bytes,
                  proof: Sequence[bytes]) -> dict[str, Any]:
    return {"index": index, "size": size, "leaf_hash": encode_hash(leaf_hash),
            "proof": [encode_hash(p) for p in proof]}


def read_inclusion(doc: dict[str, Any], index: int, size: int, what: str) -> list[bytes]:
    """The proof of an inclusion document, for exactly the leaf and size asked."""
    if doc.get("index") != index or doc.get("size") != size:
        raise ProofError(f"{what} answers for another leaf or size")
    return decode_proof(doc.get("proof"), what)


def consistency_doc(old: int, new: int, proof: Sequence[bytes]) -> dict[str, Any]:
    return {"old": old, "new": new, "proof": [encode_hash(p) for p in proof]}


def read_consistency(doc: dict[str, Any], old: int, new: int, what: str) -> list[bytes]:
    """The proof of a consistency document, for exactly the sizes asked."""
    if doc.get("old") != old or doc.get("new") != new:
        raise ProofError(f"{what} answers for other sizes")
    return decode_proof(doc.get("proof"), what)


@dataclass(frozen=True, slots=True)
class EntryRow:
    """One leaf as served: its index, its hash, and the entry's canonical JSON when the
    reader may see it (its own entries), else None."""

    index: int
    leaf_hash: bytes
    entry: str | None


def entries_doc(start: int, end: int, rows: Sequence[EntryRow], more: bool,
                next_start: int | None) -> dict[str, Any]:
    return {"start": start, "end": end,
            "entries": [{"index": r.index, "leaf_hash": encode_hash(r.leaf_hash),
                         "entry": r.entry} for r in rows],
            "more": more, "next": next_start}


def read_entries(doc: dict[str, Any], start: int, what: str) -> list[EntryRow]:
    """The rows of an entries page, which must begin at ``start`` and run in order."""
    rows = doc.get("entries")
    if not isinstance(rows, list) or not rows:
        raise ProofError(f"{what} sent no entries from leaf {start}")
    out = []
    for offset, row in enumerate(rows):
        at = start + offset
        if not isinstance(row, dict) or row.get("index") != at:
            raise ProofError(f"{what} sent leaves out of order at {at}")
        text = row.get("entry")
        if text is not None and not isinstance(text, str):
            raise ProofError(f"leaf {at} of {what} carries a malformed entry")
        out.append(EntryRow(at, decode_hash(row.get("leaf_hash"), f"leaf {at}"), text))
    return out


def batch_doc(index: int, entries: Sequence[Entry]) -> dict[str, Any]:
    """The release entries of the release batch at leaf ``index`` (its partner's only)."""
    return {"index": index, "entries": [e.canonical.decode() for e in entries]}


def read_batch(doc: dict[str, Any], index: int, batch: Entry, what: str) -> list[Entry]:
    """The release entries of ``batch`` (the batch entry at leaf ``index``, already proved
    in the log), checked against it: (1) each is a canonical ``release`` entry of the
    batch's partner and time, (2) there are ``batch_size`` of them, (3) they make the tree
    whose root is ``batch_root``."""
    rows = doc.get("entries")
    if doc.get("index") != index or not isinstance(rows, list):
        raise ProofError(f"{what} answers for another leaf, or sent no entries")
    out: list[Entry] = []
    for k, text in enumerate(rows):  # (1)
        if not isinstance(text, str):
            raise ProofError(f"release {k} of {what} is not an entry")
        try:
            entry = Entry.from_json(text.encode())
        except EntryError as exc:
            raise ProofError(f"release {k} of {what}: {exc.message}") from None
        if entry.kind != "release" or entry.partner != batch.partner or \
                entry.time != batch.time:
            raise ProofError(f"release {k} of {what} is not a release of this batch")
        out.append(entry)
    if len(out) != batch.batch_size:  # (2)
        raise ProofError(f"{what} holds {len(out)} releases, its entry says "
                         f"{batch.batch_size}")
    if batch_root([e.leaf_hash for e in out]).hex() != batch.batch_root:  # (3)
        raise ProofError(f"the releases of {what} do not make its batch root")
    return out
