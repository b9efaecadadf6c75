"""Our verdicts as opinions to partners, and a partner's opinion adopted as our verdict.

``detente evidence confirm|refute``, ``evidence sighting`` and ``evidence adopt`` (and
the UI's buttons) all end here:

(1) the verdict is recorded by earned trust (``TrustEngine.confirm`` / ``refute``, or our
    sighting through the intake path);
(2) if the object is a partner's (or a feed's) and anyone holds it through us, our
    opinion about it is ingested like any local object: a STIX ``opinion`` under
    TLP:AMBER and a releasability marking naming exactly its source and every partner
    the release records say received it (:func:`audience`) — the release path then sends
    it to them, and to nobody else;
(3) when we disagree, every live release of the object is re-decided: the node's holds
    (``Node._refuted_holds``) withhold it from everyone, or with ``refuted_release =
    "with-opinion"`` from everyone but our opinion's audience, so it is never relayed
    onward bare.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from detente.errors import NotFoundError, ValidationError
from detente.federation.exchange.local import ingest_local
from detente.node import Node
from detente.opinions import opinion_object, stance_of, value_for
from detente.partners import Partner
from detente.store.base import LOCAL, StoredObject, is_partner_origin

__all__ = ["Adopted", "OpinionResult", "adopt", "audience", "describe", "give_opinion",
           "sighting_opinion", "verdict"]


@dataclass(frozen=True, slots=True)
class OpinionResult:
    """Our opinion about one object (None: nobody holds it through us, or it is ours)."""

    object_id: str
    opinion: dict[str, Any] | None
    #: partner names the opinion is for
    audience: tuple[str, ...] = ()
    #: releases of the object withdrawn, by partner
    withdrawn: dict[str, int] = field(default_factory=dict)
    #: why no opinion was made
    note: str = ""


@dataclass(frozen=True, slots=True)
class Adopted:
    opinion_id: str
    partner: str
    outcome: str
    results: tuple[tuple[list[str], OpinionResult], ...]


def _held(node: Node, object_id: str) -> StoredObject:
    obj = node.store.get(object_id)
    if obj is None:
        raise NotFoundError(f"no object {object_id} in this node",
                            hint="see 'detente list'")
    return obj


def audience(node: Node, obj: StoredObject) -> list[Partner]:
    """The partners who hold ``obj`` through us or gave it to us: its source (when a
    partner) and every partner a version of it was ever released to (the release
    records).  Partners since removed are not among them."""
    names = node.releaser.recipients_of(obj.id)
    if is_partner_origin(obj.provenance.origin):
        names.add(obj.provenance.origin)
    return [p for p in node.partners.all() if p.name in names]


def give_opinion(node: Node, object_id: str, value: str, why: str) -> OpinionResult:
    """(2) and (3): our opinion about a partner's object, for exactly its audience."""
    obj = _held(node, object_id)
    if obj.provenance.origin == LOCAL:
        return OpinionResult(object_id, None, note="our own object: no opinion to send")
    to = audience(node, obj)
    if not to:
        return OpinionResult(object_id, None,
                             note="no partner holds it through us: no opinion to send")
    body, rel = opinion_object(node.identity_id, object_id, value, why,
                               [p.identity_id or p.name for p in to])
    summary = ingest_local(node, [("marking", rel), ("opinion", body)], strict=True)
    if summary.rejected:
        raise ValidationError(f"our opinion was rejected: {summary.rejected[0].reason}")
    withdrawn: dict[str, int] = {}
    if stance_of(value) < 0:
        runs = node.releaser.withdraw_held(object_id)
        withdrawn = {name: run.withdrawn for name, run in runs.items() if run.withdrawn}
    return OpinionResult(object_id, body, tuple(p.name for p in to), withdrawn)


def sighting_opinion(node: Node, object_id: str, sighting: dict[str, Any],
                     note: str = "") -> OpinionResult:
    """Our opinion after our sighting of ``object_id``: agree, or disagree when it was a
    false positive; the note (or what we saw) is the explanation."""
    false_positive = bool(sighting.get("x_false_positive"))
    seen = "seen in our network" + (", benign" if false_positive else "")
    why = note.strip() or f"{seen} ({sighting.get('count')} times; our sighting " \
        f"{sighting.get('id')})"
    return give_opinion(node, object_id, "disagree" if false_positive else "agree", why)


def verdict(node: Node, object_id: str, outcome: str, why: str) -> tuple[list[str],
                                                                          OpinionResult]:
    """(1)-(3) for the analyst's ``confirmed`` / ``refuted``: the partners whose reports
    were judged, and our opinion."""
    _held(node, object_id)
    judge = node.trust.confirm if outcome == "confirmed" else node.trust.refute
    judged = judge(object_id, why)
    return judged, give_opinion(node, object_id, value_for(outcome, strong=True), why)


def adopt(node: Node, opinion_id: str) -> Adopted:
    """Accept a partner's opinion as our own verdict on what it is about: a disagreeing
    opinion refutes, an agreeing one confirms, the opinion (author, id, explanation) the
    recorded reason; our opinion then goes to the object's audience as for any verdict."""
    obj = node.store.get(opinion_id)
    if obj is None:
        raise NotFoundError(f"no opinion {opinion_id} in this node",
                            hint="the partners' opinions about an object: detente show ID")
    if obj.type != "opinion":
        raise ValidationError(f"{opinion_id} is a {obj.type}, not an opinion",
                              hint="adopt an opinion--… id (see detente show ID)")
    body = obj.body
    if obj.provenance.origin == LOCAL or body.get("created_by_ref") == node.identity_id:
        raise ValidationError(f"{opinion_id} is our own opinion: it already is our verdict")
    stance = stance_of(body.get("opinion"))
    if stance == 0:
        raise ValidationError(f"{opinion_id} is neutral ({body.get('opinion')!r}): "
                              "nothing to adopt")
    refs = body.get("object_refs")
    targets = [r for r in refs if isinstance(r, str) and node.store.get(r) is not None] \
        if isinstance(refs, list) else []
    if not targets:
        raise NotFoundError(f"{opinion_id} is about nothing this node holds")
    outcome = "confirmed" if stance > 0 else "refuted"
    who = obj.provenance.origin
    explanation = body.get("explanation")
    why = f"adopted {who}'s opinion {opinion_id}" + (
        f": {explanation}" if isinstance(explanation, str) and explanation.strip() else "")
    results = tuple(verdict(node, t, outcome, why) for t in targets)
    return Adopted(opinion_id, who, outcome, results)


def describe(results: Sequence[OpinionResult]) -> list[str]:
    """One line per result, for the CLI and the UI."""
    out = []
    for r in results:
        if r.opinion is None:
            out.append(f"{r.object_id}: {r.note}")
            continue
        line = (f"opinion {r.opinion['id']} ({r.opinion['opinion']}) for "
                f"{', '.join(r.audience)}")
        if r.withdrawn:
            line += "; withdrawn from " + ", ".join(f"{p} ({n})" for p, n in
                                                     sorted(r.withdrawn.items()))
        out.append(line)
    return out
