"""The memo of recent pattern parses changes no answer: the memoised functions answer as
the unmemoised ones across generation swaps, and callers cannot corrupt what it holds."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from detente.stix import patterns
from detente.stix.patterns import check_pattern, fast_check, simple_comparisons
from detente.stix.timestamps import normalise


def _pattern(i: int) -> str:
    kinds = [f"[ipv4-addr:value = '10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}']",
             f"[file:hashes.'SHA-256' = '{i:064x}']",
             f"[domain-name:value = 'c2-{i}.example.net'] OR [url:value = 'http://x/{i}']",
             f"[file:hashes.MD5 = '{i:032X}' AND file:name = 'a\\\\b{i}']"]
    return kinds[i % len(kinds)]


def test_memo_answers_as_the_parser_across_generations() -> None:
    n = 2 * patterns._PARSED.size + 100  # past two generation swaps
    for i in range(n):
        p = _pattern(i)
        first = simple_comparisons(p)
        assert first == patterns._simple(p)
        assert simple_comparisons(p) == first  # from the memo now
        assert fast_check(p) == (patterns.Verdict.ACCEPT, None)
    assert len(patterns._PARSED.new) <= patterns._PARSED.size


def test_callers_get_their_own_lists() -> None:
    p = "[ipv4-addr:value = '192.0.2.1']"
    got = simple_comparisons(p)
    assert got == [("ipv4-addr", "value", "192.0.2.1")]
    assert got is not None
    got.append(("x", "y", "z"))
    assert simple_comparisons(p) == [("ipv4-addr", "value", "192.0.2.1")]


def test_invalid_patterns_are_not_remembered_as_valid() -> None:
    bad = "[file:hashes.'SHA-256' = 'not-a-hash']"
    for _ in range(2):
        assert fast_check(bad)[0] is patterns.Verdict.REJECT
        assert simple_comparisons(bad) is None
    try:
        check_pattern(bad, where="indicator")
    except Exception as exc:  # PatternError, naming the fault
        assert "not a valid STIX 2.1 pattern" in str(exc)
    else:
        raise AssertionError("an invalid pattern was accepted")


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
       st.integers(0, 9))
def test_normalise_answers_as_strftime(moment: datetime, digits: int) -> None:
    frac = f"{moment.microsecond:06d}{moment.microsecond % 1000:03d}"[:digits]
    text = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}" + (f".{frac}" if digits else "") + "Z"
    # what normalise printed before its fast path: strftime of the parsed moment
    expected = moment.replace(tzinfo=UTC).strftime("%Y-%m-%dT%H:%M:%S") + "." \
        + frac.ljust(9, "0") + "Z"
    assert normalise(text) == expected
