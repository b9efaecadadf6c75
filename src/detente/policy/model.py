"""What the release policy decides over, and what it answers.

``decide(obj, recipient, ctx) -> Decision`` is a pure function: same inputs, same answer,
no I/O.  A Decision always carries every reason and every removed field, so "why can
Russia see this?" has an answer.  Fail closed: no applicable rule means deny.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = ["Decision", "NodeContext", "Recipient", "Verdict"]


class Verdict(StrEnum):
    ALLOW = "allow"
    ALLOW_REDACTED = "allow-redacted"
    DENY = "deny"


@dataclass(frozen=True, slots=True)
class Recipient:
    """The partner a view is cut for, as the policy sees it."""

    name: str
    identity_id: str | None
    communities: frozenset[str]
    tier: int


@dataclass(frozen=True, slots=True)
class NodeContext:
    """The releasing node's side of a decision."""

    #: this node's name and STIX identity id
    name: str
    identity_id: str
    communities: frozenset[str]
    #: TLP applied when an object carries none: "clear", "green", "amber" or None (deny)
    default_tlp: str | None
    #: marking-definition objects known to the node, by id (to read detente
    #: releasability, IEP 2.0 and ACS 3.0 markings); TLP ids are built in
    markings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: partner the object was received from (None: created locally)
    origin: str | None = None
    #: identity ids of known partners, by partner name (ACS permitted_organizations etc.)
    partner_identities: Mapping[str, str] = field(default_factory=dict)
    #: may the recipient see the object with this id?  Every ``*_ref``/``*_refs`` of a
    #: view is checked with it (hidden ones are dropped, or the object denied when the
    #: reference is required); None means refs are kept as they are
    ref_visible: Callable[[str], bool] | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]
    #: property paths stripped from the view (e.g. "description", "object_refs[3]")
    removed: tuple[str, ...] = ()
    #: the redacted object, exactly as it may be released (None when denied)
    view: Mapping[str, Any] | None = None
    #: onward-sharing rule that travels with the view: allowed | originator-approval | denied
    onward: str = "denied"
    #: provider attribution rule: must | may | must-not
    attribution: str = "may"

    @property
    def allowed(self) -> bool:
        return self.verdict is not Verdict.DENY

    @classmethod
    def deny(cls, *reasons: str) -> Decision:
        return cls(Verdict.DENY, tuple(reasons))
