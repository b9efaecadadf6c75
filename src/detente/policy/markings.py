"""Marking resolution: a marking_ref (and the node's known marking-definitions) -> rules.

TLP 2.0 and TLP 1.0 ids are built in.  Other ids are looked up in ``ctx.markings`` and read
by their extensions: TLP 2.0 inline, detente releasability, IEP 2.0, ACS 3.0.  Anything the
node does not know or cannot read denies (fail closed).

The TLP/IEP/ACS ids come from ``detente.stix.vocab``; the names here are the policy's
public aliases of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from detente.policy.foreign import ACS_EXTENSION_ID, IEP_EXTENSION_ID, parse_acs, parse_iep
from detente.policy.releasability import RELEASABILITY_EXTENSION_ID, parse_releasability
from detente.policy.rules import TLP_LEVELS, TLP_ONWARD, Rule, tlp_label
from detente.stix.vocab import TLP_1_0_IDS, TLP_1_0_TO_2_0, TLP_2_0_EXTENSION, TLP_2_0_IDS

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
TLP2_EXTENSION_ID = TLP_2_0_EXTENSION
#: TLP 2.0 marking-definition ids, by level (checked against cti-stix-common-objects)
TLP2_IDS: dict[str, str] = dict(TLP_2_0_IDS)
#: TLP 1.0 (STIX 2.1 section 7.2.1.4) ids, by the TLP 2.0 level they mean
TLP1_IDS: dict[str, str] = {TLP_1_0_TO_2_0[word]: mid for word, mid in TLP_1_0_IDS.items()}
#: every built-in TLP id -> TLP 2.0 level
TLP_IDS: dict[str, str] = {
    **{mid: level for level, mid in TLP2_IDS.items()},
    **{mid: level for level, mid in TLP1_IDS.items()},
}
_TLP1_WORDS = TLP_1_0_TO_2_0


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
