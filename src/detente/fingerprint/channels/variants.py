"""The curated variant dictionary and the tokenizer the text channel reads with.

Hand-written: no library maps STIX prose to *reviewed*, meaning-preserving variants and
reads them back after re-typing.  Text is normalised (NFKC, case-folded, punctuation turned
into spaces, whitespace collapsed) before any matching, so a variant is only admitted if it
still differs from its siblings *in letters* after that normalisation.  ``{n}`` in a variant
stands for a number token, ``{y}`` for a year; the token is kept verbatim.

The dictionary is validated when loaded: every variant form is unique across the whole
dictionary, and no form sits inside a form of another group.  Because a substitution could
still, in rare contexts, shift how neighbouring words are scanned, the text channel re-reads
every text it writes and keeps only positions that read back exactly.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import pairwise
from typing import Any, NamedTuple

from detente.fingerprint.errors import VariantDictionaryError

_TOKEN = re.compile(r"[^\W_]+|[%&$€£+@#]")
_PLACEHOLDERS = {"{n}": re.compile(r"\d+"), "{y}": re.compile(r"(19|20)\d\d")}


class Token(NamedTuple):
    """A normalised token and where it sits in the original text (a named tuple: texts
    are tokenised for every view served, and a tuple is built several times faster)."""

    norm: str
    start: int
    end: int


@dataclass(frozen=True)
class Form:
    """One variant: its surface template and its normalised token pattern."""

    group: int
    index: int
    surface: str
    pattern: tuple[str, ...]


@dataclass(frozen=True)
class Occurrence:
    """A variant found in a text: which group, which variant, which tokens."""

    group: int
    symbol: int
    first: int
    last: int  # inclusive token index
    start: int
    end: int
    number: str | None


#: a variant found in normalised tokens: (form, first token, last token, number)
Match = tuple[Form, int, int, str | None]


def normalise(text: str) -> str:
    """Case-fold, drop accents' compatibility forms, punctuation to spaces."""
    return " ".join(t.norm for t in tokenize(text))


def norms(text: str) -> list[str]:
    """The normalised tokens of ``text`` alone (what :func:`tokenize` gives as ``norm``)."""
    if text.isascii():
        words = text.lower().split()
        if "".join(words).isalnum():  # letters and digits between spaces: the words
            return words
        return _TOKEN.findall(text.lower())
    return [t.norm for t in tokenize(text)]


