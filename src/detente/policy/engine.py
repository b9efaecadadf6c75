"""``decide``: markings -> a Decision with every reason and every removed field.

The steps, labelled in the code:

(1) the object must look like a STIX object, its marking properties well formed;
(2) object markings resolve to rules (unknown -> deny); no TLP -> the node's default TLP,
    no default -> deny;
(3) every object-level rule must allow the recipient (most restrictive wins);
(4) material received from a partner must also pass that partner's onward rules;
(5) granular markings that deny strip their selectors; redact_below_tier rules strip theirs;
    references (every ``*_ref``/``*_refs``) to objects the recipient may not see are dropped;
(6) the view is cut; removing a required property (``relationship.target_ref``,
    ``sighting.sighting_of_ref``, the last of ``object_refs``…) denies the whole object;
(7) a marking definition's audience lists are cut to the entries naming the recipient.

``support_view`` is the recipient's copy of a marking definition a released view
references (steps 5-7 without the marking definition's own markings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detente.policy.checks import Who, check_onward, check_rule, who
from detente.policy.markings import TLP_IDS, resolve_marking, tlp_rule
from detente.policy.model import Decision, NodeContext, Recipient, Verdict
from detente.policy.redact import Path, copy_json, cut, lookup, parse_selector, render_path
from detente.policy.references import Reference, audience_view, references
from detente.policy.rules import TLP_LEVELS, Rule, strictest_attribution, strictest_onward

__all__ = ["decide", "matrix", "support_view"]


@dataclass(frozen=True, slots=True)
class Granular:
    """One granular marking entry, resolved."""

    selectors: tuple[str, ...]
    paths: tuple[Path, ...] | None  # None: a selector does not parse
    rules: tuple[Rule, ...]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What decide needs from (object, context), computed once for many recipients."""

    obj: Mapping[str, Any]
    refusal: str | None
    rules: tuple[Rule, ...]
    namers: tuple[Rule, ...]
    granular: tuple[Granular, ...]
    notes: tuple[str, ...]
    refs: tuple[Reference, ...] = ()


def decide(obj: Mapping[str, Any], recipient: Recipient, ctx: NodeContext) -> Decision:
    """May ``recipient`` see ``obj``, and which view of it?  Pure; never raises on input."""
    return _decide(_prepare(obj, ctx), recipient, ctx)


def matrix(
    obj: Mapping[str, Any], recipients: Iterable[Recipient], ctx: NodeContext
) -> list[tuple[Recipient, Decision]]:
    """The decision for each recipient ("who can see this and why")."""
    prepared = _prepare(obj, ctx)
    return [(r, _decide(prepared, r, ctx)) for r in recipients]


def _prepare(obj: Any, ctx: NodeContext) -> Prepared:
    # (1) shape
    if not isinstance(obj, Mapping) or not isinstance(obj.get("type"), str):
        return _refused(obj, "not a STIX object (no type): fail closed.")
    refs = obj.get("object_marking_refs", [])
    if not isinstance(refs, list):
        return _refused(obj, "object_marking_refs is not a list: fail closed.")
    granular = _granular(obj.get("granular_markings", []), ctx)
    if granular is None:
        return _refused(obj, "granular_markings is malformed: fail closed.")
    # (2) object markings -> rules; default TLP
    rules = [rule for ref in refs for rule in resolve_marking(ref, ctx.markings)]
    notes: list[str] = []
    if not any(rule.tlp for rule in rules):
        default = ctx.default_tlp
        if default not in TLP_LEVELS:
            why = (
                "this node has no default marking"
                if default is None
                else f"the node default {default!r} is not a TLP level"
            )
            return _refused(obj, f"the object carries no TLP marking and {why}: fail closed.")
        rules.append(tlp_rule(default, f"node default TLP:{default.upper()}"))
        notes.append(
            f"the object carries no TLP marking; the node default TLP:{default.upper()} applies."
        )
    namers = tuple(r for r in rules if r.names is not None and r.refusal is None)
    named = references(obj) if ctx.ref_visible is not None else ()
    return Prepared(obj, None, tuple(rules), namers, granular, tuple(notes), named)


def _refused(obj: Any, reason: str) -> Prepared:
    return Prepared(obj if isinstance(obj, Mapping) else {}, reason, (), (), (), ())


