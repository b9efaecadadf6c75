"""Decide once per policy class (issue 13, item 2).

Partners with the same tier and communities share one decision per object version, unless
what the policy reads of the object names one of them (a releasability marking, a
reference to its identity, the object or something it references came from it).  The
property: over generated partners and objects, the decisions the release path takes by
class are exactly the decisions ``policy explain`` takes partner by partner — verdict,
every reason, every removed field, the view — and what each partner is served after a
catch-up is exactly what those decisions allow.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from detente.node import Node
from detente.policy import releasability_marking
from detente.release import read_releases, release_pending
from detente.release.classes import ANONYMOUS
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

T0 = "2024-01-01T00:00:00.000Z"
NAMES = ("p0", "p1", "p2", "p3")
IDENTITIES = tuple(f"identity--{uuid.UUID(int=1000 + i, version=4)}" for i in range(4))
COMMUNITIES = ("coalition", "nato")


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n + 1, version=4)}"


partner_st = st.tuples(st.integers(0, 3), st.frozensets(st.sampled_from(COMMUNITIES)))
#: names a releasability marking may list: partners, their identities, communities
audience_st = st.frozensets(st.sampled_from(NAMES + IDENTITIES + COMMUNITIES), min_size=1,
                            max_size=3)
object_st = st.fixed_dictionaries({
    "kind": st.sampled_from(["indicator", "identity", "relationship", "sighting"]),
    "tlp": st.sampled_from(["clear", "green", "amber", "red", None]),
    "releasable_to": st.none() | audience_st,
    "min_tier": st.none() | st.integers(0, 3),
    "redact_below": st.none() | st.integers(1, 3),
    # None: local; else the partner it came from
    "origin": st.none() | st.integers(0, 3),
    # None, "node", a partner identity (int), or an earlier object ("o", k)
    "author": st.none() | st.just("node") | st.integers(0, 3),
    "ref": st.integers(0, 50),
    "ref2": st.none() | st.integers(0, 50) | st.just(-1),
    # a relationship may point at the next object (if it is a relationship pointing
    # back, the two form a reference cycle)
    "forward": st.booleans(),
})


def _build(home: Path, partners: list[tuple[int, frozenset[str]]],
           specs: list[dict[str, Any]], with_identities: bool) -> Node:
    node = Node.init(home / "hub", "hub", communities="coalition")
    for i, (tier, communities) in enumerate(partners):
        node.partners.add(NAMES[i], url=f"http://127.0.0.1:{9100 + i}", public_key=_key(),
                          tier=tier, communities=communities, identity_id=IDENTITIES[i])
    if with_identities:  # the partners' identity objects, so references to them resolve
        node.store.put_many([validate({
            "type": "identity", "spec_version": "2.1", "id": IDENTITIES[i], "created": T0,
            "modified": T0, "name": NAMES[i], "identity_class": "organization",
            "object_marking_refs": [TLP_2_0_IDS["green"]]}) for i in range(len(partners))],
            Provenance())
    made: list[str] = []
    for n, spec in enumerate(specs):
        marks = [TLP_2_0_IDS[spec["tlp"]]] if spec["tlp"] else []
        rules: dict[str, Any] = {}
        if spec["releasable_to"]:
            rules["releasable_to"] = sorted(spec["releasable_to"])
        if spec["min_tier"] is not None:
            rules["min_tier"] = spec["min_tier"]
        if spec["redact_below"] is not None:
            rules["redact_below_tier"] = {spec["redact_below"]: ["description"]}
        if rules:
            marking = releasability_marking(**rules)
            node.store.put_many([validate(marking)], Provenance())
            marks.append(marking["id"])
        body: dict[str, Any] = {"type": spec["kind"], "spec_version": "2.1",
                                "id": _id(spec["kind"], n), "created": T0, "modified": T0,
                                "description": f"object {n}"}
        if marks:
            body["object_marking_refs"] = marks
        author = spec["author"]
        if author == "node":
            body["created_by_ref"] = node.identity_id
        elif isinstance(author, int) and author < len(partners):
            body["created_by_ref"] = IDENTITIES[author]
        earlier = made[spec["ref"] % len(made)] if made else None
        if spec["kind"] == "indicator":
            body.update(name=f"indicator {n}", pattern_type="stix",
                        pattern=f"[ipv4-addr:value = '198.51.100.{n}']", valid_from=T0)
        elif spec["kind"] == "identity":
            body.update(name=f"identity {n}", identity_class="organization")
        elif earlier is None:
            continue
        elif spec["kind"] == "relationship":
            second = spec["ref2"]
            target = (IDENTITIES[0] if second == -1 else
                      made[second % len(made)] if second is not None else earlier)
            if spec["forward"]:
                target = _id("relationship", n + 1)
            body.update(relationship_type="related-to", source_ref=earlier, target_ref=target)
        else:
            body["sighting_of_ref"] = earlier
            if spec["ref2"] is not None:
                body["where_sighted_refs"] = [IDENTITIES[spec["ref2"] % len(partners)]]
        origin = spec["origin"]
        source = (Provenance(origin=NAMES[origin]) if origin is not None
                  and origin < len(partners) else Provenance())
        node.store.put_many([validate(body)], source)
        made.append(body["id"])
    return node


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(partners=st.lists(partner_st, min_size=2, max_size=4),
       specs=st.lists(object_st, min_size=1, max_size=10),
       with_identities=st.booleans())
def test_class_decisions_equal_per_partner_decisions(
    partners: list[tuple[int, frozenset[str]]], specs: list[dict[str, Any]],
    with_identities: bool,
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = _build(Path(tmp), partners, specs, with_identities)
        try:
            book = node.partners.all()
            stored = list(node.store.iter_all(Query(versions=("all",))))
            allowed: dict[str, set[tuple[str, str]]] = {p.name: set() for p in book}
            for obj in stored:
                alone = [node.releaser.decide(obj, p) for p in book]
                assert node.releaser.decide_by_class(obj, book) == alone, obj.id
                for p, d in zip(book, alone, strict=True):
                    if d.allowed:
                        allowed[p.name].add((obj.id, obj.version))
            # the release path itself (by class, round-robin) serves exactly that; the
            # marking definitions a view references travel with it as support
            release_pending(node.releaser)
            for p in book:
                page = read_releases(node.store.engine, p.name, Query(versions=("all",)))
                served = {(v.id, v.version) for v in page.views
                          if v.type != "marking-definition"}
                expected = {k for k in allowed[p.name] if not k[0].startswith("marking-")}
                assert served == expected, p.name
        finally:
            node.close()


def _indicator(n: int, marks: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": _id("indicator", n),
            "created": T0, "modified": T0, "name": f"indicator {n}", "pattern_type": "stix",
            "pattern": f"[ipv4-addr:value = '198.51.100.{n}']", "valid_from": T0,
            "object_marking_refs": marks, **extra}


def test_one_decision_per_class_and_the_named_partner_decided_alone(tmp_path: Path) -> None:
    """Three partners in one class: an indicator is decided once for the class; one that a
    releasability marking names p1 is decided for p1 on its own, and the reasons of every
    partner name that partner."""
    node = _build(tmp_path, [(2, frozenset({"coalition"}))] * 3, [], False)
    try:
        marking = releasability_marking(releasable_to=["p1"])
        plain = _indicator(1, [TLP_2_0_IDS["green"]])
        named = _indicator(2, [TLP_2_0_IDS["amber"], marking["id"]])
        node.store.put_many([validate(marking), validate(plain), validate(named)],
                            Provenance())
        book = node.partners.all()
        memo = node.releaser._memo
        before = memo.hits
        got = node.releaser.decide_by_class(node.store.get(plain["id"]), book)  # type: ignore[arg-type]
        assert memo.hits - before == 2, "p1 and p2 reuse p0's class decision"
        assert [d.allowed for d in got] == [True, True, True]
        for p, d in zip(book, got, strict=True):
            assert any(f"{p.name} shares coalition" in r for r in d.reasons)
            assert not any("\x00" in r for r in d.reasons)
        got = node.releaser.decide_by_class(node.store.get(named["id"]), book)  # type: ignore[arg-type]
        assert [d.allowed for d in got] == [False, True, False]
        assert got == [node.releaser.decide(node.store.get(named["id"]), p) for p in book]  # type: ignore[arg-type]
    finally:
        node.close()


def test_a_new_version_starts_a_new_generation(tmp_path: Path) -> None:
    """A shared decision is never reused after the store changed: a reference target that
    became visible is seen by the next partner at once."""
    node = _build(tmp_path, [(2, frozenset({"coalition"}))] * 2, [], False)
    try:
        target = _indicator(1, [TLP_2_0_IDS["red"]])
        rel: dict[str, Any] = {
               "type": "relationship", "spec_version": "2.1", "id": _id("relationship", 2),
               "created": T0, "modified": T0, "relationship_type": "related-to",
               "source_ref": _id("indicator", 1), "target_ref": _id("indicator", 1),
               "object_marking_refs": [TLP_2_0_IDS["green"]]}
        node.store.put_many([validate(target), validate(rel)], Provenance())
        p0, p1 = node.partners.all()
        stored = node.store.get(rel["id"])
        assert stored is not None
        [d0] = node.releaser.decide_by_class(stored, [p0])
        assert not d0.allowed
        newer = {**target, "modified": "2024-02-01T00:00:00.000Z",
                 "object_marking_refs": [TLP_2_0_IDS["green"]]}
        node.store.put_many([validate(newer)], Provenance())
        [d1] = node.releaser.decide_by_class(stored, [p1])
        assert d1.allowed and d1 == node.releaser.decide(stored, p1)
    finally:
        node.close()


def test_a_reference_cycle_is_decided_per_partner(tmp_path: Path) -> None:
    """Two relationships naming each other: the answer depends on which was decided
    first, so it is never shared — each partner gets exactly its own decision."""
    node = _build(tmp_path, [(2, frozenset({"coalition"}))] * 2, [], False)
    try:
        green = [TLP_2_0_IDS["green"]]
        one, two = _id("relationship", 1), _id("relationship", 2)
        ind = _indicator(3, green)
        a = {"type": "relationship", "spec_version": "2.1", "id": one, "created": T0,
             "modified": T0, "relationship_type": "related-to", "source_ref": ind["id"],
             "target_ref": two, "object_marking_refs": green}
        b = {**a, "id": two, "target_ref": one}
        node.store.put_many([validate(ind), validate(a), validate(b)], Provenance())
        book = node.partners.all()
        memo = node.releaser._memo
        for oid in (one, two):
            stored = node.store.get(oid)
            assert stored is not None
            before = memo.hits
            got = node.releaser.decide_by_class(stored, book)
            assert memo.hits - before == 1  # found in the memo, but not shared: unsafe
            assert got == [node.releaser.decide(stored, p) for p in book]
        shared = [v for k, v in memo._items.items() if k[2] in (one, two)]  # type: ignore[index]
        assert shared and all(ANONYMOUS in v.sensitive for v in shared)
    finally:
        node.close()
