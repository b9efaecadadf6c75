"""The Golomb-coded set: exact round trip, the stated false-positive rate, hostile bytes."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.deconflict import ProtocolError
from detente.deconflict._gcs import GolombSet, rice_bits


@settings(max_examples=100, deadline=None)
@given(st.data(), st.integers(1, 40))
def test_round_trip_is_exact(data: st.DataObject, bits: int) -> None:
    n = data.draw(st.integers(0, 200))
    values = data.draw(st.lists(st.integers(0, (max(1, n) << bits) - 1), min_size=n, max_size=n))
    built = GolombSet.build(values, bits)
    parsed = GolombSet(built.count, built.bits, built.quotients, built.remainders)
    assert parsed.values() == sorted(values)


def test_false_positive_rate_is_as_stated() -> None:
    rng = random.Random(1)
    bits = 6  # 1/64 per lookup
    members = rng.sample(range(1000 << bits), 1000)
    gcs = GolombSet.build(members, bits)
    present = set(gcs.values())
    assert present == set(members)  # exact; false positives come from hashing into the range
    probes = [rng.randrange(gcs.modulus) for _ in range(64_000)]  # stand-ins for hashed items
    hits = sum(p in present for p in probes)
    assert 800 <= hits <= 1200  # expected 1000 = 64 000 / 64; the bound is ~6 sigma
    assert rice_bits(1 << 20, 1e-9) == 50


def test_size_is_about_bits_plus_two_per_element() -> None:
    rng = random.Random(2)
    gcs = GolombSet.build([rng.randrange(10_000 << 30) for _ in range(10_000)], 30)
    per_element = 8 * (len(gcs.quotients) + len(gcs.remainders)) / 10_000
    assert 31.5 < per_element < 32.5


@pytest.mark.parametrize(
    ("count", "bits", "q", "r", "message"),
    [
        (2, 0, b"\x00", b"", "width"),
        (2, 8, b"\x00", b"\x01", "remainder bytes"),
        (9, 8, b"\x00", b"\x00" * 9, "truncated"),
        (2, 8, b"\xff", b"\x00\x00", "exactly the count"),
        (1, 8, b"\x10", b"\x00", "exactly the count"),
        (1, 8, b"\x00\x00", b"\x00", "exactly the count"),
        (1, 4, b"\xfe", b"\x00", "outside the set's range"),
        (1, 4, b"\xe0", b"\x00", "outside the set's range"),
        (1, 4, b"\x00", b"\x08", "padding"),
    ],
)
def test_hostile_streams_are_refused(
    count: int, bits: int, q: bytes, r: bytes, message: str
) -> None:
    with pytest.raises(ProtocolError, match=message):
        GolombSet(count, bits, q, r).values()
