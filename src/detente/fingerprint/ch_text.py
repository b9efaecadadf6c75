"""Channel 2: reviewed, meaning-preserving variants in prose (descriptions, report names).

Each variant occurrence is one position whose alphabet is its variant group.  A position is
identified by its group and the ``text_context`` normalised tokens either side (other
variant occurrences in the context are replaced by their group, so the context is the
same in every partner's copy).  Reading therefore needs no ids and no field names: it
survives re-typing (case, whitespace, punctuation), excerpts and copying into plain text.
Only contexts that are unique within the object version become positions; occurrences
glued to other text (``co.uk``, ``R&D``) or ending a sentence with an abbreviation are
left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from detente.fingerprint.keyed import plain_hex
from detente.fingerprint.slots import JSON, ChannelContext, Slot
from detente.fingerprint.variants import Occurrence, VariantDictionary, tokenize

NAME = "text"
TEXT_FIELDS = ("description", "abstract", "content", "explanation", "objective")
NAMED_TYPES = frozenset({"report", "grouping"})
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
    """The prose fields of this view that the channel marks."""
    names = [f for f in TEXT_FIELDS if isinstance(view.get(f), str)]
    if view.get("type") in NAMED_TYPES and isinstance(view.get("name"), str):
        names.append("name")
    return names


def keyed_occurrences(text: str, dictionary: VariantDictionary, context: int) -> list[Keyed]:
    """All variant occurrences of ``text`` with their context keys."""
    tokens = tokenize(text)
    occs = dictionary.scan(tokens)
    stream = [t.norm for t in tokens]
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
        out.append(Keyed(occ, key, _writable(text, occ.start, end, surface), end))
    return out


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
    for name in fields(view):
        for k in keyed_occurrences(view[name], ctx.dictionary, ctx.params.text_context):
            seen[k.key] = seen.get(k.key, 0) + 1
            candidates.append((name, k))
    return [
        Slot(
            plain_hex(object_key, NAME, k.key),
            NAME,
            len(ctx.dictionary.groups[k.occ.group]),
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
        text = _substitute(original, wanted, ctx)
        got = read_text(text, ctx.dictionary, ctx.params.text_context)
        if all(got.get(key) == symbol for key, (_, symbol) in wanted.items()):
            view[name] = text
            written.extend(slot for slot, _ in wanted.values())
    return written


def _substitute(text: str, wanted: dict[str, tuple[Slot, int]], ctx: ChannelContext) -> str:
    occs = keyed_occurrences(text, ctx.dictionary, ctx.params.text_context)
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
