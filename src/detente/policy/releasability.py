"""detente's releasability marking: a property extension on marking-definition.

The extension-definition and its JSON schema ship next to this module
(``detente-releasability.extension-definition.json``, ``detente-releasability.schema.json``).
Content is checked here by hand against the schema's rules (fast, no jsonschema at serve
time); ``tests/policy`` pins the two to agree.  A marking that breaks them denies with
"malformed releasability marking: …".
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from typing import Any

from detente.policy.errors import MalformedMarkingError
from detente.policy.rules import ATTRIBUTION_ORDER, ONWARD_ORDER, Rule

__all__ = [
    "DETENTE_IDENTITY_ID",
    "RELEASABILITY_CREATED",
    "RELEASABILITY_EXTENSION_ID",
    "check_releasability",
    "extension_definition",
    "marking_name",
    "parse_releasability",
    "releasability_marking",
    "releasability_schema",
]

#: fixed forever: the id of the extension-definition (never reuse, never change)
RELEASABILITY_EXTENSION_ID = "extension-definition--a83db415-adb4-495c-95a7-329f6dadd3c0"
#: the detente project's identity, creator of the extension-definition
DETENTE_IDENTITY_ID = "identity--7122b39c-3222-4f01-827e-c21fc44acef5"
#: ``created`` of markings built by :func:`releasability_marking` (same content, same bytes)
RELEASABILITY_CREATED = "2025-01-01T00:00:00.000Z"

_SCHEMA_FILE = "detente-releasability.schema.json"
_DEFINITION_FILE = "detente-releasability.extension-definition.json"
_NAMESPACE = uuid.UUID(RELEASABILITY_EXTENSION_ID.split("--", 1)[1])
_KNOWN = frozenset(
    {"extension_type", "releasable_to", "min_tier", "onward", "redact_below_tier", "attribution"}
)
_SELECTOR = re.compile(r"^[A-Za-z0-9_-]+(\.(\[[0-9]+\]|[A-Za-z0-9_-]+))*$")
_TIER_KEY = re.compile(r"^[0-4]$")
MAX_NAME = 256


@cache
def releasability_schema() -> dict[str, Any]:
    """The JSON schema of the extension's properties (shipped with the package)."""
    return _load(_SCHEMA_FILE)


@cache
def extension_definition() -> dict[str, Any]:
    """The STIX extension-definition object for detente releasability."""
    return _load(_DEFINITION_FILE)


def _load(name: str) -> dict[str, Any]:
    text = resources.files("detente.policy").joinpath(name).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def check_releasability(ext: Any) -> str | None:
    """What is wrong with releasability extension content, or None when it is valid."""
    if not isinstance(ext, Mapping):
        return "the extension is not an object"
    unknown = sorted(str(k) for k in ext if k not in _KNOWN)
    if unknown:
        return f"unknown property {unknown[0]!r}"
    if ext.get("extension_type") != "property-extension":
        return "extension_type must be 'property-extension'"
    if len(ext) < 2:
        return "it states no rule"
    for check in (_check_names, _check_tier, _check_enums, _check_redact):
        problem = check(ext)
        if problem is not None:
            return problem
    return None


def _check_names(ext: Mapping[str, Any]) -> str | None:
    if "releasable_to" not in ext:
        return None
    names = ext["releasable_to"]
    if not isinstance(names, list) or not names:
        return "releasable_to must be a non-empty list"
    for name in names:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME:
            return f"releasable_to entry {name!r} is not a name"
    if len(set(names)) != len(names):
        return "releasable_to has duplicate entries"
    return None


def _check_tier(ext: Mapping[str, Any]) -> str | None:
    tier = ext.get("min_tier", 0)
    if isinstance(tier, bool) or not isinstance(tier, int) or not 0 <= tier <= 4:
        return f"min_tier {tier!r} is not a tier 0-4"
    return None


def _check_enums(ext: Mapping[str, Any]) -> str | None:
    if ext.get("onward", "allowed") not in ONWARD_ORDER:
        return f"onward {ext['onward']!r} is not one of {', '.join(ONWARD_ORDER)}"
    if ext.get("attribution", "may") not in ATTRIBUTION_ORDER:
        return f"attribution {ext['attribution']!r} is not one of {', '.join(ATTRIBUTION_ORDER)}"
    return None


