"""Policy classes: one decision per (object version, class), shared by its partners.

A partner's **policy class** is what the policy reads of it besides its name and identity:
``(tier, communities)`` of its :class:`~detente.policy.model.Recipient` (the tier already
includes caps and earned trust).  Within a class the decision of an object version is
taken once, for the class's *anonymous recipient* — a recipient with those inputs, a name
no partner can have (it holds a NUL) and no identity — and each member receives that
decision with the anonymous name replaced by its own in the reasons.

That is the member's own decision unless its name or identity can make a difference.
``decide`` reads the recipient's name and identity ids in exactly two ways: as the
reasons' wording, and through ``Who.keys`` membership tests against strings taken from
the inputs it reads (``releasable_to`` / ACS lists of marking definitions, references in
the object, audience entries) — plus the judge's own test "the object came from this
partner".  So while the anonymous decision is taken, every string of every input it
reads (the object, the marking definitions it references, and, recursively, every object
a reference check decides) is matched against every partner's name and identity ids, and
every origin met is noted: the decision records the partners it is **sensitive** to.  A
member that is not sensitive answers every membership test exactly as the anonymous
recipient does (both hold the class's communities; neither's other keys occur in the
inputs), so its decision is the anonymous one with its name in the reasons.  A sensitive
member — named by a marking, referenced by its identity, the source of the object or of
something it references — is decided on its own, as before.  A decision that met a
reference cycle or came near the depth limit is never shared (its answer depends on the
order objects were decided in).

Shared decisions are kept per *generation*: the newest stored version, the marking
definitions and the partners' names and identities that the deciding judge read.  Judges
share a decision only when they read the same inputs from the same store state; any new
version, marking or partner change starts a new generation.  The memo is bounded
(:data:`MEMO_SIZE`).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from detente.policy.model import Decision, Recipient

__all__ = ["ANONYMOUS", "MEMO_SIZE", "ClassMemo", "Shared", "class_key", "named", "owners_of",
           "strings_of"]

#: the name of a class's anonymous recipient: no partner name can hold a NUL
ANONYMOUS = "\x00class\x00"

#: shared decisions kept: a round-robin turn of the releaser (one chunk per partner)
#: needs one chunk's worth per class — 8 classes of 500-version chunks; more classes
#: take dropped decisions again (slower, never wrong)
MEMO_SIZE = 4096

#: a decision sensitive to every partner (never shared)
EVERYONE: frozenset[str] = frozenset({ANONYMOUS})


def class_key(recipient: Recipient) -> tuple[int, frozenset[str]]:
    """The policy inputs a partner shares with the other members of its class."""
    return recipient.tier, recipient.communities


@dataclass(frozen=True, slots=True)
class Shared:
    """A decision taken for a class's anonymous recipient, and the partners it does not
    hold for (:data:`EVERYONE`: none — decide each partner on its own)."""

    decision: Decision
    sensitive: frozenset[str]

    def holds_for(self, partner: str) -> bool:
        return ANONYMOUS not in self.sensitive and partner not in self.sensitive


def named(decision: Decision, partner: str) -> Decision:
    """The anonymous decision as ``partner``'s own: its name in the reasons."""
    if not any(ANONYMOUS in r for r in decision.reasons):
        return decision
    return Decision(decision.verdict, tuple(r.replace(ANONYMOUS, partner)
                                            for r in decision.reasons),
                    removed=decision.removed, view=decision.view, onward=decision.onward,
                    attribution=decision.attribution)


def owners_of(partners: Iterable[tuple[str, Iterable[str | None]]]) -> dict[str, frozenset[str]]:
    """string -> the partners it names (their name, their identity ids)."""
    out: dict[str, set[str]] = {}
    for name, identities in partners:
        for key in (name, *identities):
            if key:
                out.setdefault(key, set()).add(name)
    return {k: frozenset(v) for k, v in out.items()}


def strings_of(value: Any, owners: Mapping[str, frozenset[str]], found: set[str]) -> None:
    """Add to ``found`` the partners named by any string (key or value) in ``value``;
    a string holding the anonymous name makes the decision unshareable."""
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str:
            hit = owners.get(item)
            if hit is not None:
                found.update(hit)
            if "\x00" in item:
                found.add(ANONYMOUS)
        elif kind is dict:
            for k, v in item.items():
                stack.append(k)
                stack.append(v)
        elif kind is list or kind is tuple:
            stack.extend(item)


class ClassMemo:
    """Shared decisions by (class, generation, object version): bounded, thread-safe."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[Hashable, Shared] = OrderedDict()
        #: decisions shared with another partner / taken for a class (for tests, benches)
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Shared | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return hit

    def put(self, key: Hashable, value: Shared) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
