"""No side doors through references (issue 14, finding 2).

A released view must not name an object its recipient may not see: a TLP:CLEAR
relationship pointing at a TLP:RED object tells the partner that object exists, its type
and how it is linked.  Each test performs the attack as a partner would: read everything
released to it and look for ids it was never given.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey

from detente.node import Node
from detente.policy import releasability_marking
from detente.release import read_releases
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

T0 = "2024-01-01T00:00:00.000Z"


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _node(home: Path) -> Node:
    n = Node.init(home / "us", "us", communities="coalition")
    n.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                   communities=frozenset({"coalition"}), tier=3)
    return n


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = _node(tmp_path)
    yield n
    n.close()


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n + 1, version=4)}"


def _sdo(kind: str, n: int, tlp: str | None, **props: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": _id(kind, n),
                            "created": T0, "modified": T0, **props}
    if tlp is not None:
        body["object_marking_refs"] = [TLP_2_0_IDS[tlp]]
    return body


def _indicator(n: int, tlp: str | None, **props: Any) -> dict[str, Any]:
    return _sdo("indicator", n, tlp, name=f"indicator {n}", pattern_type="stix",
                pattern=f"[ipv4-addr:value = '198.51.100.{n % 250}']",
                valid_from="2024-01-01T00:00:00Z", **props)


def _identity(n: int, tlp: str | None) -> dict[str, Any]:
    return _sdo("identity", n, tlp, name=f"identity {n}", identity_class="organization")


def _put(node: Node, *objs: dict[str, Any]) -> None:
    node.store.put_many([validate(o) for o in objs], Provenance())


def _served(node: Node, partner: str = "fr") -> dict[str, dict[str, Any]]:
    node.releaser.catch_up(partner)
    page = read_releases(node.store.engine, partner, Query(versions=("all",)))
    return {v.id: orjson.loads(v.view) for v in page.views}


def _named(view: Any, top: bool = True) -> Iterator[str]:
    """Every id a view names through a *_ref / *_refs property (markings aside) — written
    independently of the policy's own walker."""
    if isinstance(view, dict):
        for key, value in view.items():
            if top and key in ("object_marking_refs", "granular_markings"):
                continue
            if key.endswith("_ref") and isinstance(value, str):
                yield value
            elif key.endswith("_refs") and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))
            else:
                yield from _named(value, top=False)
    elif isinstance(view, list):
        for item in view:
            yield from _named(item, top=False)


def test_a_relationship_to_a_red_object_is_not_released(node: Node) -> None:
    secret = _indicator(1, "red")
    public = _indicator(2, "clear")
    rel = _sdo("relationship", 3, "clear", relationship_type="related-to",
               source_ref=public["id"], target_ref=secret["id"])
    _put(node, secret, public, rel)
    served = _served(node)
    assert public["id"] in served
    assert rel["id"] not in served, "the relationship names the TLP:RED indicator"
    assert not any(secret["id"] in _named(v) for v in served.values())
    why = node.releaser.decide(node.store.get(rel["id"]), node.partners.get("fr"))  # type: ignore[arg-type]
    assert not why.allowed
    assert any("target_ref" in r and "may not see" in r for r in why.reasons)
    assert any("target_ref is required" in r for r in why.reasons)


def test_a_sighting_of_a_red_object_is_not_released(node: Node) -> None:
    secret = _indicator(1, "red")
    sighting = _sdo("sighting", 2, "clear", sighting_of_ref=secret["id"])
    _put(node, secret, sighting)
    served = _served(node)
    assert sighting["id"] not in served
    assert not any(secret["id"] in _named(v) for v in served.values())


def test_a_sighting_loses_the_hidden_places_it_was_seen(node: Node) -> None:
    public = _indicator(1, "clear")
    here, hidden = _identity(2, "clear"), _identity(3, "red")
    sighting = _sdo("sighting", 4, "clear", sighting_of_ref=public["id"],
                    where_sighted_refs=[hidden["id"], here["id"]])
    _put(node, public, here, hidden, sighting)
    view = _served(node)[sighting["id"]]
    assert view["where_sighted_refs"] == [here["id"]]
    d = node.releaser.decide(node.store.get(sighting["id"]), node.partners.get("fr"))  # type: ignore[arg-type]
    assert d.removed == ("where_sighted_refs[0]",)


def test_created_by_a_hidden_identity_is_not_named(node: Node) -> None:
    author = _identity(1, "red")
    obj = _indicator(2, "clear", created_by_ref=author["id"])
    mine = _indicator(3, "clear", created_by_ref=node.identity_id)
    _put(node, author, obj, mine)
    served = _served(node)
    assert "created_by_ref" not in served[obj["id"]]
    assert served[mine["id"]]["created_by_ref"] == node.identity_id, "our own identity is known"


