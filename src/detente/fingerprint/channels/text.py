"""Channel 2: reviewed, meaning-preserving variants in prose (descriptions and the like).

Each variant occurrence is one *binary* position: its alphabet is the first two forms of
its variant group (a third form, or any other rewording, reads as an erasure).  Binary
matters against colluders who diff their copies: wherever their words differ, both forms
are in the coalition, so whichever form (or canonical spelling) they keep still accuses
them.  A position is
identified by its group and the ``text_context`` normalised tokens either side (other
variant occurrences in the context are replaced by their group, so the context is the
same in every partner's copy).  Reading therefore needs no ids and no field names: it
survives re-typing (case, whitespace, punctuation), excerpts and copying into plain text.
Only contexts that are unique within the object version become positions; occurrences
glued to other text (``co.uk``, ``R&D``) or ending a sentence with an abbreviation are
left alone.

Faithfulness: a channel never rewrites what consumers match on.  Left alone are citation
markers (``(Citation: X)`` must keep resolving to ``external_references[].source_name``),
Markdown links (text and target), code spans, URLs, quoted strings, every occurrence of a
string another property of the object holds (reference source names and descriptions,
external ids, the object's name and aliases), and proper nouns: a variant written with a
capital letter inside a sentence, or starting a sentence and followed by a capitalised
word ("Israeli Defense Force", "Mobile Threat Defense", "Defence Intelligence").  Names
(``name`` of any object) are never marked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from detente.fingerprint.channels.slots import JSON, ChannelContext, Slot
from detente.fingerprint.channels.variants import (
    Occurrence,
    VariantDictionary,
    norms,
    tokenize,
)
from detente.fingerprint.keyed import plain_hex

NAME = "text"
TEXT_FIELDS = ("description", "abstract", "content", "explanation", "objective")
ALPHABET = 2
_PROTECTED = re.compile(
    r"\(Citation:[^)]*\)"  # ATT&CK citation markers
    r"|!?\[[^\]]*\]\([^)]*\)"  # Markdown links and images: text and target
    r"|`[^`]*`|<code>.*?</code>"  # code
    r"|\b(?:https?|ftp)://\S+|\bwww\.\S+"  # URLs
    r"|\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’"  # quoted strings
    r"|(?<!\w)'[^'\n]{1,200}'(?!\w)",
    re.S | re.I,
)
_REFERENCE_KEYS = ("source_name", "description", "external_id")
_NAME_KEYS = ("name", "aliases", "x_mitre_aliases")
_SENTENCE_ENDS = frozenset(".!?:;*•-\n")
_OPENERS = frozenset("([{\"'“‘«")
_CLOSERS = frozenset(")]}\"'”’».,;:!?")


@dataclass(frozen=True)
class Keyed:
    """An occurrence with its position key and whether it may be rewritten."""

    occ: Occurrence
    key: str
    writable: bool
    end: int  # span end, including an abbreviation's full stop


def fields(view: JSON) -> list[str]:
    """The prose fields of this view that the channel marks (never names)."""
    return [f for f in TEXT_FIELDS if isinstance(view.get(f), str)]


def referenced_strings(view: JSON) -> list[str]:
    """Strings other properties hold that prose may quote: never rewritten inside prose."""
    out: list[str] = []
    for key in _NAME_KEYS:
        value = view.get(key)
        values = value if isinstance(value, list) else [value]
        out.extend(v for v in values if isinstance(v, str))
    refs = view.get("external_references")
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, dict):
            out.extend(ref[k] for k in _REFERENCE_KEYS if isinstance(ref.get(k), str))
    return [s for s in out if len(s.strip()) >= 3]


def protected_spans(text: str, references: Sequence[str] = ()) -> list[tuple[int, int]]:
    """Character spans of ``text`` that no channel may change."""
    lowered = text.casefold()
    spans = [(m.start(), m.end()) for m in _PROTECTED.finditer(text)] \
        if _may_protect(text, lowered) else []
    for ref in references:
        needle = ref.casefold()
        if len(needle) != len(ref):
            continue
        at = lowered.find(needle)
        while at >= 0:
            spans.append((at, at + len(needle)))
            at = lowered.find(needle, at + 1)
    return spans


def _may_protect(text: str, lowered: str) -> bool:
    """False when ``_PROTECTED`` cannot match: none of the characters each of its
    alternatives starts with or needs is there (most prose: the regex is not run)."""
    return any(c in text for c in _TRIGGERS) or "://" in text or "www." in lowered


#: a citation or link needs "(" or "[", code "`" or "<", a quoted string its quote mark
_TRIGGERS = "([`<\"“‘'"


def _sentence_start(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'(“‘[")
    return not before or before[-1] in _SENTENCE_ENDS


def proper_noun(text: str, start: int, end: int) -> bool:
    """True if the occurrence ``text[start:end]`` is (part of) a proper noun."""
    words = re.findall(r"[^\W\d_]+", text[start:end])
    if not words:
        return False
    capitals = [w for w in words if any(ch.isupper() for ch in w)]
    initial = _sentence_start(text, start)
    if len(capitals) > (1 if initial and words[0] in capitals else 0):
        return True
    if not initial and capitals:
        return True
    if initial and capitals:  # a capitalised sentence start followed by a capitalised word
        following = re.match(r"[\s-]*([^\W\d_]+)", text[end:])
        return bool(following and following.group(1)[:1].isupper())
    return False


def keyed_occurrences(
    text: str,
    dictionary: VariantDictionary,
    context: int,
    references: Sequence[str] | None = None,
) -> tuple[Keyed, ...]:
    """All variant occurrences of ``text`` with their context keys.

    ``references`` (the strings other properties hold, see :func:`referenced_strings`)
    turns on the faithfulness guards for ``writable``; reading does not need them.
    Memoised (bounded): one object version is embedded once per recipient, and its texts
    are scanned identically each time.
    """
    refs = None if references is None else tuple(references)
    return _keyed_occurrences(text, dictionary, context, refs)


@lru_cache(maxsize=4096)
def _keyed_occurrences(
    text: str,
    dictionary: VariantDictionary,
    context: int,
    references: tuple[str, ...] | None,
) -> tuple[Keyed, ...]:
    stream = norms(text)  # what tokenize gives as norms: spans only where variants are
    found = dictionary.matches(stream)
    if not found:
        return ()
    shielded = protected_spans(text, references) if references is not None else []
    occs = dictionary.locate(tokenize(text), found)
    for occ in reversed(occs):
        stream[occ.first : occ.last + 1] = [f"§{occ.group}"]
    out: list[Keyed] = []
    offset = 0
    for occ in occs:
        at = occ.first - offset
        offset += occ.last - occ.first
        left = (["⊢"] * context + stream[:at])[-context:]
        right = ([*stream[at + 1 :], *(["⊣"] * context)])[:context]
        key = plain_hex(str(occ.group), *left, "|", *right)
        surface = dictionary.groups[occ.group][occ.symbol]
        stop = occ.end + 1 if surface.endswith(".") and text[occ.end : occ.end + 1] == "." else None
        end = stop or occ.end
        writable = _writable(text, occ.start, end, surface)
        if references is not None and writable:
            writable = not proper_noun(text, occ.start, end) and not any(
                a < end and occ.start < b for a, b in shielded
            )
        out.append(Keyed(occ, key, writable, end))
    return tuple(out)


def _writable(text: str, start: int, end: int, surface: str) -> bool:
    before = text[start - 1] if start > 0 else " "
    after = text[end] if end < len(text) else " "
    if not (before.isspace() or before in _OPENERS):
        return False
    if not (after.isspace() or after in _CLOSERS):
        return False
    if after in ".:" and end + 1 < len(text) and not text[end + 1].isspace():
        return False
    tail = text[end:].lstrip()
    return not (surface.endswith(".") and (not tail or tail[0].isupper()))


def plan(view: JSON, object_key: str, ctx: ChannelContext) -> list[Slot]:
    """Text slots: writable occurrences whose key is unique within the object version."""
    seen: dict[str, int] = {}
    candidates: list[tuple[str, Keyed]] = []
    references: list[str] | None = None
    for name in fields(view):
        text = view[name]
        if not ctx.dictionary.matches(norms(text)):  # most prose: no variant, no position
            continue
        if references is None:
            references = referenced_strings(view)
        occurrences = keyed_occurrences(text, ctx.dictionary, ctx.params.text_context, references)
        for k in occurrences:
            seen[k.key] = seen.get(k.key, 0) + 1
            candidates.append((name, k))
    return [
        Slot(
            plain_hex(object_key, NAME, k.key),
            NAME,
            ALPHABET,
            {"field": name, "key": k.key, "group": k.occ.group},
        )
        for name, k in candidates
        if k.writable and seen[k.key] == 1
    ]


def write(view: JSON, assigned: list[tuple[Slot, int]], ctx: ChannelContext) -> list[Slot]:
    """Substitute the chosen variants; keep only fields that read back exactly."""
    by_field: dict[str, dict[str, tuple[Slot, int]]] = {}
    for slot, symbol in assigned:
        by_field.setdefault(slot.loc["field"], {})[slot.loc["key"]] = (slot, symbol)
    written: list[Slot] = []
    for name, wanted in by_field.items():
        original = view.get(name)
        if not isinstance(original, str):
            continue
        text = _substitute(original, wanted, ctx, referenced_strings(view))
        got = read_text(text, ctx.dictionary, ctx.params.text_context)
        if all(got.get(key) == symbol for key, (_, symbol) in wanted.items()):
            view[name] = text
            written.extend(slot for slot, _ in wanted.values())
    return written


def _substitute(
    text: str,
    wanted: dict[str, tuple[Slot, int]],
    ctx: ChannelContext,
    references: Sequence[str],
) -> str:
    occs = keyed_occurrences(text, ctx.dictionary, ctx.params.text_context, references)
    for k in reversed(occs):
        if k.key not in wanted or not k.writable:
            continue
        _, symbol = wanted[k.key]
        variant = ctx.dictionary.render(k.occ.group, symbol, k.occ.number)
        text = text[: k.occ.start] + _match_case(text[k.occ.start : k.end], variant) + text[k.end :]
    return text


def _match_case(original: str, variant: str) -> str:
    if any(ch.isupper() for ch in variant) or not original[:1].isupper():
        return variant
    return variant[:1].upper() + variant[1:]


def read_text(text: str, dictionary: VariantDictionary, context: int) -> dict[str, int | None]:
    """Key -> symbol for every occurrence in ``text``; conflicting repeats read as None."""
    out: dict[str, int | None] = {}
    for k in keyed_occurrences(text, dictionary, context):
        if k.key in out and out[k.key] != k.occ.symbol:
            out[k.key] = None
        else:
            out.setdefault(k.key, k.occ.symbol)
    return out
