"""TLP 2.0 (and TLP 1.0 ids mapped to 2.0), defaults, unknown and statement markings."""

from __future__ import annotations

import pytest
from tests.policy.policy_fixtures import FR, IR, REAL, RU, indicator, node, real_objects, tlp, to

from detente.policy import TLP1_IDS, TLP2_IDS, Verdict, decide
from detente.policy.markings import parse_marking_definition


def test_tlp2_ids_match_the_published_marking_definitions() -> None:
    for level, mid in TLP2_IDS.items():
        name = {"clear": "tlp-clear", "amber": "tlp-amber", "amber+strict": "tlp-amber+strict"}
        if level in name:
            (md,) = real_objects(f"cti-stix-common-objects__tlp-2.0__examples__{name[level]}.json")
        else:
            (md,) = real_objects(f"cti-stix-common-objects__objects__{mid}.json")
        assert md["id"] == mid
        assert (
            md["extensions"]["extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"][
                "tlp_2_0"
            ]
            == level
        )
    assert REAL.exists()


def test_clear_goes_to_any_partner() -> None:
    d = decide(indicator(tlp("clear")), IR, node())
    assert d.verdict is Verdict.ALLOW
    assert d.reasons == ("TLP:CLEAR — any partner may receive it.",)
    assert d.view == indicator(tlp("clear"))
    assert d.onward == "allowed"


def test_green_allows_a_partner_sharing_a_community() -> None:
    d = decide(indicator(tlp("green")), RU, node())
    assert d.verdict is Verdict.ALLOW
    assert "ru shares coalition" in d.reasons[0]


def test_green_denies_a_partner_outside_the_node_communities() -> None:
    d = decide(indicator(tlp("green")), IR, node())
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].startswith("TLP:GREEN — only partners sharing a community")


def test_amber_needs_a_releasability_marking_naming_the_recipient() -> None:
    rel = to("fr")
    obj = indicator(tlp("amber"), rel["id"])
    allowed = decide(obj, FR, node(rel))
    denied = decide(obj, RU, node(rel))
    assert allowed.verdict is Verdict.ALLOW
    assert allowed.onward == "originator-approval"
    assert denied.verdict is Verdict.DENY
    assert "TLP:AMBER — only partners named by a releasability marking; ru is not named." in (
        denied.reasons
    )


def test_amber_with_nobody_named_is_denied_with_that_reason() -> None:
    d = decide(indicator(tlp("amber")), FR, node())
    assert d.verdict is Verdict.DENY
    assert d.reasons == (
        "TLP:AMBER — only partners named by a releasability marking; "
        "the object carries none, so nobody is named.",
    )


def test_amber_strict_named_allows_with_onward_denied() -> None:
    rel = to("fr")
    d = decide(indicator(tlp("amber+strict"), rel["id"]), FR, node(rel))
    assert d.verdict is Verdict.ALLOW
    assert d.onward == "denied"
    assert decide(indicator(tlp("amber+strict"), rel["id"]), RU, node(rel)).verdict is Verdict.DENY


def test_red_is_never_released_even_when_named() -> None:
    rel = to("fr", "ru")
    d = decide(indicator(tlp("red"), rel["id"]), FR, node(rel))
    assert d.verdict is Verdict.DENY
    assert "TLP:RED — never released by a node." in d.reasons
    assert d.view is None


@pytest.mark.parametrize(
    ("level", "verdict"),
    [("clear", "allow"), ("green", "allow"), ("amber", "deny"), ("red", "deny")],
)
def test_tlp1_ids_mean_their_tlp2_level(level: str, verdict: str) -> None:
    assert decide(indicator(TLP1_IDS[level]), RU, node()).verdict.value == verdict


def test_community_match_is_by_recipient_communities_not_name() -> None:
    rel = to("coalition")
    assert decide(indicator(tlp("amber"), rel["id"]), RU, node(rel)).allowed
    assert not decide(indicator(tlp("amber"), rel["id"]), IR, node(rel)).allowed


def test_identity_ids_name_a_recipient() -> None:
    rel = to(RU.identity_id or "")
    assert decide(indicator(tlp("amber"), rel["id"]), RU, node(rel)).allowed
    # the node's partner book may know an identity the Recipient does not carry
    rel_ir = to("identity--44444444-4444-4444-8444-444444444444")
    ctx = node(rel_ir, partner_identities={"ir": "identity--44444444-4444-4444-8444-444444444444"})
    assert decide(indicator(tlp("amber"), rel_ir["id"]), IR, ctx).allowed


def test_no_tlp_uses_the_node_default() -> None:
    d = decide(indicator(), RU, node(default_tlp="green"))
    assert d.verdict is Verdict.ALLOW
    assert any("node default TLP:GREEN applies" in r for r in d.reasons)
    assert decide(indicator(), IR, node(default_tlp="green")).verdict is Verdict.DENY


