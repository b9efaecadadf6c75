"""One rule against one recipient: the sentences that allow or deny.

Every check yields ``(allowed, sentence)``; a sentence names the marking and the rule
("TLP:AMBER — only partners named by a releasability marking; ru is not named.").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from detente.policy.model import NodeContext, Recipient
from detente.policy.rules import Rule, tlp_label

__all__ = ["Who", "check_onward", "check_rule", "who"]

Finding = tuple[bool, str]


@dataclass(frozen=True, slots=True)
class Who:
    """The recipient as the checks need it."""

    name: str
    tier: int
    #: name, identity ids and communities: what a releasable-to entry can match
    keys: frozenset[str]
    #: communities the recipient shares with this node
    shared: frozenset[str]


def who(recipient: Recipient, ctx: NodeContext) -> Who:
    keys = {recipient.name, *recipient.communities}
    for ident in (recipient.identity_id, ctx.partner_identities.get(recipient.name)):
        if ident:
            keys.add(ident)
    shared = recipient.communities & ctx.communities
    return Who(recipient.name, recipient.tier, frozenset(keys), shared)


def check_rule(rule: Rule, to: Who, namers: Sequence[Rule]) -> Iterator[Finding]:
    """Findings of one rule for one recipient (namers: rules that can name it, for AMBER)."""
    if rule.refusal is not None:
        yield False, rule.refusal
        return
    if rule.tlp is not None:
        yield _check_tlp(rule, to, namers)
    if rule.names is not None:
        listed = ", ".join(sorted(rule.names))
        if rule.names & to.keys:
            yield True, f"{rule.source} — releasable to {listed}; {to.name} is named."
        else:
            yield False, f"{rule.source} — releasable to {listed} only; {to.name} is not named."
    if rule.min_tier is not None:
        ok = to.tier >= rule.min_tier
        yield (
            ok,
            f"{rule.source} — minimum trust tier {rule.min_tier}; {to.name} has tier {to.tier}.",
        )
    if rule.note is not None:
        yield True, rule.note


def _check_tlp(rule: Rule, to: Who, namers: Sequence[Rule]) -> Finding:
    level, src = rule.tlp, rule.source
    if level == "clear":
        return True, f"{src} — any partner may receive it."
    if level == "green":
        if to.shared:
            shared = ", ".join(sorted(to.shared))
            return (
                True,
                f"{src} — partners sharing a community with this node; {to.name} shares {shared}.",
            )
        return (
            False,
            f"{src} — only partners sharing a community with this node; {to.name} shares none.",
        )
    if level == "red":
        return False, f"{src} — never released by a node."
    return _check_named(src, to, namers)


def _check_named(src: str, to: Who, namers: Sequence[Rule]) -> Finding:
    rule = "only partners named by a releasability marking"
    if not namers:
        return False, f"{src} — {rule}; the object carries none, so nobody is named."
    for namer in namers:
        if namer.names is not None and namer.names & to.keys:
            return True, f"{src} — {rule}; {to.name} is named by {namer.source}."
    return False, f"{src} — {rule}; {to.name} is not named."


def check_onward(rule: Rule, to: Who, origin: str) -> Iterator[Finding]:
    """Findings for material received from ``origin``: may it go on to this recipient?"""
    if rule.refusal is not None:
        return
    src = f"received from {origin}: {rule.source}"
    if rule.tlp == "amber+strict":
        yield False, f"{src} — {tlp_label('amber+strict')} material is never re-released."
    elif rule.onward == "denied" and rule.tlp is None:
        yield False, f"{src} — onward sharing is denied; it is never re-released."
    elif rule.onward == "originator-approval" and rule.tlp is None:
        if rule.names is not None and rule.names & to.keys:
            yield (
                True,
                f"{src} — onward sharing needs {origin}'s approval, which naming "
                f"{to.name} in its releasable_to gives.",
            )
        else:
            yield (
                False,
                f"{src} — onward sharing needs {origin}'s approval, and its "
                f"releasable_to does not name {to.name}.",
            )