def _granular(entries: Any, ctx: NodeContext) -> tuple[Granular, ...] | None:
    if not isinstance(entries, list):
        return None
    out = []
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("selectors"), list):
            return None
        if "marking_ref" not in entry:
            if "lang" in entry:
                continue  # language markings do not restrict release
            return None
        selectors = tuple(str(s) for s in entry["selectors"])
        parsed = [parse_selector(s) for s in entry["selectors"]]
        paths = None if None in parsed else tuple(p for p in parsed if p is not None)
        out.append(Granular(selectors, paths, resolve_marking(entry["marking_ref"], ctx.markings)))
    return tuple(out)


def _decide(prep: Prepared, recipient: Recipient, ctx: NodeContext) -> Decision:
    oid = prep.obj.get("id")
    if prep.obj.get("type") == "marking-definition" and isinstance(oid, str) and oid in TLP_IDS:
        reason = "a standard TLP marking-definition is public by definition."
        return Decision(Verdict.ALLOW, (reason,), view=copy_json(prep.obj), onward="allowed")
    if prep.refusal is not None:
        return Decision.deny(prep.refusal)
    to = who(recipient, ctx)
    # (3) + (4) object-level rules and onward rules
    findings = _findings(prep.rules, to, prep.namers, ctx.origin)
    denials = [s for ok, s in findings if not ok]
    allows = [s for ok, s in findings if ok] + list(prep.notes)
    if denials:
        return Decision.deny(*denials, *allows)
    # (5) what to strip
    applied = list(prep.rules)
    paths, reasons = _granular_cuts(prep, to, ctx, applied)
    if paths is None:
        return Decision.deny(*reasons, *allows)
    _redactions(prep.obj, applied, to, paths, reasons)
    attribution = strictest_attribution(r.attribution for r in applied if r.refusal is None)
    denial = _hidden_refs(prep.obj, prep.refs, ctx, to, attribution, paths, reasons)
    if denial is not None:
        return Decision.deny(denial, *allows, *reasons)
    # (6) the view
    decision = _finish(prep.obj, paths, allows + reasons, applied)
    # (7) the audience
    return _audience(decision, to) if prep.obj.get("type") == "marking-definition" else decision


def support_view(md: Mapping[str, Any], recipient: Recipient, ctx: NodeContext) -> Decision:
    """The recipient's copy of a marking definition that a view released to it references.

    The marking travels as support (the recipient needs it to honour the view's handling
    rules), whatever the marking definition's own markings say; but, like any view, it
    names no object the recipient may not see (an optional ``created_by_ref`` is dropped)
    and no co-recipient (step 7).  Denied when the marking names only other recipients."""
    oid = md.get("id") if isinstance(md, Mapping) else None
    if not isinstance(md, Mapping) or md.get("type") != "marking-definition":
        return Decision.deny("not a marking definition: fail closed.")
    if isinstance(oid, str) and oid in TLP_IDS:
        reason = "a standard TLP marking-definition is public by definition."
        return Decision(Verdict.ALLOW, (reason,), view=copy_json(md), onward="allowed")
    to = who(recipient, ctx)
    reason = f"marking definition referenced by a view released to {to.name}."
    paths: list[Path] = []
    reasons: list[str] = [reason]
    denial = _hidden_refs(md, references(md), ctx, to, "may", paths, reasons)
    if denial is not None:
        return Decision.deny(denial, *reasons)
    return _audience(_finish(md, paths, reasons, ()), to)


def _audience(decision: Decision, to: Who) -> Decision:
    """(7) Cut a marking definition's releasable_to / ACS permitted lists to the entries
    that name ``to``: a view never tells its recipient who else may receive the object."""
    if decision.view is None:
        return decision
    view, removed, reasons = audience_view(decision.view, to.keys.__contains__)
    if view is None:
        return Decision.deny(*reasons, *decision.reasons)
    if not removed:
        return decision
    return Decision(
        Verdict.ALLOW_REDACTED,
        decision.reasons + tuple(reasons),
        removed=decision.removed + tuple(removed),
        view=view,
        onward=decision.onward,
        attribution=decision.attribution,
    )


def _findings(
    rules: Sequence[Rule], to: Who, namers: Sequence[Rule], origin: str | None
) -> list[tuple[bool, str]]:
    out: list[tuple[bool, str]] = []
    for rule in rules:
        out.extend(check_rule(rule, to, namers))
        if origin is not None:
            out.extend(check_onward(rule, to, origin))
    return out


