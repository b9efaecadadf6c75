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
    p = params or FingerprintParams()
    if not isinstance(view, dict) or not isinstance(view.get("type"), str):
        return FingerprintDecision(False, "not a STIX object: nothing to fingerprint")
    kind = view["type"]
    if kind in p.marked_types:
        return FingerprintDecision(True, f"type {kind} is always fingerprinted")
    if kind in p.plain_types:
        return FingerprintDecision(False, f"type {kind} is released unmodified")
    if not markable(view):
        return FingerprintDecision(
            False, f"{kind} objects carry no fingerprint (ids and definitions stay identical)"
        )
    refs = _marking_refs(view)
    granular = view.get("granular_markings")
    if not refs:
        return FingerprintDecision(True, "no marking: fingerprinted (fail closed)")
    if granular:
        return FingerprintDecision(True, "granular markings: fingerprinted (fail closed)")
    names = [tlp_level(r) for r in refs]
    plain = all(r in p.plain_markings or (n is not None and n in p.plain_markings)
                for r, n in zip(refs, names, strict=True))
    if plain:
        shown = ", ".join(f"TLP:{n.upper()}" if n else r for r, n in zip(refs, names, strict=True))
        return FingerprintDecision(False, f"{shown}: released unmodified (public content)")
    levels = sorted({n.upper() for n in names if n})
    what = f"TLP:{'/'.join(levels)}" if levels else "its markings"
    return FingerprintDecision(True, f"{what}: fingerprinted for each partner")


def fingerprinted(view: Any, params: FingerprintParams | None = None) -> bool:
    """True if the release path serves ``view`` with a per-partner fingerprint."""
    return decide(view, params).fingerprinted
