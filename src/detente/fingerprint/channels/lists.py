"""Channel 1: the order of lists no consumer reads in order (``labels``, ``aliases``...).

Only lists that STIX defines as unordered *and* that no receiving tool is known to read in
order are used: open-vocabulary lists, ``aliases``, ``external_references`` and ATT&CK's
``x_mitre_platforms`` and ``x_mitre_data_sources``.  Never ``object_refs`` (MISP rebuilds
attributes from its order), never ``kill_chain_phases``, never any other ``*_refs`` list.
The first ``external_references`` entry stays first when it carries an ``external_id``
(tools read it as the object's canonical reference, e.g. the ATT&CK id); an alias equal
to the object's name stays first (ATT&CK's convention).

Binary code, tree of swaps.  The elements are put in a keyed order and split into a
balanced binary tree; every internal node is one *binary* position (keep or swap its two
subtrees), so a list of ``k`` elements carries ``k - 1`` positions.  Every partner's list is
one of the orders the tree allows: each subtree occupies a contiguous block.  A node is read
only if its elements form one block of the artifact's list made of its two children's
blocks; a list sorted or shuffled by colluders breaks that for most nodes, which then read
as erasures.  Binary positions matter: wherever colluders' copies differ at a node, *both*
symbols are held by the coalition, so whatever order they choose for that node (a copy's or
a canonical one) still accuses them.
"""

from __future__ import annotations

from typing import Any

from detente.fingerprint.channels.slots import JSON, ChannelContext, Slot, canonical_json
from detente.fingerprint.keyed import keyed_hex, plain_hex

NAME = "list"
UNORDERED_LISTS = (
    "labels",
    "aliases",
    "x_mitre_aliases",
    "external_references",
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
    "architecture_execution_envs",
    "implementation_languages",
    "capabilities",
    "x_mitre_platforms",
    "x_mitre_data_sources",
)
_UNORDERED = frozenset(UNORDERED_LISTS)
_RANK = {name: k for k, name in enumerate(UNORDERED_LISTS)}
#: Lists whose order receiving tools rely on: never reordered (documentation and tests).
ORDERED_LISTS = frozenset({"object_refs", "kill_chain_phases", "granular_markings"})
_PINNED_FIRST = frozenset({"external_references"})  # when its first entry names an id
_NAME_FIRST = frozenset({"aliases", "x_mitre_aliases"})
_MAX_ELEMENTS = 64


def handle(element: Any) -> str:
    """A short content handle of a list element (independent of key order and spacing)."""
    if type(element) is str and len(element) <= _STRING_HANDLE_CHARS:  # most elements
        hit = _STRING_HANDLES.get(element)
        if hit is None:
            if len(_STRING_HANDLES) >= _STRING_HANDLES_MAX:
                _STRING_HANDLES.clear()
            hit = _STRING_HANDLES[element] = plain_hex(canonical_json(element), length=12)
        return hit
    return plain_hex(canonical_json(element), length=12)


#: handles of string elements (a content digest: the same in every view, so kept; bounded)
_STRING_HANDLES: dict[str, str] = {}
_STRING_HANDLES_MAX = 65_536
_STRING_HANDLE_CHARS = 256


def _split(view: JSON, name: str) -> tuple[list[Any], list[Any], list[str]] | None:
    """(pinned head, the elements that move, their handles) of a list that can carry
    marks, else None."""
    value = view.get(name)
    if not isinstance(value, list) or len(value) < 2:
        return None
    pinned = []
    if name in _PINNED_FIRST and isinstance(value[0], dict) and "external_id" in value[0]:
        pinned = value[:1]
    if name in _NAME_FIRST and value[0] == view.get("name"):
        pinned = value[:1]
    rest = value[len(pinned) :]
    if not 2 <= len(rest) <= _MAX_ELEMENTS:
        return None
    handles = [handle(e) for e in rest]
    if len(set(handles)) != len(handles):
        return None
    return pinned, rest, handles


def _nodes(items: list[str]) -> list[tuple[list[str], list[str]]]:
    """Internal nodes of the balanced tree over ``items``: (left leaves, right leaves)."""
    if len(items) < 2:
        return []
    mid = len(items) // 2
    left, right = items[:mid], items[mid:]
    return [(left, right), *_nodes(left), *_nodes(right)]


def plan(view: JSON, object_key: str, ctx: ChannelContext) -> list[Slot]:
    """The list-order positions of one view: ``k - 1`` binary positions per list."""
    slots: list[Slot] = []
    present = _UNORDERED.intersection(view)  # most views hold one or two of these lists
    for name in sorted(present, key=_RANK.__getitem__) if len(present) > 1 else present:
        split = _split(view, name) if isinstance(view.get(name), list) else None
        if split is None:
            continue
        leaves = sorted(
            split[2], key=lambda h: keyed_hex(ctx.secret, "order", object_key, name, h)
        )
        for left, right in _nodes(leaves):
            position = plain_hex(object_key, NAME, name, *left, "|", *right)
            slots.append(
                Slot(position, NAME, 2, {"field": name, "left": left, "right": right})
            )
    return slots


def _arrange(leaves: list[str], swaps: dict[tuple[str, ...], int]) -> list[str]:
    if len(leaves) < 2:
        return list(leaves)
    mid = len(leaves) // 2
    left, right = _arrange(leaves[:mid], swaps), _arrange(leaves[mid:], swaps)
    return right + left if swaps.get(tuple(leaves), 0) else left + right


def write(view: JSON, assigned: list[tuple[Slot, int]], ctx: ChannelContext) -> list[Slot]:
    """Rewrite each marked list: pinned head, then the tree with each node's swap applied."""
    by_field: dict[str, list[tuple[Slot, int]]] = {}
    for slot, symbol in assigned:
        by_field.setdefault(slot.loc["field"], []).append((slot, symbol))
    written: list[Slot] = []
    for name, nodes in by_field.items():
        split = _split(view, name)
        if split is None:
            continue
        pinned, rest, handles = split
        element = dict(zip(handles, rest, strict=True))
        root = max(nodes, key=lambda n: len(n[0].loc["left"]) + len(n[0].loc["right"]))[0]
        leaves = [*root.loc["left"], *root.loc["right"]]
        if set(leaves) != set(element):
            continue
        swaps = {tuple(s.loc["left"] + s.loc["right"]): sym for s, sym in nodes}
        view[name] = pinned + [element[h] for h in _arrange(leaves, swaps)]
        written += [slot for slot, _ in nodes]
    return written


def read(obj: JSON, slot: Slot) -> int | None:
    """The node's symbol in the artifact's list, or None (erased: missing or not a block)."""
    value = obj.get(slot.loc["field"])
    if not isinstance(value, list):
        return None
    left: list[str] = slot.loc["left"]
    right: list[str] = slot.loc["right"]
    mine = set(left) | set(right)
    # (1) the artifact's order of this node's elements, foreign elements ignored
    order = [h for h in (handle(e) for e in value) if h in mine]
    if len(order) != len(mine) or len(set(order)) != len(order):
        return None
    # (2) the node's elements must form one block of the artifact's list (every served
    # order has that property; an added element inside the block erases the node)
    if not _is_block(value, mine):
        return None
    # (3) and consist of its two children's blocks, in one order or the other
    head = set(order[: len(left)])
    if head == set(left):
        return 0
    if set(order[: len(right)]) == set(right):
        return 1
    return None


def _is_block(value: list[Any], mine: set[str]) -> bool:
    where = [k for k, e in enumerate(value) if handle(e) in mine]
    return bool(where) and where[-1] - where[0] + 1 == len(where)