def _check_redact(ext: Mapping[str, Any]) -> str | None:
    if "redact_below_tier" not in ext:
        return None
    table = ext["redact_below_tier"]
    if not isinstance(table, Mapping) or not table:
        return "redact_below_tier must be a non-empty object"
    for key, selectors in table.items():
        if not isinstance(key, str) or not _TIER_KEY.match(key):
            return f"redact_below_tier key {key!r} is not a tier 0-4"
        if not isinstance(selectors, list) or not selectors:
            return f"redact_below_tier[{key}] must be a non-empty list of selectors"
        for sel in selectors:
            if not isinstance(sel, str) or not _SELECTOR.match(sel):
                return f"redact_below_tier[{key}] selector {sel!r} is not a selector"
    return None


def parse_releasability(marking_id: str, ext: Any) -> Rule:
    """The rule a releasability extension states (a refusal when it is malformed)."""
    source = f"detente releasability {marking_id}"
    problem = check_releasability(ext)
    if problem is not None:
        return Rule(source, refusal=f"malformed releasability marking: {marking_id}: {problem}.")
    names = ext.get("releasable_to")
    table = ext.get("redact_below_tier", {})
    return Rule(
        source,
        names=frozenset(names) if names is not None else None,
        min_tier=ext.get("min_tier"),
        onward=ext.get("onward"),
        attribution=ext.get("attribution"),
        redact=tuple(sorted((int(k), tuple(v)) for k, v in table.items())),
    )


def releasability_marking(
    releasable_to: Iterable[str] | None = None,
    min_tier: int | None = None,
    onward: str | None = None,
    redact_below_tier: Mapping[int, Iterable[str]] | None = None,
    attribution: str | None = None,
    created_by_ref: str | None = None,
    created: str = RELEASABILITY_CREATED,
) -> dict[str, Any]:
    """A valid marking-definition carrying a releasability extension.

    Deterministic: the id is a uuid5 of the content, and the same arguments give the same
    object byte for byte.  Raises :class:`MalformedMarkingError` on invalid arguments.
    """
    ext = _extension_content(releasable_to, min_tier, onward, redact_below_tier, attribution)
    problem = check_releasability(ext)
    if problem is not None:
        raise MalformedMarkingError(f"malformed releasability marking: {problem}")
    seed = json.dumps({"by": created_by_ref, "ext": ext}, sort_keys=True, separators=(",", ":"))
    marking: dict[str, Any] = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid5(_NAMESPACE, seed)}",
        "created": created,
        "name": marking_name(ext),
        "extensions": {RELEASABILITY_EXTENSION_ID: ext},
    }
    if created_by_ref is not None:
        marking["created_by_ref"] = created_by_ref
    return marking


def _extension_content(
    releasable_to: Iterable[str] | None,
    min_tier: int | None,
    onward: str | None,
    redact_below_tier: Mapping[int, Iterable[str]] | None,
    attribution: str | None,
) -> dict[str, Any]:
    ext: dict[str, Any] = {"extension_type": "property-extension"}
    if releasable_to is not None:
        names = list(releasable_to)
        texts = all(isinstance(n, str) for n in names)
        ext["releasable_to"] = sorted(set(names)) if texts else names
    if min_tier is not None:
        ext["min_tier"] = min_tier
    if onward is not None:
        ext["onward"] = onward
    if redact_below_tier is not None:
        ext["redact_below_tier"] = {
            str(tier): sels if isinstance(sels, str) else list(dict.fromkeys(sels))
            for tier, sels in sorted(redact_below_tier.items())
        }
    if attribution is not None:
        ext["attribution"] = attribution
    return ext


def marking_name(ext: Mapping[str, Any]) -> str:
    parts = []
    if "releasable_to" in ext:
        parts.append("to " + ", ".join(ext["releasable_to"]))
    if "min_tier" in ext:
        parts.append(f"tier >= {ext['min_tier']}")
    if "onward" in ext:
        parts.append(f"onward {ext['onward']}")
    if "redact_below_tier" in ext:
        parts.append("redactions")
    if "attribution" in ext:
        parts.append(f"attribution {ext['attribution']}")
    return "detente releasability: " + "; ".join(parts)
