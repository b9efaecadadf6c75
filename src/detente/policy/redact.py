"""Cutting a view: remove selector paths from a copy of an object.

Selectors use STIX granular-marking syntax (``description``, ``labels.[1]``,
``kill_chain_phases.[0].phase_name``).  Removing a list element shifts its successors, so
the view's own ``granular_markings`` selectors are renumbered and entries whose selectors
were all removed are dropped.  Removing a required property (or a marking property, which
must travel with the view) is refused: the caller then denies the whole object.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson

__all__ = [
    "Cut",
    "Path",
    "copy_json",
    "cut",
    "lookup",
    "parse_selector",
    "render_path",
    "required_props",
]

Path = tuple[str | int, ...]
_INDEX = re.compile(r"^\[([0-9]+)\]$")

_COMMON_SDO = frozenset({"type", "id", "spec_version", "created", "modified"})
_MARKING_PROPS = frozenset({"object_marking_refs", "granular_markings"})
#: required properties per STIX 2.1 type, beyond the common ones (STIX 2.1 sections 4-6)
_REQUIRED: dict[str, frozenset[str]] = {
    "attack-pattern": frozenset({"name"}),
    "campaign": frozenset({"name"}),
    "course-of-action": frozenset({"name"}),
    "grouping": frozenset({"context", "object_refs"}),
    "identity": frozenset({"name"}),
    "incident": frozenset({"name"}),
    "indicator": frozenset({"pattern", "pattern_type", "valid_from"}),
    "infrastructure": frozenset({"name"}),
    "intrusion-set": frozenset({"name"}),
    "malware": frozenset({"is_family"}),
    "malware-analysis": frozenset({"product"}),
    "note": frozenset({"content", "object_refs"}),
    "observed-data": frozenset({"first_observed", "last_observed", "number_observed"}),
    "opinion": frozenset({"opinion", "object_refs"}),
    "report": frozenset({"name", "published", "object_refs"}),
    "threat-actor": frozenset({"name"}),
    "tool": frozenset({"name"}),
    "vulnerability": frozenset({"name"}),
    "relationship": frozenset({"relationship_type", "source_ref", "target_ref"}),
    "sighting": frozenset({"sighting_of_ref"}),
    "marking-definition": frozenset({"created"}),
    "language-content": frozenset({"object_ref", "contents"}),
    "extension-definition": frozenset(
        {"name", "schema", "version", "extension_types", "created_by_ref"}
    ),
}
_SCO_REQUIRED: dict[str, frozenset[str]] = {
    "ipv4-addr": frozenset({"value"}),
    "ipv6-addr": frozenset({"value"}),
    "domain-name": frozenset({"value"}),
    "url": frozenset({"value"}),
    "email-addr": frozenset({"value"}),
    "mac-addr": frozenset({"value"}),
    "autonomous-system": frozenset({"number"}),
    "mutex": frozenset({"name"}),
    "software": frozenset({"name"}),
    "directory": frozenset({"path"}),
    "network-traffic": frozenset({"protocols"}),
    "email-message": frozenset({"is_multipart"}),
}
#: required properties of list items, by the top-level list property
_NESTED_REQUIRED: dict[str, frozenset[str]] = {
    "kill_chain_phases": frozenset({"kill_chain_name", "phase_name"}),
    "external_references": frozenset({"source_name"}),
    "granular_markings": frozenset({"selectors"}),
}


@cache
def required_props(stix_type: str) -> frozenset[str]:
    """Properties a view of this type may never lose (required ones and the markings)."""
    if stix_type in _SCO_REQUIRED:
        return _SCO_REQUIRED[stix_type] | _MARKING_PROPS | {"type", "id"}
    return _REQUIRED.get(stix_type, frozenset()) | _COMMON_SDO | _MARKING_PROPS


def parse_selector(selector: Any) -> Path | None:
    """``"labels.[1]"`` -> ``("labels", 1)``; None when it is not a selector."""
    if not isinstance(selector, str) or not selector:
        return None
    steps: list[str | int] = []
    for part in selector.split("."):
        match = _INDEX.match(part)
        if match:
            steps.append(int(match.group(1)))
        elif part and "[" not in part and "]" not in part:
            steps.append(part)
        else:
            return None
    return tuple(steps) if isinstance(steps[0], str) else None


def render_path(path: Path) -> str:
    """``("kill_chain_phases", 0, "phase_name")`` -> ``"kill_chain_phases[0].phase_name"``."""
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out


def _selector(path: Path) -> str:
    return ".".join(f"[{s}]" if isinstance(s, int) else s for s in path)


def copy_json(value: Any) -> Any:
    """A deep copy of JSON-shaped data (dicts, lists, scalars); mappings become dicts.

    orjson round-trips plain JSON fastest; anything it refuses is copied by hand."""
    try:
        return orjson.loads(orjson.dumps(value))
    except (TypeError, orjson.JSONEncodeError):
        return _copy(value)


def _copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Cut:
    view: dict[str, Any] | None
    removed: tuple[str, ...]
    #: required properties the cut would have removed (the view is None then)
    refused: tuple[str, ...] = ()


def lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    """(True, value) at ``path`` in ``obj``, or (False, None) when it is not there."""
    node = obj
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, list) or step >= len(node):
                return False, None
        elif not isinstance(node, Mapping) or step not in node:
            return False, None
        node = node[step]
    return True, node


def _minimal(paths: Iterable[Path], obj: Mapping[str, Any]) -> list[Path]:
    present = {p for p in paths if lookup(obj, p)[0]}
    return sorted(
        (p for p in present if not any(p[:i] in present for i in range(1, len(p)))), key=str
    )


def _refused(paths: Iterable[Path], required: frozenset[str]) -> list[str]:
    out = []
    for p in paths:
        if (len(p) == 1 and p[0] in required) or (
            len(p) == 3 and isinstance(p[0], str) and p[2] in _NESTED_REQUIRED.get(p[0], ())
        ):
            out.append(render_path(p))
    return out


def cut(obj: Mapping[str, Any], paths: Sequence[Path]) -> Cut:
    """A copy of ``obj`` without ``paths`` (those that exist), or the refused properties."""
    targets = _minimal(paths, obj) if paths else []
    if not targets:
        return Cut(copy_json(obj), ())
    required = required_props(str(obj.get("type")))
    refused = _refused(targets, required)
    if refused:
        return Cut(None, (), tuple(refused))
    view: dict[str, Any] = copy_json(obj)
    emptied = _delete(view, targets)
    refused = _refused(emptied, required)
    if refused:
        return Cut(None, (), tuple(refused))
    dropped = _renumber_granular(view, targets, emptied)
    removed = [render_path(p) for p in targets + emptied] + dropped
    return Cut(view, tuple(removed))


def _delete(view: dict[str, Any], targets: list[Path]) -> list[Path]:
    """Delete every target (resolved first: deleting shifts list indices); returns the
    paths of lists left empty, which are removed too (STIX forbids empty lists)."""
    lists: dict[int, tuple[list[Any], Path, list[int]]] = {}
    keys: list[tuple[dict[str, Any], str]] = []
    for path in targets:
        parent = lookup(view, path[:-1])[1]
        last = path[-1]
        if isinstance(last, int):
            lists.setdefault(id(parent), (parent, path[:-1], []))[2].append(last)
        else:
            keys.append((parent, last))
    holders = {lp: lookup(view, lp[:-1])[1] for _, lp, _ in lists.values()}
    for parent, key in keys:
        del parent[key]
    emptied: list[Path] = []
    for items, list_path, indices in lists.values():
        for index in sorted(indices, reverse=True):
            del items[index]
        holder = holders[list_path]
        if not items and isinstance(holder, dict) and isinstance(list_path[-1], str):
            del holder[list_path[-1]]
            emptied.append(list_path)
    return emptied


def _renumber_granular(view: dict[str, Any], targets: list[Path], emptied: list[Path]) -> list[str]:
    """Fix the view's granular_markings after removals; returns dropped entries' paths."""
    entries = view.get("granular_markings")
    if not isinstance(entries, list):
        return []
    gone = set(targets) | set(emptied)
    shifts: dict[Path, list[int]] = {}
    for path in targets:
        if isinstance(path[-1], int):
            shifts.setdefault(path[:-1], []).append(path[-1])
    for indices in shifts.values():
        indices.sort()
    kept, dropped = [], []
    for number, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("selectors"), list):
            kept.append(entry)
            continue
        selectors = _renumber(entry["selectors"], gone, shifts)
        if entry["selectors"] and not selectors:
            dropped.append(f"granular_markings[{number}]")
            continue
        entry["selectors"] = selectors
        kept.append(entry)
    if kept:
        view["granular_markings"] = kept
    else:
        del view["granular_markings"]
    return dropped


def _renumber(selectors: list[Any], gone: set[Path], shifts: dict[Path, list[int]]) -> list[Any]:
    out: list[Any] = []
    for selector in selectors:
        path = parse_selector(selector)
        if path is None:
            out.append(selector)
        elif not any(path[:i] in gone for i in range(1, len(path) + 1)):
            out.append(_selector(_shift(path, shifts)))
    return out


def _shift(path: Path, shifts: dict[Path, list[int]]) -> Path:
    out: list[str | int] = []
    for i, step in enumerate(path):
        removed = shifts.get(path[:i]) if isinstance(step, int) else None
        out.append(step - bisect_left(removed, step) if removed and isinstance(step, int) else step)
    return tuple(out)