def test_attribution_must_keeps_the_creator(node: Node) -> None:
    author = _identity(1, "red")
    credit = releasability_marking(attribution="must", created_by_ref=node.identity_id)
    obj = _indicator(2, "clear", created_by_ref=author["id"])
    obj["object_marking_refs"].append(credit["id"])
    _put(node, credit, author, obj)
    assert _served(node)[obj["id"]]["created_by_ref"] == author["id"]


def test_a_chain_through_a_hidden_relationship_is_cut(node: Node) -> None:
    """A sighting of a relationship whose target is hidden names a relationship the
    partner may not see: the reference's visibility follows the target's own refs."""
    secret = _indicator(1, "red")
    public = _indicator(2, "clear")
    rel = _sdo("relationship", 3, "clear", relationship_type="related-to",
               source_ref=public["id"], target_ref=secret["id"])
    report = _sdo("report", 4, "clear", name="r", published=T0,
                  object_refs=[public["id"], rel["id"]])
    _put(node, secret, public, rel, report)
    served = _served(node)
    assert served[report["id"]]["object_refs"] == [public["id"]]


KINDS = ("indicator", "identity", "relationship", "sighting", "report")
TLPS = ("clear", "green", "amber", "red", None)

obj_st = st.fixed_dictionaries({
    "kind": st.sampled_from(KINDS),
    "tlp": st.sampled_from(TLPS),
    "refs": st.lists(st.integers(0, 9), min_size=1, max_size=3),
    "creator": st.none() | st.integers(0, 9),
})


def _build(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Objects with random markings and random references among them (cycles included);
    each reference points at an object of a type STIX allows there."""
    ids = {(s["kind"], i): _id(s["kind"], i) for i, s in enumerate(specs)}
    by_kind = {k: [ids[(k2, i)] for (k2, i) in ids if k2 == k] for k in KINDS}
    sdos = by_kind["indicator"] + by_kind["identity"]

    def pick(pool: list[str], n: int) -> str | None:
        return pool[n % len(pool)] if pool else None

    out = []
    for i, s in enumerate(specs):
        kind, tlp, refs = s["kind"], s["tlp"], s["refs"]
        creator = pick(by_kind["identity"], s["creator"]) if s["creator"] is not None else None
        props: dict[str, Any] = {"created_by_ref": creator} if creator else {}
        if kind == "indicator":
            body = _indicator(i, tlp, **props)
        elif kind == "identity":
            body = _identity(i, tlp)
        elif kind == "relationship":
            src, dst = pick(sdos, refs[0]), pick(sdos, refs[-1])
            if src is None or dst is None:
                continue
            body = _sdo(kind, i, tlp, relationship_type="related-to", source_ref=src,
                        target_ref=dst, **props)
        elif kind == "sighting":
            of = pick(sdos, refs[0])
            if of is None:
                continue
            where = sorted({w for n in refs[1:] if (w := pick(by_kind["identity"], n))})
            body = _sdo(kind, i, tlp, sighting_of_ref=of, **props)
            if where:
                body["where_sighted_refs"] = where
        else:
            every = list(ids.values())
            body = _sdo(kind, i, tlp, name=f"report {i}", published=T0,
                        object_refs=sorted({every[n % len(every)] for n in refs}), **props)
        out.append(body)
    return out


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(specs=st.lists(obj_st, min_size=1, max_size=10),
       communities=st.frozensets(st.sampled_from(("coalition", "eu"))))
def test_no_view_names_an_object_its_recipient_may_not_see(
    specs: list[dict[str, Any]], communities: frozenset[str]
) -> None:
    """For every released view, every id it names is the node's or the partner's own
    identity, or an object released to that partner itself.  "May see" is read from what
    the partner was actually given, not from the code that cut the views."""
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.init(Path(tmp) / "us", "us", communities="coalition")
        try:
            node.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                              communities=communities, tier=3,
                              identity_id=_id("identity", 99))
            objs = _build(specs)
            _put(node, *objs)
            served = _served(node)
            may_see = set(served) | {node.identity_id, _id("identity", 99)}
            for oid, view in served.items():
                leaked = set(_named(view)) - may_see
                assert not leaked, f"{oid} names {leaked}, never released to fr"
            # and nothing is held back needlessly: an object whose references are all
            # visible and whose own markings allow fr is released
            p = node.partners.get("fr")
            for body in objs:
                stored = node.store.get(body["id"])
                assert stored is not None
                if body["id"] not in served:
                    assert not node.releaser.decide(stored, p).allowed
        finally:
            node.close()
