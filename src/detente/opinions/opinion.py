"""Opinions between partners: STIX 2.1 ``opinion`` objects about each other's reports.

Ours: when the analyst confirms, refutes or sights a partner's object, the node writes an
``opinion`` (``created_by_ref`` our identity, ``object_refs`` that object, ``explanation``
the analyst's reason) under TLP:AMBER and a releasability marking that names exactly the
partners who already hold the object: its source, and every partner we released it to
(:func:`opinion_object`).  The release policy then sends it to them and to nobody else.

Theirs: a partner's opinion about an object we hold is evidence about *that partner*
(:meth:`Model.opinion_terms <detente.trust.model.Model>`): once the object is resolved —
by our own verdict, or, more weakly, by other partners' opinions — an opinion that got it
right counts for its author like a confirmed report, one that got it wrong like a refuted
one.  Opinions are also what :func:`refuted_audiences` reads: a report we refuted is
withheld from everyone except, when the node is set so, the partners our opinion names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from detente.policy.releasability import RELEASABILITY_EXTENSION_ID, releasability_marking
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.vocab import TLP_2_0_IDS
from detente.store.base import LOCAL, Query, Store

__all__ = ["OPINION_VALUES", "OpinionRecord", "Stance", "opinion_object", "refuted_audiences",
           "stance_of", "value_for"]

#: STIX 2.1 opinion-enum, from -2 to +2
OPINION_VALUES = ("strongly-disagree", "disagree", "neutral", "agree", "strongly-agree")
_STANCE = {v: i - 2 for i, v in enumerate(OPINION_VALUES)}
MAX_EXPLANATION = 4000


@dataclass(frozen=True, slots=True)
class Stance:
    """An opinion as the trust model sees it: who, about what, which way (-2..+2), when."""

    partner: str
    object_id: str
    stance: int
    time: int


@dataclass(frozen=True, slots=True)
class OpinionRecord:
    """An opinion held here, for display (partner ``local``: ours)."""

    id: str
    partner: str
    object_id: str
    value: str
    explanation: str
    time: int

    @property
    def who(self) -> str:
        return "we" if self.partner == LOCAL else self.partner

    @property
    def said(self) -> str:
        """"fr agrees", "ru disputes", "we dispute" (the display's phrase)."""
        s = stance_of(self.value)
        if self.partner == LOCAL:
            return "we " + ("agree" if s > 0 else "dispute" if s < 0 else "are neutral")
        return f"{self.partner} " + ("agrees" if s > 0 else "disputes" if s < 0
                                     else "is neutral")


def stance_of(value: object) -> int:
    """-2..+2 for an opinion-enum value; 0 for anything else (not evidence)."""
    return _STANCE.get(value, 0) if isinstance(value, str) else 0


def value_for(outcome: str, *, strong: bool) -> str:
    """The opinion value of our verdict: ``confirmed`` agrees, ``refuted`` disagrees."""
    if outcome not in ("confirmed", "refuted"):
        raise ValueError(f"no opinion for outcome {outcome!r}")
    agree = outcome == "confirmed"
    return ("strongly-" if strong else "") + ("agree" if agree else "disagree")


def opinion_object(author: str, object_id: str, value: str, why: str,
                   audience: Sequence[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(opinion, releasability marking) of our opinion about ``object_id`` for exactly the
    identities or partner names ``audience`` (fail closed: an empty audience is refused)."""
    if value not in _STANCE:
        raise ValueError(f"{value!r} is not a STIX opinion value")
    if not audience:
        raise ValueError("an opinion names the partners it is for")
    rel = releasability_marking(releasable_to=sorted(set(audience)), onward="denied",
                                created_by_ref=author)
    stamp = format_micros(now_micros())
    body: dict[str, Any] = {
        "type": "opinion", "spec_version": "2.1", "id": f"opinion--{uuid.uuid4()}",
        "created": stamp, "modified": stamp, "created_by_ref": author,
        "opinion": value, "object_refs": [object_id],
        "object_marking_refs": [TLP_2_0_IDS["amber"], rel["id"]],
    }
    text = why.strip()[:MAX_EXPLANATION]
    if text:
        body["explanation"] = text
    return body, rel


def refuted_audiences(store: Store, identity_id: str,
                      names_of: Callable[[Iterable[str]], frozenset[str]]
                      ) -> dict[str, frozenset[str]]:
    """Object id -> the partners our latest disagreeing opinion about it names, for every
    object we disagree with (read from our own opinions in the store; ``names_of`` turns
    identity ids and names of a releasability list into partner names).  An opinion whose
    audience cannot be read maps to no partner: fail closed."""
    out: dict[str, frozenset[str]] = {}
    latest: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for obj in store.iter_all(Query(types=("opinion",), origins=(LOCAL,))):
        body = obj.body
        if body.get("created_by_ref") != identity_id:
            continue
        refs = body.get("object_refs")
        for ref in refs if isinstance(refs, list) else ():
            if isinstance(ref, str):
                stamp = str(body.get("modified", ""))
                if ref not in latest or latest[ref][0] < stamp:
                    latest[ref] = (stamp, body)
    for ref, (_, mine) in latest.items():
        if stance_of(mine.get("opinion")) < 0:
            out[ref] = names_of(_audience(store, mine))
    return out


def _audience(store: Store, body: Mapping[str, Any]) -> list[str]:
    names: list[str] = []
    refs = body.get("object_marking_refs")
    for mid in refs if isinstance(refs, list) else ():
        md = store.get(mid) if isinstance(mid, str) and mid not in TLP_2_0_IDS.values() \
            else None
        ext = md.body.get("extensions", {}).get(RELEASABILITY_EXTENSION_ID) \
            if md is not None and isinstance(md.body.get("extensions"), dict) else None
        if isinstance(ext, dict) and isinstance(ext.get("releasable_to"), list):
            names += [n for n in ext["releasable_to"] if isinstance(n, str)]
    return names
