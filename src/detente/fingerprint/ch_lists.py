"""Channel 1: the order of unordered lists (``object_refs``, ``labels``, ...).

Elements are put in a keyed order and cut into chunks of up to ``list_chunk`` elements; the
order inside a chunk of ``k`` elements is one symbol of a ``k!``-ary alphabet.  Reading
only needs the chunk's elements to appear in the artifact (in any company), so a copied,
re-serialised or extended list still reads.  The first ``external_references`` entry is
pinned: tools read it as the object's canonical reference (e.g. the ATT&CK id).
"""

from __future__ import annotations

import math
from typing import Any

from detente.fingerprint.keyed import keyed_hex, plain_hex
from detente.fingerprint.slots import JSON, ChannelContext, Slot, canonical_json

NAME = "list"
UNORDERED_LISTS = (
    "object_refs",
    "labels",
    "external_references",
    "kill_chain_phases",
    "aliases",
    "roles",
    "sectors",
    "goals",
    "secondary_motivations",
    "personal_motivations",
    "threat_actor_types",
    "malware_types",
    "tool_types",
    "indicator_types",
    "infrastructure_types",
    "report_types",
    "where_sighted_refs",
    "observed_data_refs",
    "sample_refs",
    "operating_system_refs",
    "architecture_execution_envs",
    "implementation_languages",
    "capabilities",
    "object_marking_refs",
)
_PINNED_FIRST = frozenset({"external_references"})


def handle(element: Any) -> str:
    """A short content handle of a list element (independent of key order and spacing)."""
    return plain_hex(canonical_json(element), length=12)


def _chunk_sizes(count: int, chunk: int) -> list[int]:
    sizes = [chunk] * (count // chunk) + ([count % chunk] if count % chunk else [])
    if len(sizes) > 1 and sizes[-1] == 1:
        sizes[-2] -= 1
        sizes[-1] = 2
    return [s for s in sizes if s >= 2]


def _split(view: JSON, name: str) -> tuple[list[Any], list[Any]] | None:
    value = view.get(name)
    if not isinstance(value, list) or len(value) < 2:
        return None
    pinned = value[:1] if name in _PINNED_FIRST else []
    rest = value[len(pinned) :]
    handles = [handle(e) for e in rest]
    if len(rest) < 2 or len(set(handles)) != len(handles):
        return None
    return pinned, rest


def plan(view: JSON, object_key: str, ctx: ChannelContext) -> list[Slot]:
    """The list-order slots of one view."""
    slots: list[Slot] = []
    for name in UNORDERED_LISTS:
        split = _split(view, name)
        if split is None:
            continue
        handles = sorted(
            (handle(e) for e in split[1]),
            key=lambda h: keyed_hex(ctx.secret, "order", object_key, name, h),
        )
        start = 0
        for size in _chunk_sizes(len(handles), ctx.params.list_chunk):
            items = handles[start : start + size]
            position = plain_hex(object_key, NAME, name, *items)
            slots.append(
                Slot(position, NAME, math.factorial(size), {"field": name, "items": items})
            )
            start += size
    return slots


def write(view: JSON, assigned: list[tuple[Slot, int]], ctx: ChannelContext) -> list[Slot]:
    """Rewrite each marked list: pinned head, then every chunk in its symbol's order."""
    by_field: dict[str, list[tuple[Slot, int]]] = {}
    for slot, symbol in assigned:
        by_field.setdefault(slot.loc["field"], []).append((slot, symbol))
    for name, chunks in by_field.items():
        split = _split(view, name)
        if split is None:
            continue
        pinned, rest = split
        element = {handle(e): e for e in rest}
        placed: set[str] = set()
        out = list(pinned)
        for slot, symbol in chunks:
            items: list[str] = slot.loc["items"]
            out.extend(element[items[k]] for k in permutation(len(items), symbol))
            placed.update(items)
        out.extend(e for h, e in element.items() if h not in placed)
        view[name] = out
    return [slot for slot, _ in assigned]


def read(obj: JSON, slot: Slot) -> int | None:
    """The symbol the artifact's list shows for this chunk, or None (erased)."""
    value = obj.get(slot.loc["field"])
    if not isinstance(value, list):
        return None
    where: dict[str, int] = {}
    for index, element in enumerate(value):
        where.setdefault(handle(element), index)
    items: list[str] = slot.loc["items"]
    if not all(h in where for h in items):
        return None
    order = sorted(range(len(items)), key=lambda k: where[items[k]])
    return permutation_index(order)


def permutation(size: int, index: int) -> list[int]:
    """The ``index``-th permutation of ``range(size)`` (Lehmer code)."""
    pool = list(range(size))
    out: list[int] = []
    for k in range(size, 0, -1):
        digit, index = divmod(index, math.factorial(k - 1))
        out.append(pool.pop(digit))
    return out


def permutation_index(order: list[int]) -> int:
    """Inverse of :func:`permutation`."""
    pool = sorted(order)
    index = 0
    for k, value in enumerate(order):
        digit = pool.index(value)
        index += digit * math.factorial(len(order) - k - 1)
        pool.pop(digit)
    return index
