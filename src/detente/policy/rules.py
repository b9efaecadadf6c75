"""One parsed handling rule, and how rules combine.

A marking-definition resolves to one or more :class:`Rule` values.  A rule is what the
marking says, independent of any recipient: a TLP level, a releasable-to list, a minimum
tier, an onward-sharing rule, redactions, an attribution rule — or a ``refusal``, the reason
an unknown or malformed marking denies everyone (fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ATTRIBUTION_ORDER",
    "ONWARD_ORDER",
    "TLP_LEVELS",
    "TLP_ONWARD",
    "Rule",
    "strictest_attribution",
    "strictest_onward",
    "tlp_label",
]

#: TLP 2.0 levels, least to most restrictive
TLP_LEVELS: tuple[str, ...] = ("clear", "green", "amber", "amber+strict", "red")

#: onward-sharing rule implied by each TLP level
TLP_ONWARD: dict[str, str] = {
    "clear": "allowed",
    "green": "allowed",
    "amber": "originator-approval",
    "amber+strict": "denied",
    "red": "denied",
}

#: least to most restrictive
ONWARD_ORDER: tuple[str, ...] = ("allowed", "originator-approval", "denied")
#: least to most restrictive for the provider's wishes (see docs/policy.md)
ATTRIBUTION_ORDER: tuple[str, ...] = ("may", "must", "must-not")


@dataclass(frozen=True, slots=True)
class Rule:
    """What one marking (or one part of it) requires, before any recipient is known."""

    #: names the marking in reasons, e.g. "TLP:AMBER" or "detente releasability marking-…"
    source: str
    tlp: str | None = None
    #: releasable-to entries (partner names, community names, identity ids); None: no list
    names: frozenset[str] | None = None
    min_tier: int | None = None
    onward: str | None = None
    attribution: str | None = None
    #: (tier, selectors): strip the selectors when the recipient's tier is below ``tier``
    redact: tuple[tuple[int, tuple[str, ...]], ...] = ()
    #: reason this rule denies every recipient (unknown, malformed, unsupported restriction)
    refusal: str | None = None
    #: informational sentence (statement markings, obligations carried with the view)
    note: str | None = None


def tlp_label(level: str) -> str:
    return "TLP:" + level.upper()


def strictest_onward(values: Iterable[str | None]) -> str:
    """The most restrictive onward rule; ``denied`` when nothing says otherwise is wrong,
    so callers always include at least the TLP-derived value."""
    return _strictest(values, ONWARD_ORDER, default="denied")


def strictest_attribution(values: Iterable[str | None]) -> str:
    return _strictest(values, ATTRIBUTION_ORDER, default="may")


def _strictest(values: Iterable[str | None], order: tuple[str, ...], default: str) -> str:
    best = -1
    for value in values:
        if value is not None:
            best = max(best, order.index(value))
    return order[best] if best >= 0 else default
