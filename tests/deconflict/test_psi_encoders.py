"""Item encoders: every spelling of one thing becomes one item; places-and-times never miss."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.deconflict import (
    EncodingError,
    Event,
    Item,
    PlaceTimeGrid,
    conflicts,
    from_pattern,
    from_sco,
    measure_encoding,
    name,
    observable,
)
from detente.deconflict.places import _offset


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        ("ipv4-addr", " 192.168.001.010 ".replace("001", "1").replace("010", "10"),
         [Item("ipv4-addr", "192.168.1.10")]),
        ("ipv6-addr", "2001:DB8:0:0::1", [Item("ipv6-addr", "2001:db8::1")]),
        ("ipv6-addr", "::ffff:10.0.0.1", [Item("ipv4-addr", "10.0.0.1")]),
        ("ipv4-addr", "10.0.0.9/30", [Item("ipv4-addr", f"10.0.0.{i}") for i in range(8, 12)]),
        ("ipv4-addr", "10.1.0.0/16", [Item("ipv4-net", "10.1.0.0/16")]),
        ("ipv4-addr", "10.1.2.3/16", [Item("ipv4-net", "10.1.0.0/16")]),
        ("ipv6-addr", "2001:db8::/32", [Item("ipv6-net", "2001:db8::/32")]),
        ("domain-name", "WWW.Example.COM.", [Item("domain-name", "www.example.com")]),
        ("domain-name", "bücher.example", [Item("domain-name", "xn--bcher-kva.example")]),
        ("url", "HTTP://Example.COM:80", [Item("url", "http://example.com/")]),
        ("url", "https://EXAMPLE.com:8443/a/B?q=1#frag",
         [Item("url", "https://example.com:8443/a/B?q=1")]),
        ("email-addr", "Ops@Example.ORG", [Item("email-addr", "ops@example.org")]),
        ("file:sha256", "A" * 64, [Item("file:SHA-256", "a" * 64)]),
    ],
)  # fmt: skip
def test_observables_are_canonical(kind: str, value: str, expected: list[Item]) -> None:
    assert list(observable(kind, value)) == expected


def test_a_small_block_matches_an_address_inside_it() -> None:
    block = set(observable("ipv4-addr", "203.0.113.0/24"))
    assert len(block) == 256
    assert observable("ipv4-addr", "203.0.113.77")[0] in block
    small_v6 = set(observable("ipv6-addr", "2001:db8::/120"))
    assert observable("ipv6-addr", "2001:db8::17")[0] in small_v6


def test_kinds_are_domain_separated() -> None:
    domain = observable("domain-name", "1.2.3.4")[0]
    address = observable("ipv4-addr", "1.2.3.4")[0]
    assert domain.value == address.value and domain.encoded() != address.encoded()


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("ipv4-addr", "300.1.1.1"),
        ("ipv6-addr", "not-an-address"),
        ("url", "no scheme here"),
        ("email-addr", "nobody"),
        ("file:MD5", "xyz"),
        ("file:CRC32", "00"),
        ("mutex", "Global\\x"),
        ("domain-name", ""),
    ],
)
def test_bad_observables_raise_a_named_encoding_error(kind: str, value: str) -> None:
    with pytest.raises(EncodingError):
        observable(kind, value)


def test_scos_and_patterns() -> None:
    assert from_sco({"type": "ipv4-addr", "value": "8.8.8.8"}) == (Item("ipv4-addr", "8.8.8.8"),)
    sha = "b" * 64
    assert from_sco({"type": "file", "hashes": {"SHA-256": sha.upper(), "MD5": "c" * 32}}) == (
        Item("file:MD5", "c" * 32), Item("file:SHA-256", sha),
    )  # fmt: skip
    pattern = "[domain-name:value = 'Evil.Example'] OR [ipv4-addr:value = '10.0.0.1']"
    assert from_pattern(pattern) == (
        Item("domain-name", "evil.example"), Item("ipv4-addr", "10.0.0.1"),
    )  # fmt: skip
    assert from_pattern(f"[file:hashes.'SHA-256' = '{sha}']") == (Item("file:SHA-256", sha),)
    assert from_pattern("[url:value = 'http://a.example' OR url:value = 'http://b.example']") == (
        Item("url", "http://a.example/"), Item("url", "http://b.example/"),
    )  # fmt: skip


@pytest.mark.parametrize(
    "pattern",
    [
        "[ipv4-addr:value = '1.2.3.4' AND ipv4-addr:value = '1.2.3.5']",
        "[ipv4-addr:value MATCHES '^1']",
        "[ipv4-addr:value = '1.2.3.4'] FOLLOWEDBY [ipv4-addr:value = '1.2.3.5']",
        "ipv4-addr:value = '1.2.3.4'",
        "[file:value = 'x']",
    ],
)
def test_patterns_beyond_simple_equality_are_refused(pattern: str) -> None:
    with pytest.raises(EncodingError):
        from_pattern(pattern)


def test_names_are_normalised_and_case_folded() -> None:
    assert name("threat-actor", "  Islamic   State ") == name("threat-actor", "islamic state")
    assert name("person", "STRASSE") == name("person", "straße")  # case folding, not lower()
    assert name("organization", "ＡＣＭＥ") == name("organization", "acme")  # NFKC
    with pytest.raises(EncodingError):
        name("malware", "x")
    with pytest.raises(EncodingError):
        name("person", "   ")


T0 = datetime(2025, 11, 13, 21, 0, tzinfo=UTC)


@settings(max_examples=150, deadline=None)
@given(
    lat=st.floats(-70, 70),
    lon=st.floats(-179, 179),
    ra=st.floats(0, 800),
    rb=st.floats(0, 800),
    fraction=st.floats(0, 1),
    bearing=st.floats(0, 2 * math.pi),
    shift=st.integers(-7200, 7200),
    resolution=st.sampled_from([7, 8, 9]),
)
def test_places_and_times_never_miss_a_true_conflict(
    lat: float, lon: float, ra: float, rb: float, fraction: float, bearing: float,
    shift: int, resolution: int,
) -> None:  # fmt: skip
    grid = PlaceTimeGrid(resolution=resolution, distance_m=300, bucket_s=1800, time_slack_s=600)
    # separation up to the conflict threshold, slightly inside to absorb float rounding
    sep = fraction * (ra + rb + grid.distance_m) * 0.999
    blat, blon = _offset(lat, lon, bearing, sep)
    a = Event(lat, lon, ra, T0, T0 + timedelta(minutes=45))
    b = Event(blat, blon, rb, T0 + timedelta(seconds=shift), T0 + timedelta(seconds=shift + 60))
    if conflicts(a, b, grid):
        assert set(a.items(grid)) & set(b.items(grid))


def test_measured_false_conflict_rate_with_no_misses() -> None:
    report = measure_encoding(PlaceTimeGrid(resolution=8, distance_m=500), trials=300)
    assert report.missed == 0 and report.true_conflicts > 0
    assert 0 < report.false_conflict_rate < 0.5  # coarse cells do over-report, boundedly


def test_grids_never_mix_and_bad_events_are_refused() -> None:
    e = Event(33.5, 36.3, 100, T0, T0 + timedelta(hours=1))
    assert not set(e.items(PlaceTimeGrid(8, 500))) & set(e.items(PlaceTimeGrid(8, 400)))
    with pytest.raises(EncodingError):
        Event(95, 0, 1, T0, T0)
    with pytest.raises(EncodingError):
        Event(0, 0, 1, T0, T0 - timedelta(1))
    with pytest.raises(EncodingError):
        Event(0, 0, 1, T0.replace(tzinfo=None), T0.replace(tzinfo=None))
    with pytest.raises(EncodingError, match="too many"):
        Event(0, 0, 50_000, T0, T0 + timedelta(days=30)).items(PlaceTimeGrid(9, 500))
