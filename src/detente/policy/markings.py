"""Marking resolution: a marking_ref (and the node's known marking-definitions) -> rules.

TLP 2.0 and TLP 1.0 ids are built in.  Other ids are looked up in ``ctx.markings`` and read
by their extensions: TLP 2.0 inline, detente releasability, IEP 2.0, ACS 3.0.  Anything the
node does not know or cannot read denies (fail closed).

The TLP/IEP/ACS id constants live here until ``detente.stix.vocab`` provides them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detente.policy.foreign import ACS_EXTENSION_ID, IEP_EXTENSION_ID, parse_acs, parse_iep
from detente.policy.releasability import RELEASABILITY_EXTENSION_ID, parse_releasability
from detente.policy.rules import TLP_LEVELS, TLP_ONWARD, Rule, tlp_label

__all__ = [
    "ACS_EXTENSION_ID",
    "IEP_EXTENSION_ID",
    "TLP1_IDS",
    "TLP2_EXTENSION_ID",
    "TLP2_IDS",
    "TLP_IDS",
    "parse_marking_definition",
    "resolve_marking",
    "tlp_rule",
]

#: the OASIS TLP 2.0 property extension (``tlp_2_0``)
TLP2_EXTENSION_ID = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

#: TLP 2.0 marking-definition ids (checked against cti-stix-common-objects)
TLP2_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
#: TLP 1.0 (STIX 2.1 section 7.2.1.4) ids, by the TLP 2.0 level they mean
TLP1_IDS: dict[str, str] = {
    "clear": "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9",
    "green": "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
    "amber": "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82",
    "red": "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed",
}
#: every built-in TLP id -> TLP 2.0 level
TLP_IDS: dict[str, str] = {
    **{mid: level for level, mid in TLP2_IDS.items()},
    **{mid: level for level, mid in TLP1_IDS.items()},
}
_TLP1_WORDS = {"white": "clear", "green": "green", "amber": "amber", "red": "red"}


def tlp_rule(level: str, source: str | None = None) -> Rule:
    return Rule(source or tlp_label(level), tlp=level, onward=TLP_ONWARD[level])


_BUILTIN: dict[str, tuple[Rule, ...]] = {mid: (tlp_rule(lv),) for mid, lv in TLP_IDS.items()}


def resolve_marking(ref: Any, markings: Mapping[str, Mapping[str, Any]]) -> tuple[Rule, ...]:
    """The rules a marking_ref stands for; a refusal when it is unknown or unreadable."""
    builtin = _BUILTIN.get(ref) if isinstance(ref, str) else None
    if builtin is not None:
        return builtin
    definition = markings.get(ref) if isinstance(ref, str) else None
    if definition is None:
        return (Rule(str(ref), refusal=f"unknown marking {ref!r}: fail closed."),)
    return parse_marking_definition(definition, ref)


def parse_marking_definition(md: Mapping[str, Any], ref: str | None = None) -> tuple[Rule, ...]:
    """Rules from one marking-definition object (every part of it must be understood)."""
    mid = str(md.get("id", ref)) if isinstance(md, Mapping) else str(ref)
    if not isinstance(md, Mapping) or md.get("type") != "marking-definition":
        return (Rule(mid, refusal=f"marking {mid} is not a marking-definition: fail closed."),)
    rules = list(_definition_rules(md, mid))
    extensions = md.get("extensions", {})
    if not isinstance(extensions, Mapping):
        return (Rule(mid, refusal=f"marking {mid} has malformed extensions: fail closed."),)
    for key, ext in extensions.items():
        rules.extend(_extension_rules(mid, key, ext))
    if not rules:
        return (Rule(mid, refusal=f"marking {mid} states no rule detente knows: fail closed."),)
    return tuple(rules)


def _definition_rules(md: Mapping[str, Any], mid: str) -> tuple[Rule, ...]:
    kind = md.get("definition_type")
    if kind is None:
        return ()
    definition = md.get("definition")
    if kind == "statement" and isinstance(definition, Mapping):
        text = str(definition.get("statement", ""))
        note = f"statement marking {mid} does not restrict release (it reads: {text!r})."
        return (Rule(f"statement {mid}", note=note),)
    if kind == "tlp" and isinstance(definition, Mapping):
        level = _TLP1_WORDS.get(str(definition.get("tlp", "")).lower())
        if level is not None:
            return (tlp_rule(level, f"{tlp_label(level)} ({mid})"),)
    return (Rule(mid, refusal=f"unknown marking {mid} of type {kind!r}: fail closed."),)


def _extension_rules(mid: str, key: Any, ext: Any) -> tuple[Rule, ...]:
    if key == TLP2_EXTENSION_ID:
        level = ext.get("tlp_2_0") if isinstance(ext, Mapping) else None
        if level in TLP_LEVELS:
            return (tlp_rule(level, f"{tlp_label(level)} ({mid})"),)
        refusal = f"marking {mid} has a malformed TLP 2.0 extension: fail closed."
        return (Rule(mid, refusal=refusal),)
    if key == RELEASABILITY_EXTENSION_ID:
        return (parse_releasability(mid, ext),)
    if key == IEP_EXTENSION_ID:
        return (parse_iep(mid, ext),)
    if key == ACS_EXTENSION_ID:
        return parse_acs(mid, ext)
    return (Rule(mid, refusal=f"unknown marking extension {key!r} on {mid}: fail closed."),)
