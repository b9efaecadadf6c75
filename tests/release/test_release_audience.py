"""Views must not reveal co-recipients (issue 14, finding 3).

A releasability marking lists every partner and community an object may go to.  Sent as
is with a view, it tells the recipient who else received it.  Each test reads everything
released to one partner — objects and marking definitions — and looks for the others.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nacl.signing import SigningKey

from detente.node import Node
from detente.policy import RELEASABILITY_EXTENSION_ID, decide, releasability_marking
from detente.policy.model import NodeContext, Recipient
from detente.release import read_releases, view_hash
from detente.release.proofs import prove_release
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

DE_ID = "identity--0d5d2b4c-3f0e-4b9a-9b1e-5b0c6f1d2e3a"
ACS = "extension-definition--3a65884d-005a-4290-8335-cb2d778a83ce"


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us", communities="coalition")
    n.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                   communities=frozenset({"coalition"}), tier=3)
    n.partners.add("de", url="http://127.0.0.1:9002", public_key=_key(),
                   communities=frozenset({"coalition", "eu"}), tier=3, identity_id=DE_ID)
    n.partners.add("ru", url="http://127.0.0.1:9003", public_key=_key(), tier=1)
    yield n
    n.close()


def _indicator(n: int, refs: list[str]) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-00000000000{n}",
            "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
            "name": f"indicator {n}", "pattern": "[ipv4-addr:value = '198.51.100.7']",
            "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
            "object_marking_refs": refs}


def _words(value: Any) -> Iterator[str]:
    """Every string in a view, and every word of it (a generated name lists the audience)."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _words(v)
    elif isinstance(value, list):
        for v in value:
            yield from _words(v)
    elif isinstance(value, str):
        yield value
        yield from re.split(r"[\s,;:]+", value)


def _served(node: Node, partner: str) -> dict[str, dict[str, Any]]:
    node.releaser.catch_up(partner)
    page = read_releases(node.store.engine, partner, Query(versions=("all",)))
    return {v.id: orjson.loads(v.view) for v in page.views}


def _seed(node: Node) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    # one marking decided as an object (no markings of its own: the node default applies),
    # one that only travels as support (it is itself TLP:RED)
    wide = releasability_marking(releasable_to=["fr", "de", "eu"], onward="originator-approval",
                                 created_by_ref=node.identity_id)
    secret = releasability_marking(releasable_to=["coalition", DE_ID, "ru"], min_tier=1,
                                   created_by_ref=node.identity_id)
    secret["object_marking_refs"] = [TLP_2_0_IDS["red"]]
    a = _indicator(1, [TLP_2_0_IDS["amber"], wide["id"]])
    b = _indicator(2, [TLP_2_0_IDS["amber"], secret["id"]])
    node.store.put_many([validate(o) for o in (wide, secret, a, b)], Provenance())
    return wide, secret, a


def test_views_never_name_another_partner_or_a_community_it_is_not_in(node: Node) -> None:
    wide, secret, _ = _seed(node)
    served = _served(node, "fr")
    assert {wide["id"], secret["id"]} <= set(served), "the markings fr must honour travel"
    others = {"de", "ru", "eu", DE_ID}
    for oid, view in served.items():
        named = others & set(_words(view))
        assert not named, f"{oid} tells fr about {named}"
    assert served[wide["id"]]["extensions"][RELEASABILITY_EXTENSION_ID]["releasable_to"] == ["fr"]
    assert served[secret["id"]]["extensions"][RELEASABILITY_EXTENSION_ID]["releasable_to"] == [
        "coalition"]
    # de gets its own copy under the same id: its name, identity and community
    mine = _served(node, "de")[wide["id"]]["extensions"][RELEASABILITY_EXTENSION_ID]
    assert mine["releasable_to"] == ["de", "eu"]


def test_the_recipients_copy_still_works_at_the_recipient(node: Node) -> None:
    """fr re-decides our object with its copy of the marking: valid, fr may pass it on only
    to those it names (its own community), never to a partner it was not told about."""
    wide, _, a = _seed(node)
    served = _served(node, "fr")
    copy = served[wide["id"]]
    assert validate(copy).id == wide["id"]
    ctx = NodeContext(name="fr", identity_id="identity--6f7a3d2e-1111-4222-8333-944455566677",
                      communities=frozenset({"coalition"}), default_tlp=None,
                      markings={copy["id"]: copy}, origin="us")
    to_fr_colleague = Recipient("fr", None, frozenset({"coalition"}), 3)
    to_de = Recipient("de", None, frozenset({"coalition", "eu"}), 3)
    assert decide(served[a["id"]], to_fr_colleague, ctx).allowed
    denied = decide(served[a["id"]], to_de, ctx)
    assert not denied.allowed
    assert not any("malformed" in r for r in denied.reasons)


def test_the_recipients_copy_is_what_the_ledger_records_and_survives_reevaluation(
        node: Node) -> None:
    wide, secret, _ = _seed(node)
    _served(node, "fr")
    node.partners.update("fr", base_tier=2)
    node.releaser.reevaluate("fr")
    page = read_releases(node.store.engine, "fr", Query(versions=("all",)))
    marks = [v for v in page.views if v.id in (wide["id"], secret["id"])]
    assert len(marks) == 2, "each marking served once, under its one id"
    for v in marks:
        assert v.ledger_index is not None
        entry = prove_release(node.store.engine, node.ledger, v.date_added, v.ledger_index,
                              node.ledger.size()).release
        assert entry.object_id == v.id and entry.view_hash == view_hash(v.view)
        assert "de" not in set(_words(orjson.loads(v.view)))


def test_acs_permitted_organizations_are_cut_to_the_recipient() -> None:
    acs = {"type": "marking-definition", "spec_version": "2.1",
           "id": "marking-definition--9a5f8cd1-3b3d-4d5e-8f3e-1c1b2a3d4e5f",
           "created": "2024-01-01T00:00:00.000Z",
           "extensions": {ACS: {"extension_type": "property-extension",
                                "identifier": "isa:guide.19001.ACS3-1",
                                "create_date_time": "2024-01-01T00:00:00Z",
                                "responsible_entity_custodian": "USA.DHS.US-CERT",
                                "control_set": {"classification": "U",
                                                "formal_determination": ["PUBREL"],
                                                "permitted_organizations": ["fr", "de"]}}}}
    ctx = NodeContext(name="us", identity_id="identity--6f7a3d2e-1111-4222-8333-944455566677",
                      communities=frozenset({"coalition"}), default_tlp="clear")
    d = decide(acs, Recipient("fr", None, frozenset(), 1), ctx)
    assert d.view is not None
    assert d.view["extensions"][ACS]["control_set"]["permitted_organizations"] == ["fr"]
    assert not decide(acs, Recipient("ru", None, frozenset(), 1), ctx).allowed
