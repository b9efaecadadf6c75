"""Entries and keys shared by the ledger tests."""

from __future__ import annotations

from nacl.signing import SigningKey

from detente.ledger import Entry

PARTNERS = [
    "identity--00000000-0000-4000-8000-00000000000a",
    "identity--00000000-0000-4000-8000-00000000000b",
    "identity--00000000-0000-4000-8000-00000000000c",
]


def make_entry(i: int) -> Entry:
    return Entry(
        kind="release",
        time="2025-01-01T00:00:00.000Z",
        partner=PARTNERS[i % len(PARTNERS)],
        object_id=f"indicator--00000000-0000-4000-8000-{i:012d}",
        object_version="2025-01-01T00:00:00.000Z",
        view_hash=f"{i:064x}",
    )


def key(seed: int) -> SigningKey:
    return SigningKey(bytes([seed]) * 32)
