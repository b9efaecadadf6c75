"""IEP 2.0 and ACS 3.0 markings, honoured where they restrict release.

Both are read from the OASIS property extensions (cti-stix-common-objects).  What detente
evaluates: IEP ``tlp`` and ``provider_attribution``; ACS ``permitted_organizations`` and
``permitted_nationalities`` (as releasable-to), ``further_sharing`` and the policy's
``sharedefault`` (as the onward rule).  Obligations on the recipient travel with the view
and are noted.  Any other restrictive property denies, naming the property (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from detente.policy.rules import ATTRIBUTION_ORDER, TLP_LEVELS, TLP_ONWARD, Rule, tlp_label
from detente.stix.vocab import ACS_3_0_EXTENSION, IEP_2_0_EXTENSION

__all__ = ["ACS_EXTENSION_ID", "IEP_EXTENSION_ID", "parse_acs", "parse_iep", "reduce_acs"]

IEP_EXTENSION_ID = IEP_2_0_EXTENSION
ACS_EXTENSION_ID = ACS_3_0_EXTENSION

_IEP_METADATA = frozenset(
    {
        "extension_type",
        "iep_id",
        "iep_version",
        "name",
        "description",
        "reference",
        "iep_reference",
        "start_date",
        "end_date",
    }
)
#: IEP properties that oblige the recipient; they travel with the view
_IEP_OBLIGATIONS = (
    "encrypt_in_transit",
    "permitted_actions",
    "affected_party_notifications",
    "unmodified_resale",
)

_ACS_INFORMATIONAL = frozenset(
    {
        "extension_type",
        "identifier",
        "create_date_time",
        "name",
        "responsible_entity_custodian",
        "responsible_entity_originator",
        "authority_reference",
        "policy_reference",
        "original_classification",
        "derivative_classification",
        "declassification",
        "resource_disposition",
        "public_release",
        "access_privilege",
        "further_sharing",
        "control_set",
    }
)
_ACS_HARMLESS_DETERMINATIONS = frozenset({"PUBREL", "INFOCERT", "NOCERT"})
_ACS_UNEVALUATED = ("sensitivity", "caveat", "shareability", "entity")


def parse_iep(mid: str, ext: Any) -> Rule:
    """One rule for an IEP 2.0 marking: its TLP, attribution and carried obligations."""
    if not isinstance(ext, Mapping):
        return Rule(f"IEP 2.0 {mid}", refusal=f"malformed IEP 2.0 marking {mid}: fail closed.")
    unknown = sorted(
        str(k)
        for k in ext
        if k not in _IEP_METADATA
        and k not in _IEP_OBLIGATIONS
        and k not in ("tlp", "provider_attribution")
    )
    level, attribution = ext.get("tlp"), ext.get("provider_attribution")
    source = f"IEP 2.0 {mid}" + (f" ({tlp_label(level)})" if level in TLP_LEVELS else "")
    if unknown:
        return Rule(
            source,
            refusal=f"IEP 2.0 {mid}: property {unknown[0]!r} is a restriction "
            "detente does not evaluate: fail closed.",
        )
    if level is not None and level not in TLP_LEVELS:
        return Rule(source, refusal=f"IEP 2.0 {mid}: tlp {level!r} is not a TLP 2.0 level.")
    if attribution is not None and attribution not in ATTRIBUTION_ORDER:
        return Rule(
            source,
            refusal=f"IEP 2.0 {mid}: provider_attribution {attribution!r} "
            "is not must, may or must-not.",
        )
    return Rule(
        source,
        tlp=level,
        onward=TLP_ONWARD.get(level) if level else None,
        attribution=attribution,
        note=_iep_note(mid, ext),
    )


def _iep_note(mid: str, ext: Mapping[str, Any]) -> str | None:
    carried = [f"{k}={ext[k]}" for k in _IEP_OBLIGATIONS if k in ext]
    if not carried:
        return None
    return f"IEP 2.0 {mid} obliges the recipient ({', '.join(carried)}); it travels with the view."


def parse_acs(mid: str, ext: Any) -> tuple[Rule, ...]:
    """Rules for an ACS 3.0 marking: releasable-to lists, onward rule, or refusals."""
    source = f"ACS 3.0 {mid}"
    if not isinstance(ext, Mapping) or not isinstance(ext.get("control_set", {}), Mapping):
        return (Rule(source, refusal=f"malformed ACS 3.0 marking {mid}: fail closed."),)
    unknown = sorted(str(k) for k in ext if k not in _ACS_INFORMATIONAL)
    if unknown:
        return (
            Rule(
                source,
                refusal=f"{source}: property {unknown[0]!r} is a restriction "
                "detente does not evaluate: fail closed.",
            ),
        )
    control = ext.get("control_set", {})
    rules = [_acs_control_refusal(source, control)]
    rules.extend(
        _acs_names(source, control, key)
        for key in ("permitted_organizations", "permitted_nationalities")
    )
    rules.append(Rule(source, onward=_acs_onward(ext), note=_acs_note(source, ext)))
    return tuple(r for r in rules if r is not None)


def _acs_control_refusal(source: str, control: Mapping[str, Any]) -> Rule | None:
    known = {
        "classification",
        "formal_determination",
        "permitted_organizations",
        "permitted_nationalities",
        *_ACS_UNEVALUATED,
    }
    problem = next((f"control_set.{k}" for k in sorted(map(str, control)) if k not in known), None)
    if control.get("classification", "U") != "U":
        problem = f"control_set.classification {control['classification']!r}"
    determinations = _strings(control.get("formal_determination", []))
    extra = sorted(set(determinations) - _ACS_HARMLESS_DETERMINATIONS)
    if extra:
        problem = problem or f"control_set.formal_determination {extra[0]!r}"
    for key in _ACS_UNEVALUATED:
        if key in control and _strings(control[key]) != ["ALL"]:
            problem = problem or f"control_set.{key} {_strings(control[key])!r}"
    if problem is None:
        return None
    return Rule(
        source,
        refusal=f"{source}: {problem} is a restriction detente does not evaluate: fail closed.",
    )


def _acs_names(source: str, control: Mapping[str, Any], key: str) -> Rule | None:
    if key not in control:
        return None
    names = _strings(control[key])
    if "ALL" in names:
        return None
    return Rule(f"{source} {key}", names=frozenset(names))


def _acs_onward(ext: Mapping[str, Any]) -> str | None:
    rules = ext.get("further_sharing", [])
    effects = (
        {r.get("rule_effect") for r in rules if isinstance(r, Mapping)}
        if isinstance(rules, list)
        else {"deny"}
    )
    if "deny" in effects:
        return "denied"
    policy = str(ext.get("policy_reference", ""))
    if "sharedefault=deny" in policy:
        return "originator-approval" if "permit" in effects else "denied"
    return "allowed" if "sharedefault=permit" in policy else None


def _acs_note(source: str, ext: Mapping[str, Any]) -> str | None:
    if "public_release" in ext:
        return f"{source} records a public release; other markings still apply."
    return None


def reduce_acs(
    key: str, ext: dict[str, Any], names_recipient: Callable[[str], bool],
    removed: list[str], reasons: list[str],
) -> str | None:
    """Cut an ACS 3.0 marking's permitted lists (in place) to the entries naming the
    recipient (``ALL`` stays whole); the problem when a list names only others."""
    if key != ACS_EXTENSION_ID or not isinstance(ext.get("control_set"), dict):
        return None
    control = ext["control_set"]
    for prop in ("permitted_organizations", "permitted_nationalities"):
        if prop not in control:
            continue
        names = _strings(control[prop])
        if "ALL" in names:
            continue
        kept = [n for n in names if names_recipient(n)]
        if not kept:
            return f"ACS 3.0 control_set.{prop} names only other recipients."
        if len(kept) < len(names):
            control[prop] = kept
            removed.append(f"extensions.{key}.control_set.{prop} "
                           f"({len(names) - len(kept)} of {len(names)} entries)")
            reasons.append(f"ACS 3.0 {prop} keeps the {len(kept)} entries naming the "
                           "recipient; co-recipients are not shown.")
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [repr(value)]
