"""The fast pattern path answers exactly as stix2-patterns whenever it answers.

Patterns are generated from the grammar (valid ones) and then damaged (invalid ones: a
character dropped, inserted or swapped, lowercase keywords, unknown operators, bad hashes,
bad quotes, duplicated qualifiers...).  For each, when ``fast_check`` says ACCEPT or REJECT,
``run_validator(pattern, stix_version="2.1")`` must agree.  An exception inside stix2-patterns
(it crashes on "" and on some index steps) counts as a refusal.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from stix2patterns.validator import run_validator

from detente.stix.patterns import Verdict, fast_check, simple_comparisons

MD5 = "d41d8cd98f00b204e9800998ecf8427e"
SHA1 = "da39a3ee5e6b4b0d3255bfef95601890afd80709"
SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def reference_accepts(pattern: str) -> bool:
    try:
        return not run_validator(pattern, stix_version="2.1")
    except Exception:
        return False


def assert_equivalent(pattern: str) -> Verdict:
    verdict, reason = fast_check(pattern)
    if verdict is not Verdict.UNKNOWN:
        expected = reference_accepts(pattern)
        assert (verdict is Verdict.ACCEPT) == expected, (pattern, verdict, reason)
    return verdict


types = st.sampled_from(
    ["file", "ipv4-addr", "domain-name", "url", "email-message", "x-acme-thing", "process",
     "network-traffic", "a", "AND", "true", "x--y", "ipv4-", "_t", "9file", "File"]
)  # fmt: skip
paths = st.sampled_from(
    ["value", "name", "size", "hashes.MD5", "hashes.md5", "hashes.'SHA-256'", "hashes.SHA256",
     "hashes.'SHA-1'", "hashes.'sha-1'", "hashes.SSDEEP", "hashes.'MD6'", "hashes.WHIRLPOOL",
     "hashes.'x'", "body_multipart[*].body_raw_ref.name", "hashes[*]", "x.hashes.MD5",
     "extensions.'windows-pebinary-ext'.imphash", "'quoted name'", "to_refs[*].value",
     "na-me", "x[0]", "x[-1]", "AND", "true", "x.", "x..y", "'a\\'b'", "x[*", "x[]"]
)  # fmt: skip
strings = st.sampled_from(
    ["'198.51.100.1'", "'a\\'b'", "'a\\\\b'", "'a\\b'", "'unterminated", "'it''s'", "''",
     f"'{MD5}'", f"'{MD5[:-1]}'", f"'{SHA1}'", f"'{SHA256}'", f"'{SHA256.upper()}'",
     f"'{SHA256}0'", "'^evil.*\\\\.exe$'", "'%.ru'", "'198.51.100.0/24'", "'é ünïcode'"]
)  # fmt: skip
numbers = st.sampled_from(
    ["0", "1", "42", "+7", "-3", "-0", "1.5", "-.5", "+.25", "01", "1.", "1e5", "- 3", "12ab"]
)  # fmt: skip
others = st.sampled_from(
    ["true", "false", "TRUE", "h'00ff'", "h'0f0'", "b'AAAA'", "b'AAA='", "b'AA=='", "b'A='",
     "t'2020-01-01T00:00:00Z'", "t'2020-01-01T00:00:00.123Z'", "t'2020-13-01T00:00:00Z'",
     "t'2020-01-01T00:00:00'", "t'2020-01-01 00:00:00Z'", "x"]
)  # fmt: skip
values = st.one_of(strings, numbers, others)
ops = st.sampled_from(
    ["=", "==", "!=", "<>", ">", "<", ">=", "<=", "LIKE", "MATCHES", "ISSUBSET",
     "ISSUPERSET", "NOT =", "NOT LIKE", "like", "=>", "===", "CONTAINS", "!", "NOT"]
)  # fmt: skip


# Only well-formed pieces: most patterns built from these are valid (hashes aside).
good_types = st.sampled_from(["file", "ipv4-addr", "domain-name", "url", "x-acme-thing"])
good_paths = st.sampled_from(
    ["value", "name", "hashes.MD5", "hashes.'SHA-256'", "hashes.'SHA-1'", "to_refs[*].value",
     "extensions.'windows-pebinary-ext'.imphash", "'quoted name'", "hashes.'x'"]
)  # fmt: skip
good_values = st.sampled_from(
    ["'198.51.100.1'", "'a\\'b'", "'a\\\\b'", f"'{MD5}'", f"'{SHA1}'", f"'{SHA256}'", "42",
     "-3", "1.5", "true", "h'00ff'", "b'AAA='", "t'2020-01-01T00:00:00.123Z'"]
)  # fmt: skip
good_ops = st.sampled_from(["=", "!=", ">", "<=", "LIKE", "MATCHES", "NOT =", "ISSUBSET"])


@st.composite
def comparisons(draw: st.DrawFn, good: bool = False) -> str:
    t, p, v, o = (good_types, good_paths, good_values, good_ops) if good else (
        types, paths, values, ops)
    if draw(st.integers(0, 9)) == 0:
        return f"EXISTS {draw(t)}:{draw(p)}"
    op = draw(o)
    if draw(st.integers(0, 7)) == 0:
        items = draw(st.lists(v, max_size=3))
        value = "(" + ", ".join(items) + ")"
        op = draw(st.sampled_from(["IN", "NOT IN"] if good else ["IN", "NOT IN", "in", "="]))
    else:
        value = draw(v)
    sep = draw(st.sampled_from([" ", " ", "", "\t", "\n"]))
    return f"{draw(t)}:{draw(p)}{sep}{op}{sep}{value}"


@st.composite
def comparison_expressions(draw: st.DrawFn, depth: int = 0, good: bool = False) -> str:
    parts = [draw(comparisons(good))]
    joiners = [" AND ", " OR "] if good else [" AND ", " OR ", " and ", " or ", " ", " FOLLOWEDBY "]
    for _ in range(draw(st.integers(0, 2))):
        parts.append(draw(st.sampled_from(joiners)))
        if depth < 1 and draw(st.booleans()):
            parts.append("(" + draw(comparison_expressions(depth + 1, good)) + ")")
        else:
            parts.append(draw(comparisons(good)))
    return "".join(parts)


qualifiers = st.sampled_from(
    [" WITHIN 5 SECONDS", " WITHIN 1.5 SECONDS", " WITHIN -5 SECONDS", " WITHIN 5",
     " REPEATS 3 TIMES", " REPEATS 0 TIMES", " REPEATS 2.5 TIMES", " within 5 seconds",
     " START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
     " START t'2016-06-01T00:00:00Z'", " START '2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'"]
)  # fmt: skip

good_qualifiers = st.sampled_from(
    [" WITHIN 5 SECONDS", " REPEATS 3 TIMES",
     " START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'"]
)  # fmt: skip


@st.composite
def observations(draw: st.DrawFn, depth: int = 0, good: bool = False) -> str:
    if depth < 1 and draw(st.integers(0, 4)) == 0:
        inner = "(" + draw(observation_expressions(depth + 1, good)) + ")"
    else:
        inner = "[" + draw(comparison_expressions(0, good)) + "]"
    quals = good_qualifiers if good else qualifiers
    return inner + "".join(draw(st.lists(quals, max_size=2)))


@st.composite
def observation_expressions(draw: st.DrawFn, depth: int = 0, good: bool = False) -> str:
    parts = [draw(observations(depth, good))]
    joiners = [" AND ", " OR ", " FOLLOWEDBY "] + ([] if good else [" followedby "])
    for _ in range(draw(st.integers(0, 2))):
        parts.append(draw(st.sampled_from(joiners)))
        parts.append(draw(observations(depth, good)))
    return "".join(parts)


DAMAGE = [*"[]()'\\:.,=<>!* -+\tAaZz09_", "AND", "OR", " ", "''", "\\'"]


@st.composite
def damaged(draw: st.DrawFn) -> str:
    pattern = draw(observation_expressions(0, draw(st.booleans())))
    for _ in range(draw(st.integers(0, 2))):
        if not pattern:
            break
        i = draw(st.integers(0, len(pattern) - 1))
        action = draw(st.sampled_from(["drop", "insert", "swap"]))
        if action == "drop":
            pattern = pattern[:i] + pattern[i + 1 :]
        elif action == "insert":
            pattern = pattern[:i] + draw(st.sampled_from(DAMAGE)) + pattern[i:]
        elif i + 1 < len(pattern):
            pattern = pattern[:i] + pattern[i + 1] + pattern[i] + pattern[i + 2 :]
    return pattern


SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(observation_expressions())
@example("[ipv4-addr:value = '198.51.100.1']")
@example(f"[file:hashes.'SHA-256' = '{SHA256}']")
@example(f"[file:hashes.MD5 = '{MD5[:-1]}']")
@example("[a:b = 1] WITHIN 5 SECONDS WITHIN 6 SECONDS")
@example("([a:b = 1] WITHIN 5 SECONDS) WITHIN 6 SECONDS")
@example("")
def test_fast_path_agrees_on_grammar_generated_patterns(pattern: str) -> None:
    assert_equivalent(pattern)


@SETTINGS
@given(observation_expressions(0, True))
def test_fast_path_agrees_on_well_formed_patterns(pattern: str) -> None:
    assert_equivalent(pattern)


@SETTINGS
@given(damaged())
def test_fast_path_agrees_on_damaged_patterns(pattern: str) -> None:
    assert_equivalent(pattern)


@SETTINGS
@given(st.text(alphabet="[]()':.=<> -_abfilexAND0159\\\t", max_size=30))
def test_fast_path_agrees_on_noise(pattern: str) -> None:
    assert_equivalent(pattern)


def test_the_fast_path_answers_for_the_common_forms() -> None:
    common = [
        "[ipv4-addr:value = '198.51.100.1']",
        f"[file:hashes.'SHA-256' = '{SHA256}']",
        f"[file:hashes.MD5 = '{MD5}' OR file:name = 'evil.exe']",
        "[domain-name:value = 'evil.example' AND domain-name:value != 'good.example']",
        "[url:value LIKE 'http://%.example/']"
        " FOLLOWEDBY [ipv4-addr:value IN ('1.2.3.4', '5.6.7.8')]",
        "[email-message:body_multipart[*].body_raw_ref.name MATCHES '^Final.+\\\\.exe$']",
        "[ipv4-addr:value ISSUBSET '198.51.100.0/24'] WITHIN 300 SECONDS",
        "[network-traffic:dst_port >= 1024 AND network-traffic:is_active = true] REPEATS 5 TIMES",
        "[file:size > 1.5] START t'2016-06-01T00:00:00Z' STOP t'2016-07-01T00:00:00Z'",
    ]
    for pattern in common:
        assert assert_equivalent(pattern) is Verdict.ACCEPT, pattern


@pytest.mark.parametrize(
    "pattern",
    [
        "[ipv4-addr:value = '198.51.100.1' and ipv4-addr:value = '1.1.1.1']",  # lowercase and
        "[ipv4-addr:value = '198.51.100.1'",  # unbalanced
        "[ipv4-addr:value = 198.51.100.1]",  # unquoted string
        "[ipv4-addr:value CONTAINS '1']",  # unknown operator
        "[ipv4-addr:value = ]",  # missing value
        "[file:na-me = 'x']",  # hyphen in a property name
        f"[file:hashes.MD5 = '{SHA256}']",  # hash of the wrong length
        "ipv4-addr:value = '1.2.3.4'",  # no brackets
        "[a:b = 1] REPEATS 2 TIMES REPEATS 3 TIMES",  # duplicate qualifier
    ],
)
def test_the_fast_path_refuses_the_usual_mistakes(pattern: str) -> None:
    assert assert_equivalent(pattern) is Verdict.REJECT


def test_simple_comparisons_canonicalise_observables() -> None:
    pattern = (
        f"[file:hashes.sha256 = '{SHA256.upper()}' OR ipv4-addr:value = '198.51.100.1']"
        " FOLLOWEDBY [domain-name:value = 'it\\'s.example'] WITHIN 60 SECONDS"
    )
    assert simple_comparisons(pattern) == [
        ("file", "hashes.'SHA-256'", SHA256),
        ("ipv4-addr", "value", "198.51.100.1"),
        ("domain-name", "value", "it's.example"),
    ]
    assert simple_comparisons("[file:hashes.'SHA-1' = '" + SHA1 + "']") == [
        ("file", "hashes.'SHA-1'", SHA1)
    ]
    assert simple_comparisons("[ipv4-addr:value != '198.51.100.1']") is None
    assert simple_comparisons("[ipv4-addr:value = '198.51.100.1'") is None
    assert simple_comparisons("[file:name LIKE 'x%']") is None
