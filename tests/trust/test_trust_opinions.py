"""Opinions on one node, on both store backends: a partner's opinion about what we
released to it is evidence about it once our verdict resolves the report; our verdict
becomes our opinion for exactly the report's holders, and the report is withheld."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from tests.federation.fed_fixtures import indicator

from detente.federation.exchange.intake import Intake, Source
from detente.node import Node
from detente.opinions import opinion_object, refuted_audiences, stance_of, value_for
from detente.usecases.opinion import verdict


def _key() -> str:
    import base64

    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


@pytest.fixture
def node(tmp_path: Path, store_url: str) -> Iterator[Node]:
    us = Node.init(tmp_path / "us", "us", store_url=store_url, communities="coalition")
    for name in ("fr", "ru", "de"):
        us.partners.add(name, url="http://127.0.0.1:9", public_key=_key(), tier=3,
                        communities=frozenset({"coalition"} if name != "de" else ()),
                        identity_id=f"identity--{uuid.uuid4()}")
    try:
        yield us
    finally:
        us.close()


def _receive(node: Node, partner: str, *objs: dict[str, object]) -> None:
    with Intake(node, Source.partner(node, partner)) as intake:
        assert not intake.receive(list(objs)).failures


def test_opinions_feed_trust_and_our_verdict_goes_to_the_holders(node: Node) -> None:
    ru, fr = node.partners.get("ru"), node.partners.get("fr")
    lie = indicator("green", name="Imminent attack staging server", created_by_ref=ru.identity_id,
                    labels=["imminent"])
    _receive(node, "ru", lie)
    node.releaser.catch_up("fr")
    node.releaser.catch_up("de")
    assert node.releaser.recipients_of(str(lie["id"])) == {"fr"}
    theirs, rel = opinion_object(str(fr.identity_id), str(lie["id"]), "disagree",
                                 "sinkholed", [node.identity_id])
    _receive(node, "fr", rel, theirs)
    assert [o.said for o in node.trust.opinions_about(str(lie["id"]))] == ["fr disputes"]
    assert node.trust.opinion_record("fr") == (0, 0, 1)
    assert [h.detail for h in node.trust.history("fr") if h.kind == "opinion"] == [
        "fr disputes (disagree): sinkholed"]
    before = node.trust.reliability("fr")
    judged, ours = verdict(node, str(lie["id"]), "refuted", "no such server")
    assert judged == ["ru"] and sorted(ours.audience) == ["fr", "ru"]
    assert ours.withdrawn == {"fr": 1}
    after = node.trust.reliability("fr")
    assert node.trust.opinion_record("fr") == (1, 0, 0)
    assert after.mean > before.mean and after.n > before.n
    said = [o.said for o in node.trust.opinions_about(str(lie["id"]))]
    assert said == ["fr disputes", "we dispute"]
    # the holds: withheld from all (the default), names resolved when asked to keep some
    assert refuted_audiences(node.store, node.identity_id, lambda names: frozenset()) == {
        str(lie["id"]): frozenset()}
    kept = refuted_audiences(node.store, node.identity_id, frozenset)
    assert kept[str(lie["id"])] == {str(fr.identity_id), str(ru.identity_id)}
    assert all(not d.allowed for p, d in node.releaser.matrix(str(lie["id"])))


def test_opinion_values_and_building() -> None:
    assert value_for("confirmed", strong=True) == "strongly-agree"
    assert value_for("refuted", strong=False) == "disagree"
    assert [stance_of(v) for v in ("strongly-disagree", "neutral", "agree", "bogus", 3)] == \
        [-2, 0, 1, 0, 0]
    with pytest.raises(ValueError):
        value_for("expired", strong=True)
    with pytest.raises(ValueError):
        opinion_object("identity--x", "indicator--y", "maybe", "", ["fr"])
    with pytest.raises(ValueError):  # fail closed: an opinion for nobody is refused
        opinion_object("identity--x", "indicator--y", "agree", "", [])
    body, rel = opinion_object("identity--5f5d5f9c-0d44-4b5a-9a0c-6c3c0c6b1c11",
                               "indicator--y", "agree", "  seen  ", ["b", "a", "a"])
    ext = next(iter(rel["extensions"].values()))
    assert ext["releasable_to"] == ["a", "b"] and ext["onward"] == "denied"
    assert body["explanation"] == "seen" and rel["id"] in body["object_marking_refs"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["fr", "ru", "de", "it", "pl", "uk"]),
                          st.integers(0, 4), st.booleans()), min_size=1, max_size=6,
                unique_by=lambda t: t[0]),
       st.sets(st.sampled_from(["fr", "ru", "de", "it", "pl", "uk"]), min_size=1),
       st.booleans())
def test_an_opinion_is_released_to_its_audience_only(
        partners: list[tuple[str, int, bool]], audience: set[str], visible: bool) -> None:
    """Whatever the recipients' tiers and communities, and whether the object it is about
    is visible to them, the policy releases our opinion to nobody outside its audience,
    and to a member only when it may see what the opinion is about."""
    from detente.policy import decide
    from detente.policy.model import NodeContext, Recipient

    me = "identity--5f5d5f9c-0d44-4b5a-9a0c-6c3c0c6b1c11"
    ids = {name: f"identity--{uuid.uuid5(uuid.NAMESPACE_DNS, name)}" for name, _, _ in partners}
    names = [ids.get(n, n) for n in sorted(audience)]
    body, rel = opinion_object(me, "indicator--9d2ec2c3-2a6f-4f5b-8f52-2f7b1f3b6b1a",
                               "disagree", "why", names)
    ctx = NodeContext(name="us", identity_id=me, communities=frozenset({"coalition"}),
                      default_tlp=None, markings={rel["id"]: rel}, partner_identities=ids,
                      ref_visible=lambda ref: visible)
    for name, tier, shared in partners:
        who = Recipient(name, ids[name], frozenset({"coalition"} if shared else ()), tier)
        allowed = decide(body, who, ctx).allowed
        assert allowed == (name in audience and visible), (name, audience, visible)