def _granular_cuts(
    prep: Prepared, to: Who, ctx: NodeContext, applied: list[Rule]
) -> tuple[list[Path] | None, list[str]]:
    """Selectors of granular markings that deny this recipient; allowing ones join
    ``applied`` (their onward, attribution and redactions count)."""
    paths: list[Path] = []
    reasons: list[str] = []
    for entry in prep.granular:
        namers = prep.namers + _granular_namers(prep.granular, entry)
        findings = _findings(entry.rules, to, namers, ctx.origin)
        denials = [s for ok, s in findings if not ok]
        where = ", ".join(entry.selectors)
        if not denials:
            applied.extend(entry.rules)
            continue
        if entry.paths is None:
            return None, [
                f"granular marking on {where} denies and a selector cannot be "
                f"applied: fail closed.",
                *denials,
            ]
        paths.extend(entry.paths)
        reasons.extend(f"granular marking on {where}: {d} Removed from the view." for d in denials)
    return paths, reasons


def _granular_namers(entries: Sequence[Granular], entry: Granular) -> tuple[Rule, ...]:
    """Releasable-to rules of granular markings covering at least ``entry``'s selectors."""
    wanted = set(entry.selectors)
    return tuple(
        rule
        for other in entries
        if wanted <= set(other.selectors)
        for rule in other.rules
        if rule.names is not None and rule.refusal is None
    )


def _redactions(
    obj: Mapping[str, Any], rules: Sequence[Rule], to: Who, paths: list[Path], reasons: list[str]
) -> None:
    for rule in rules:
        for tier, selectors in rule.redact:
            if to.tier >= tier:
                continue
            found = [p for p in map(parse_selector, selectors) if p and lookup(obj, p)[0]]
            if found:
                paths.extend(found)
                reasons.append(
                    f"{rule.source} — {', '.join(selectors)} redacted below tier "
                    f"{tier}; {to.name} has tier {to.tier}."
                )


def _hidden_refs(
    obj: Mapping[str, Any], refs: Sequence[Reference], ctx: NodeContext, to: Who,
    attribution: str, paths: list[Path], reasons: list[str],
) -> str | None:
    """(5) References to objects ``to`` may not see join ``paths`` (one reason per property);
    the reason to deny when one cannot be removed.  The node's own identity and the
    recipient's are known to the recipient.  A hidden ``created_by_ref`` stays when the
    provider attribution rule is ``must``: the provider asked to be credited."""
    if ctx.ref_visible is None:
        return None
    hidden: dict[str, list[Path]] = {}
    for path, ref in refs:
        if ref == ctx.identity_id or ref in to.keys or ctx.ref_visible(ref):
            continue
        if path == ("created_by_ref",) and attribution == "must":
            reasons.append(
                f"created_by_ref — names an identity {to.name} may not see; kept: the "
                "provider attribution rule is must (the provider asked to be credited)."
            )
            continue
        if len(path) > 2 or (len(path) == 2 and not isinstance(path[1], int)):
            return (
                f"{render_path(path)} — a nested reference to an object {to.name} may not "
                "see cannot be removed safely: the whole object is denied."
            )
        hidden.setdefault(str(path[0]), []).append(path)
    for prop, found in hidden.items():
        paths.extend(found)
        if len(found[0]) == 1:
            reasons.append(
                f"{prop} — points to an object {to.name} may not see; "
                "it is removed from the view."
            )
        else:
            total = len(obj[prop])
            reasons.append(
                f"{prop} — {len(found)} of {total} references point to "
                f"objects {to.name} may not see; they are dropped from the view."
            )
    return None


def _finish(
    obj: Mapping[str, Any], paths: list[Path], reasons: list[str], applied: Sequence[Rule]
) -> Decision:
    result = cut(obj, paths)
    if result.view is None:
        kind = obj.get("type")
        return Decision.deny(
            *(
                f"removing {p} would leave an invalid {kind} ({p} is required): "
                "the whole object is denied."
                for p in result.refused
            ),
            *reasons,
        )
    verdict = Verdict.ALLOW_REDACTED if result.removed else Verdict.ALLOW
    return Decision(
        verdict,
        tuple(reasons),
        removed=result.removed,
        view=result.view,
        onward=strictest_onward(r.onward for r in applied if r.refusal is None),
        attribution=strictest_attribution(r.attribution for r in applied if r.refusal is None),
    )
