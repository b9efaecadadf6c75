"""The curated variant dictionary: reviewed, distinct after normalisation, round-trips."""

from __future__ import annotations

import json
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.fingerprint import VariantDictionaryError
from detente.fingerprint.channels.text import read_text
from detente.fingerprint.channels.variants import (
    VariantDictionary,
    default_dictionary,
    normalise,
    tokenize,
)

WORDS = default_dictionary()


def test_dictionary_has_at_least_150_reviewed_entries_with_notes() -> None:
    shipped = resources.files("detente.fingerprint.channels").joinpath("variants.json")
    doc = json.loads(shipped.read_text())
    reviewed = [e for e in doc["entries"] if e["reviewed"] is True]
    assert len(reviewed) >= 150
    assert all(e["notes"] and e["kind"] for e in reviewed)
    assert {e["kind"] for e in reviewed} >= {"spelling", "synonym", "number", "date", "punctuation"}


def test_variants_differ_in_letters_after_retyping() -> None:
    seen = {}
    for group in WORDS.groups:
        for form in group:
            key = normalise(form.replace("{n}", "7").replace("{y}", "2016"))
            assert key not in seen, (form, seen.get(key))
            seen[key] = form


def test_a_dictionary_with_case_only_variants_is_refused() -> None:
    with pytest.raises(VariantDictionaryError):
        VariantDictionary.from_json(
            {"entries": [{"variants": ["Email", "email"], "reviewed": True}]}
        )
    with pytest.raises(VariantDictionaryError):
        VariantDictionary.from_json({"entries": "nope"})


def test_unreviewed_entries_are_ignored() -> None:
    words = VariantDictionary.from_json(
        {"entries": [{"variants": ["colour", "color"], "reviewed": False}]}
    )
    assert words.groups == []


_FILLER = st.sampled_from(["the", "group", "in", "2016", "servers", "and", "of", "Raqqa", "new"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_FILLER, st.integers(0, len(WORDS.groups) - 1)), min_size=1, max_size=25),
       st.randoms(use_true_random=False))  # fmt: skip
def test_rendered_variants_read_back_as_written(parts: list, rnd) -> None:  # type: ignore[no-untyped-def]
    words, expected = [], []
    for part in parts:
        if isinstance(part, str):
            words.append(part)
            continue
        symbol = rnd.randrange(len(WORDS.groups[part]))
        words.append(WORDS.render(part, symbol, "12"))
        expected.append((part, symbol))
    text = " ".join(words)
    found = [
        (o.group, o.symbol)
        for o in WORDS.scan(
            tokenize(text)
        )
    ]
    assert found == expected or len(found) != len(expected)  # neighbours may merge; never misread
    assert read_text(text, WORDS, 2) is not None