def tokenize(text: str) -> list[Token]:
    """Normalised tokens with their spans in ``text``."""
    if text.isascii():  # NFKC leaves ASCII alone and folds it letter by letter
        low = text.lower()
        return [Token(low[m.start():m.end()], m.start(), m.end()) for m in _TOKEN.finditer(text)]
    folded = unicodedata.normalize("NFKC", text)
    if len(folded) != len(text):  # spans must index the original; fold per token instead
        return [Token(_fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    return [Token(_fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(folded)]


def _fold(token: str) -> str:
    return unicodedata.normalize("NFKC", token).casefold()


def _pattern(surface: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in re.split(r"(\{[ny]\})", surface):
        if part in _PLACEHOLDERS:
            out.append(part)
        else:
            out.extend(t.norm for t in tokenize(part))
    return tuple(out)


class VariantDictionary:
    """Reviewed variant groups, indexed for greedy longest-match scanning."""

    def __init__(self, groups: list[list[str]]) -> None:
        self.groups = groups
        self.forms = [
            Form(g, i, surface, _pattern(surface))
            for g, variants in enumerate(groups)
            for i, surface in enumerate(variants)
        ]
        self._by_first: dict[str, list[Form]] = {}
        for form in sorted(self.forms, key=lambda f: -len(f.pattern)):  # longest first
            self._by_first.setdefault(form.pattern[0], []).append(form)
        self._numeric = [*self._by_first.get("{n}", []), *self._by_first.get("{y}", [])]
        # what a token starting with a digit is tried against (greedy: longest first)
        self._by_digit: dict[str, list[Form]] = {
            first: sorted([*forms, *self._numeric], key=lambda f: -len(f.pattern))
            for first, forms in self._by_first.items() if first[:1].isdigit()
        }
        self._digit_only = sorted(self._numeric, key=lambda f: -len(f.pattern))
        # signatures for a quick "nothing here" (most texts): a form can only match where
        # its first token (one-token forms) or its first two tokens stand; a form with a
        # number in its first two tokens needs a token that starts with a digit
        self._singles = frozenset(f.pattern[0] for f in self.forms if len(f.pattern) == 1)
        self._pairs = frozenset(
            f.pattern[:2] for f in self.forms
            if len(f.pattern) > 1 and not _PLACEHOLDERS.keys() & set(f.pattern[:2])
        )
        self._validate()

    @classmethod
    def from_json(cls, doc: Any) -> VariantDictionary:
        """Build from the JSON document; only ``reviewed`` entries are used."""
        try:
            entries = doc["entries"]
            if not isinstance(entries, list):
                raise TypeError("'entries' must be a list")
            groups = [list(e["variants"]) for e in entries if e.get("reviewed") is True]
        except (KeyError, TypeError, AttributeError) as exc:
            raise VariantDictionaryError(f"variant dictionary is malformed: {exc!r}") from exc
        for group in groups:
            if len(group) < 2 or not all(isinstance(v, str) and v.strip() for v in group):
                raise VariantDictionaryError(f"variant entry needs two or more forms: {group!r}")
        return cls(groups)

    def _validate(self) -> None:
        seen: dict[tuple[str, ...], str] = {}
        for form in self.forms:
            if not form.pattern or all(p in _PLACEHOLDERS for p in form.pattern):
                raise VariantDictionaryError(f"variant {form.surface!r} needs a word")
            if form.pattern in seen:
                raise VariantDictionaryError(
                    f"variants {seen[form.pattern]!r} and {form.surface!r} are the same "
                    "after normalising case, whitespace and punctuation"
                )
            seen[form.pattern] = form.surface
        for a in self.forms:
            for b in self.forms:
                if a.group != b.group and _overlaps(a.pattern, b.pattern):
                    raise VariantDictionaryError(
                        f"variant {a.surface!r} sits inside {b.surface!r} of another group"
                    )

    def scan(self, tokens: list[Token]) -> list[Occurrence]:
        """Greedy longest-match scan of a token list for variant occurrences."""
        return self.locate(tokens, self.matches([t.norm for t in tokens]))

    def occurs(self, norms: list[str]) -> bool:
        """True if :meth:`scan` finds anything in tokens with these norms (no spans needed:
        most texts hold no variant, and are then never tokenised with their spans)."""
        return bool(self.matches(norms))

    def matches(self, norms: list[str]) -> list[Match]:
        """(form, first token, last token, number) of each occurrence in tokens with these
        norms, greedy longest (what :meth:`scan` finds, without the spans)."""
        if (self._singles.isdisjoint(norms)
                and self._pairs.isdisjoint(pairwise(norms))
                and "".join(norms).isalpha()):  # no digit: no form with a number matches
            return []
        return self._matches(norms)

    @staticmethod
    def locate(tokens: list[Token], found: list[Match]) -> list[Occurrence]:
        """The occurrences of ``found`` (:meth:`matches` of these tokens' norms)."""
        return [
            Occurrence(form.group, form.index, i, last, tokens[i].start, tokens[last].end, number)
            for form, i, last, number in found
        ]

    def _matches(self, norms: list[str]) -> list[Match]:
        found: list[Match] = []
        starts = self._by_first
        i = 0
        while i < len(norms):
            norm = norms[i]
            if norm not in starts and not norm[:1].isdigit():  # most words start no form
                i += 1
                continue
            hit = self._match_at(norms, i)
            if hit is None:
                i += 1
                continue
            found.append(hit)
            i = hit[2] + 1
        return found

    def _match_at(self, norms: list[str], i: int) -> Match | None:
        norm = norms[i]
        candidates = self._by_first.get(norm, ())
        if norm[:1].isdigit():
            candidates = self._by_digit.get(norm, self._digit_only)
        for form in candidates:
            end = i + len(form.pattern)
            if end > len(norms):
                continue
            number: str | None = None
            for tok, pat in zip(norms[i:end], form.pattern, strict=True):
                if pat in _PLACEHOLDERS:
                    if not _PLACEHOLDERS[pat].fullmatch(tok):
                        break
                    number = tok
                elif tok != pat:
                    break
            else:
                return form, i, end - 1, number
        return None

    def render(self, group: int, symbol: int, number: str | None) -> str:
        """Surface text of a variant, with its number filled in."""
        surface = self.groups[group][symbol]
        if number is not None:
            surface = re.sub(r"\{[ny]\}", number, surface)
        return surface


def _overlaps(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """True if ``a`` sits inside ``b``: scanning could then not tell the groups apart."""
    return len(a) < len(b) and any(b[k : k + len(a)] == a for k in range(len(b) - len(a) + 1))


@cache
def default_dictionary() -> VariantDictionary:
    """The dictionary shipped as ``variants.json``."""
    shipped = resources.files("detente.fingerprint.channels").joinpath("variants.json")
    text = shipped.read_text("utf-8")
    return VariantDictionary.from_json(json.loads(text))
