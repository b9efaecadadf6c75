"""The derivation's fast paths give exactly what the plain definitions give.

Views are derived again on every read (see ``test_fp_stable``), so the keyed functions,
the variant scan and the embed loop take shortcuts; each shortcut is checked here against
the definition it replaces, on inputs chosen to reach its edges.
"""

from __future__ import annotations

import hmac
import math
import random

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fingerprint.fp_fixtures import SECRET, world

from detente.fingerprint import Fingerprinter
from detente.fingerprint.channels import lists
from detente.fingerprint.channels.variants import _TOKEN, default_dictionary, norms, tokenize
from detente.fingerprint.keyed import bias_vector, draw_symbol, keyed_bytes, keyed_uniforms

WORDS = default_dictionary()


def _reference_bytes(secret: bytes, label: str, *parts: str) -> bytes:
    message = b"detente/fingerprint/v1\x00" + label.encode() + b"\x00" + "\x00".join(parts).encode()
    return hmac.new(secret, message, "sha256").digest()


def _reference_uniforms(secret: bytes, count: int, label: str, *parts: str) -> list[float]:
    out: list[float] = []
    block = 0
    while len(out) < count:
        raw = _reference_bytes(secret, label, *parts, str(block))
        out += [(int.from_bytes(raw[k : k + 8], "big") + 0.5) / 2.0**64 for k in range(0, 32, 8)]
        block += 1
    return out[:count]


def _reference_bias(secret: bytes, position: str, q: int, cutoff: float) -> tuple[float, ...]:
    u = _reference_uniforms(secret, q + (q % 2), "bias", position)
    normals: list[float] = []
    for k in range(0, len(u), 2):
        radius = math.sqrt(-2.0 * math.log(u[k]))
        normals += [radius * math.cos(2.0 * math.pi * u[k + 1]),
                    radius * math.sin(2.0 * math.pi * u[k + 1])]
    gammas = [z * z for z in normals[:q]]
    total = sum(gammas) or 1.0
    return tuple((1.0 - cutoff) * g / total + cutoff / q for g in gammas)


def test_keyed_bytes_is_hmac_sha256_for_every_key_length() -> None:
    rng = random.Random(5)
    for size in (16, 32, 63, 64, 65, 127, 200):  # a key longer than a block is hashed first
        secret = rng.randbytes(size)
        for label, parts in (("symbol", ("p", "b", "0")), ("x", ()), ("é", ("ü\x00", ""))):
            assert keyed_bytes(secret, label, *parts) == _reference_bytes(secret, label, *parts)


def test_uniforms_laws_and_draws_equal_their_definitions() -> None:
    rng = random.Random(9)
    for _ in range(3000):
        secret, position = rng.randbytes(32), rng.randbytes(8).hex()
        q = rng.choice([2, 2, 2, 3, 4, 5, 8])
        for count in (1, 2, 3, 4, 5, 9):
            assert keyed_uniforms(secret, count, "l", position) == \
                _reference_uniforms(secret, count, "l", position)
        law = bias_vector(secret, position, q, 0.1, 32)
        assert law == _reference_bias(secret, position, q, 0.1)
        (u,) = _reference_uniforms(secret, 1, "symbol", position, "b")
        expected = next((k for k, c in enumerate(_cumulative(law)) if u < c), q - 1)
        assert draw_symbol(secret, position, "b", law) == expected


def _cumulative(law: tuple[float, ...]) -> list[float]:
    acc, out = 0.0, []
    for p in law:
        acc += p
        out.append(acc)
    return out


_PIECES = sorted({tok for form in WORDS.forms for tok in form.pattern} - {"{n}", "{y}"})


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(_PIECES), st.sampled_from(
    ["the", "of", "a", "7", "2016", "12a", "²", "%", "x"])), max_size=14))
def test_the_quick_no_variant_test_never_hides_one(tokens: list[str]) -> None:
    """Texts made of the dictionary's own words (and numbers): the prefiltered scan finds
    exactly what the full scan finds."""
    assert WORDS.matches(tokens) == WORDS._matches(tokens)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="abcXYZ09 _\t\n\x0b\x1c.,'%&$+@#-é€²", max_size=40))
def test_norms_are_the_tokens_norms(text: str) -> None:
    assert norms(text) == [t.norm for t in tokenize(text)]
    if text.isascii():
        assert norms(text) == _TOKEN.findall(text.lower())


def test_string_handles_are_the_content_digest() -> None:
    from detente.fingerprint.channels.slots import canonical_json
    from detente.fingerprint.keyed import plain_hex

    for element in ("c2", "x" * 300, {"source_name": "a"}, 7):
        expected = plain_hex(canonical_json(element), length=12)
        assert lists.handle(element) == expected
        assert lists.handle(element) == expected  # again: from the cache for short strings


def test_embed_without_copy_marks_the_given_view_into_the_same_bytes() -> None:
    w = world()
    fresh = Fingerprinter(SECRET)
    for obj in w.objects:
        key = f"{obj['id']}|{obj.get('modified') or obj.get('created')}"
        before = orjson.dumps(obj)
        copied = fresh.embed(obj, "partner-00", object_key=key)
        assert orjson.dumps(obj) == before  # the default copies: the input is untouched
        mine = orjson.loads(before)
        given_away = fresh.embed(mine, "partner-00", object_key=key, copy=False)
        assert given_away.view is mine
        assert orjson.dumps(given_away.view) == orjson.dumps(copied.view)
        assert given_away.record == copied.record


def test_embed_of_the_bytes_a_view_was_parsed_from_is_the_same_embed() -> None:
    """``encoded``: positions cached by the digest of the view's bytes give what the
    view's own encoding gives — the same bytes and record, for every partner, however the
    view was written (key order, spacing) — and are found again for the next partner."""
    w = world()
    plain, by_bytes = Fingerprinter(SECRET), Fingerprinter(SECRET)
    for obj in w.objects:
        key = f"{obj['id']}|{obj.get('modified') or obj.get('created')}"
        encodings = [orjson.dumps(obj), orjson.dumps(obj, option=orjson.OPT_SORT_KEYS),
                     orjson.dumps(obj, option=orjson.OPT_INDENT_2)]
        for partner in ("partner-00", "partner-01"):
            for data in encodings:
                expected = plain.embed(orjson.loads(data), partner, object_key=key)
                got = by_bytes.embed(orjson.loads(data), partner, object_key=key,
                                     copy=False, encoded=data)
                assert orjson.dumps(got.view) == orjson.dumps(expected.view)
                assert got.record == expected.record
    planned = len(by_bytes._plans)
    obj = w.objects[0]
    data = orjson.dumps(obj)
    by_bytes.embed(orjson.loads(data), "partner-02", copy=False, encoded=data,
                   object_key=f"{obj['id']}|{obj.get('modified') or obj.get('created')}")
    assert len(by_bytes._plans) == planned  # found again: no new plan
