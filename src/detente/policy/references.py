"""What an object says about other objects: its references, and the audience its markings name.

Two rules of the release policy live here, both about what a view tells its recipient
beyond the object itself:

* **References.**  Every ``*_ref`` / ``*_refs`` property, at any depth (relationship
  ``source_ref``/``target_ref``, sighting ``sighting_of_ref``/``where_sighted_refs``/
  ``observed_data_refs``, report/note/opinion/grouping ``object_refs``, ``created_by_ref``,
  SCO embedded refs, refs inside extensions), names another object: its id, hence its type
  and, for SCOs, its value.  A view may only name objects the recipient may see.  Marking
  references (``object_marking_refs``, ``granular_markings[].marking_ref``) are not
  references in this sense: the marking definitions travel with the view as support.
* **Audience.**  A releasability marking lists everyone an object may go to.  The copy a
  recipient receives lists only the entries that name the recipient itself (its name, its
  identity id, the communities it is in): enough to honour the marking and to apply its
  onward rule, nothing about co-recipients.

Hand-written: no STIX library walks references generically with paths we can cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from detente.policy.foreign import reduce_acs
from detente.policy.redact import Path, copy_json
from detente.policy.releasability import RELEASABILITY_EXTENSION_ID, marking_name

__all__ = ["Reference", "audience_view", "references"]

#: (path in the object, referenced id)
Reference = tuple[Path, str]

_ID = re.compile(r"^[a-z0-9][a-z0-9-]*--\S+$")  # any STIX-shaped id (fail closed)
#: marking references: support material released with the view, not references here
_MARKING_KEYS = frozenset({"object_marking_refs", "granular_markings"})


def references(obj: Mapping[str, Any]) -> tuple[Reference, ...]:
    """Every reference ``obj`` makes to another object, with its path (markings excluded)."""
    # plain dicts and lists all the way down (a stored body is; anything else is copied
    # into that shape first), so the walk needs no slow abstract-type checks
    return tuple(_walk(obj if isinstance(obj, dict) else copy_json(obj), ()))


def _walk(node: dict[str, Any] | list[Any], path: Path) -> Iterator[Reference]:
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        kind = type(value)
        if kind is str:
            if isinstance(key, str) and key.endswith("_ref") and _ID.match(value):
                yield (*path, key), value
        elif kind is list:
            if not path and key in _MARKING_KEYS:
                continue
            if isinstance(key, str) and key.endswith("_refs"):
                for i, item in enumerate(value):
                    if type(item) is str:
                        if _ID.match(item):
                            yield (*path, key, i), item
                    elif type(item) in (dict, list):
                        yield from _walk(item, (*path, key, i))
            else:
                yield from _walk(value, (*path, key))
        elif kind is dict:
            yield from _walk(value, (*path, key))


def audience_view(
    md: Mapping[str, Any], names_recipient: Callable[[str], bool]
) -> tuple[dict[str, Any] | None, list[str], list[str]]:
    """The recipient's copy of a marking definition: audience lists cut to the entries that
    name the recipient.  Returns (view or None, removed paths, reasons); None means the
    marking names only others, so this recipient may not have it at all."""
    view: dict[str, Any] = copy_json(md)
    removed: list[str] = []
    reasons: list[str] = []
    extensions = view.get("extensions")
    if not isinstance(extensions, dict):
        return view, removed, reasons
    ours = extensions.get(RELEASABILITY_EXTENSION_ID)
    if isinstance(ours, dict) and isinstance(ours.get("releasable_to"), list):
        names = ours["releasable_to"]
        kept = [n for n in names if isinstance(n, str) and names_recipient(n)]
        if not kept:
            return None, [], ["the releasability marking names only other recipients."]
        if len(kept) < len(names):
            ours["releasable_to"] = kept
            removed.append(f"extensions.{RELEASABILITY_EXTENSION_ID}.releasable_to "
                           f"({len(names) - len(kept)} of {len(names)} entries)")
            reasons.append(f"releasable_to keeps the {len(kept)} entries naming the recipient; "
                           "co-recipients are not shown.")
            _rename(view, marking_name(ours), removed)
    for key, ext in extensions.items():
        if key != RELEASABILITY_EXTENSION_ID and isinstance(ext, dict):
            problem = reduce_acs(key, ext, names_recipient, removed, reasons)
            if problem is not None:
                return None, [], [problem]
    return view, removed, reasons


def _rename(view: dict[str, Any], name: str, removed: list[str]) -> None:
    """After a cut: the name (generated ones list the audience) follows the cut list, and a
    free-text description, which may name the audience too, is not sent."""
    if "name" in view and view["name"] != name:
        view["name"] = name
        removed.append("name (rebuilt from the cut list)")
    if "description" in view:
        del view["description"]
        removed.append("description")
