"""Where fingerprints go: which views are released unmodified, and why.

A leak of public data harms nobody, so TLP:CLEAR content is released byte-identical to
every partner; everything else is fingerprinted.  The rule is configurable per marking
and per type (:class:`~detente.fingerprint.params.FingerprintParams`), and it fails
closed: a view without any marking, or with any marking outside ``plain_markings``, is
fingerprinted.  :func:`decide` is what :meth:`Fingerprinter.embed` applies and what the
policy explainer and the object page show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from detente.fingerprint.channels.slots import markable
from detente.fingerprint.params import FingerprintParams
from detente.stix.vocab import tlp_level


@dataclass(frozen=True)
class FingerprintDecision:
    """Whether a view is fingerprinted, and the reason in words."""

    fingerprinted: bool
    reason: str

    def __bool__(self) -> bool:
        return self.fingerprinted


def _marking_refs(view: dict[str, Any]) -> list[str]:
    refs = view.get("object_marking_refs")
    return [r for r in refs if isinstance(r, str)] if isinstance(refs, list) else []


def decide(view: Any, params: FingerprintParams | None = None) -> FingerprintDecision:
    """Is ``view`` fingerprinted when released?  (See the module docstring for the rule.)"""
    marked, clause, detail = _rule(view, params or FingerprintParams())
    return FingerprintDecision(marked, _reason(clause, detail))


def _rule(view: Any, p: FingerprintParams) -> tuple[bool, str, Any]:
    """(fingerprinted, the clause of the rule that decided, what it decided on): the rule
    alone — the release path asks it for every view it derives, and needs no words."""
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        return False, "not-stix", None
    kind = view["type"]
    if kind in p.marked_types:
        return True, "marked-type", kind
    if kind in p.plain_types:
        return False, "plain-type", kind
    if not markable(view):
        return False, "unmarkable", kind
    refs = _marking_refs(view)
    if not refs:
        return True, "no-marking", None
    if view.get("granular_markings"):
        return True, "granular", None
    names = [tlp_level(r) for r in refs]
    for r, n in zip(refs, names, strict=True):
        if not (r in p.plain_markings or (n is not None and n in p.plain_markings)):
            return True, "marked", (refs, names)
    return False, "plain", (refs, names)


def _reason(clause: str, detail: Any) -> str:
    """The reason in words for the clause of :func:`_rule` that decided."""
    if clause == "not-stix":
        return "not a STIX object: nothing to fingerprint"
    if clause == "marked-type":
        return f"type {detail} is always fingerprinted"
    if clause == "plain-type":
        return f"type {detail} is released unmodified"
    if clause == "unmarkable":
        return f"{detail} objects carry no fingerprint (ids and definitions stay identical)"
    if clause == "no-marking":
        return "no marking: fingerprinted (fail closed)"
    if clause == "granular":
        return "granular markings: fingerprinted (fail closed)"
    refs, names = detail
    if clause == "plain":
        shown = ", ".join(f"TLP:{n.upper()}" if n else r for r, n in zip(refs, names, strict=True))
        return f"{shown}: released unmodified (public content)"
    levels = sorted({n.upper() for n in names if n})
    what = f"TLP:{'/'.join(levels)}" if levels else "its markings"
    return f"{what}: fingerprinted for each partner"


def fingerprinted(view: Any, params: FingerprintParams | None = None) -> bool:
    """True if the release path serves ``view`` with a per-partner fingerprint."""
    return _rule(view, params or FingerprintParams())[0]