def test_no_tlp_and_no_default_denies() -> None:
    d = decide(indicator(), FR, node())
    assert d.verdict is Verdict.DENY
    assert "no default marking" in d.reasons[0]


def test_a_bad_default_denies() -> None:
    assert decide(indicator(), FR, node(default_tlp="white")).verdict is Verdict.DENY


def test_unknown_marking_fails_closed() -> None:
    ref = "marking-definition--00000000-0000-4000-8000-000000000000"
    d = decide(indicator(tlp("clear"), ref), FR, node())
    assert d.verdict is Verdict.DENY
    assert d.reasons[0] == f"unknown marking {ref!r}: fail closed."


def test_statement_marking_does_not_restrict_and_is_noted() -> None:
    (statement,) = real_objects(
        "cti-stix-common-objects__objects__marking-definition--62fd3f9b-15f3-4ebc-802c-91fce9536bcf.json"
    )
    d = decide(indicator(tlp("clear"), statement["id"]), IR, node(statement))
    assert d.verdict is Verdict.ALLOW
    assert any(
        r.startswith(f"statement marking {statement['id']} does not restrict") for r in d.reasons
    )
    # a statement alone is no TLP: the default (here none) decides
    assert decide(indicator(statement["id"]), IR, node(statement)).verdict is Verdict.DENY


def test_inline_tlp2_extension_on_an_unlisted_id_is_read() -> None:
    md = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--aaaaaaaa-0000-4000-8000-000000000000",
        "created": "2022-10-01T00:00:00.000Z",
        "name": "copy of TLP:RED",
        "extensions": {
            "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d": {
                "extension_type": "property-extension",
                "tlp_2_0": "red",
            }
        },
    }
    d = decide(indicator(md["id"]), FR, node(md, default_tlp="clear"))
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].startswith("TLP:RED (marking-definition--aaaaaaaa")
    assert parse_marking_definition(md)[0].tlp == "red"


def test_tlp1_style_definition_in_node_markings() -> None:
    md = {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": "marking-definition--bbbbbbbb-0000-4000-8000-000000000000",
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "tlp",
        "definition": {"tlp": "white"},
    }
    d = decide(indicator(md["id"]), IR, node(md))
    assert d.verdict is Verdict.ALLOW
    assert d.reasons == (f"TLP:CLEAR ({md['id']}) — any partner may receive it.",)


def test_real_stix2_statement_marking_with_a_default() -> None:
    (md,) = real_objects(
        "stix2-3.0.2__test-v21-stix2_data__marking-definition__"
        "marking-definition--fa42a846-8d90-4e51-bc29-71d5b4802168.json"
    )
    d = decide(indicator(md["id"]), FR, node(md, default_tlp="clear"))
    assert d.verdict is Verdict.ALLOW
    assert "Copyright 2017, The MITRE Corporation" in " ".join(d.reasons)


def test_unknown_definition_type_fails_closed() -> None:
    md = {
        "type": "marking-definition",
        "id": "marking-definition--cccccccc-0000-4000-8000-000000000000",
        "created": "2017-01-20T00:00:00.000Z",
        "definition_type": "secret-sauce",
        "definition": {"x": 1},
    }
    d = decide(indicator(tlp("clear"), md["id"]), FR, node(md))
    assert d.verdict is Verdict.DENY
    assert "of type 'secret-sauce': fail closed" in d.reasons[0]


def test_several_markings_most_restrictive_wins() -> None:
    d = decide(indicator(tlp("clear"), tlp("green")), IR, node())
    assert d.verdict is Verdict.DENY
    assert any("TLP:GREEN" in r for r in d.reasons)
    rel = to("fr", min_tier=4)
    d = decide(indicator(tlp("amber"), rel["id"]), FR, node(rel))
    assert d.verdict is Verdict.DENY
    assert f"detente releasability {rel['id']} — minimum trust tier 4; fr has tier 3." in d.reasons


def test_tlp_marking_definitions_themselves_are_public() -> None:
    (md,) = real_objects("cti-stix-common-objects__tlp-2.0__examples__tlp-amber.json")
    d = decide(md, IR, node())
    assert d.verdict is Verdict.ALLOW
    assert d.view == md


@pytest.mark.parametrize(
    "obj",
    [
        None,
        [],
        {"id": "x"},
        {"type": "indicator", "object_marking_refs": "x"},
        {"type": "indicator", "granular_markings": [{"selectors": "description"}]},
        {"type": "indicator", "granular_markings": {}},
    ],
)
def test_malformed_objects_deny(obj: object) -> None:
    d = decide(obj, FR, node(default_tlp="clear"))  # type: ignore[arg-type]
    assert d.verdict is Verdict.DENY
    assert "fail closed" in d.reasons[0]
