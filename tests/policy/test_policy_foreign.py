"""IEP 2.0 and ACS 3.0 markings, from the published OASIS examples."""

from __future__ import annotations

import copy
from typing import Any

from tests.policy.policy_fixtures import FR, IR, RU, indicator, node, real_objects, tlp, to

from detente.policy import ACS_EXTENSION_ID, IEP_EXTENSION_ID, Verdict, decide

ACS = "cti-stix-common-objects__acs-marking-definition-3a6__examples__acs-spec-use-case-{}.json"
IEP = "cti-stix-common-objects__iep-marking-definition-762__examples__{}.json"


def _iep(name: str) -> dict[str, Any]:
    (md,) = real_objects(IEP.format(name))
    return md


def _acs(case: int) -> list[dict[str, Any]]:
    return [o for o in real_objects(ACS.format(case)) if o["type"] == "marking-definition"]


def test_extension_ids_match_the_published_definitions() -> None:
    (iep_def,) = real_objects(IEP.format("iep-extension-definition-object"))
    assert iep_def["id"] == IEP_EXTENSION_ID
    (acs_def,) = real_objects(
        "cti-stix-common-objects__objects__extension-definition--3a65884d-005a-4290-8335-"
        "cb2d778a83ce.json"
    )
    assert acs_def["id"] == ACS_EXTENSION_ID


def test_iep_amber_is_tlp_amber_with_attribution_must_not() -> None:
    iep = _iep("iep-data-marking-example")
    rel = to("fr")
    obj = indicator(iep["id"], rel["id"])
    d = decide(obj, FR, node(iep, rel))
    assert d.verdict is Verdict.ALLOW
    assert d.attribution == "must-not"
    assert d.onward == "originator-approval"
    assert any(
        "obliges the recipient" in r and "unmodified_resale=must-not" in r for r in d.reasons
    )
    denied = decide(obj, RU, node(iep, rel))
    assert denied.verdict is Verdict.DENY
    assert (
        f"IEP 2.0 {iep['id']} (TLP:AMBER) — only partners named by a releasability marking; "
        "ru is not named."
    ) in denied.reasons


def test_iep_amber_with_nobody_named_denies() -> None:
    iep = _iep("iep-data-marking-example")
    d = decide(indicator(iep["id"]), FR, node(iep))
    assert d.verdict is Verdict.DENY
    assert "nobody is named" in d.reasons[0]


def test_iep_red_denies() -> None:
    iep = _iep("iep-data-marking-red-example")
    d = decide(indicator(iep["id"], tlp("clear")), FR, node(iep))
    assert d.verdict is Verdict.DENY
    assert d.reasons[0] == f"IEP 2.0 {iep['id']} (TLP:RED) — never released by a node."


def test_iep_tlp_counts_as_the_object_tlp() -> None:
    iep = copy.deepcopy(_iep("iep-data-marking-example"))
    iep["extensions"][IEP_EXTENSION_ID]["tlp"] = "green"
    d = decide(indicator(iep["id"]), RU, node(iep))  # no default needed: IEP carries a TLP
    assert d.verdict is Verdict.ALLOW


def test_iep_unknown_restrictive_property_denies_naming_it() -> None:
    iep = copy.deepcopy(_iep("iep-data-marking-example"))
    iep["extensions"][IEP_EXTENSION_ID]["retention_days"] = 30
    d = decide(indicator(iep["id"], tlp("clear")), FR, node(iep))
    assert d.verdict is Verdict.DENY
    assert "property 'retention_days' is a restriction detente does not evaluate" in d.reasons[0]


def test_iep_bad_values_deny() -> None:
    for key, value in (("tlp", "white"), ("provider_attribution", "sometimes")):
        iep = copy.deepcopy(_iep("iep-data-marking-example"))
        iep["extensions"][IEP_EXTENSION_ID][key] = value
        d = decide(indicator(iep["id"], tlp("clear")), FR, node(iep))
        assert d.verdict is Verdict.DENY, key
        assert key in d.reasons[0]


def test_acs_classified_material_is_denied_naming_the_property() -> None:
    (md,) = _acs(1)  # TS, entity GOV/CTR/MIL, sharedefault=deny
    d = decide(indicator(tlp("clear"), md["id"]), FR, node(md))
    assert d.verdict is Verdict.DENY
    assert (
        "control_set.classification 'TS' is a restriction detente does not evaluate"
        in (d.reasons[0])
    )


def test_acs_fouo_is_denied_naming_the_determination() -> None:
    (md,) = _acs(2)
    d = decide(indicator(tlp("clear"), md["id"]), FR, node(md))
    assert d.verdict is Verdict.DENY
    assert "control_set.formal_determination 'FOUO'" in d.reasons[0]


def test_acs_public_release_unclassified_allows_and_is_noted() -> None:
    secret, pubrel = _acs(3)
    objects = real_objects(ACS.format(3))
    ip = next(o for o in objects if o["type"] == "ipv4-addr")
    actor = next(o for o in objects if o["type"] == "threat-actor")
    ctx = node(secret, pubrel, default_tlp="green")
    d = decide(ip, RU, ctx)
    assert d.verdict is Verdict.ALLOW
    assert d.onward == "allowed"
    assert any("records a public release" in r for r in d.reasons)
    assert decide(actor, RU, ctx).verdict is Verdict.DENY  # classification S


def test_acs_report_drops_refs_to_the_secret_actor() -> None:
    secret, pubrel = _acs(3)
    objects = real_objects(ACS.format(3))
    ctx0 = node(secret, pubrel, default_tlp="green")
    visible = {o["id"] for o in objects if decide(o, RU, ctx0).allowed}
    report = next(o for o in objects if o["type"] == "report")
    d = decide(
        report, RU, node(secret, pubrel, default_tlp="green", ref_visible=visible.__contains__)
    )
    assert d.view is not None
    assert "threat-actor--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f" not in d.view["object_refs"]
    assert "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd" in d.view["object_refs"]


def _acs_orgs(orgs: list[str], **extra: Any) -> dict[str, Any]:
    (md,) = _acs(4)
    md = copy.deepcopy(md)
    control = md["extensions"][ACS_EXTENSION_ID]["control_set"]
    del control["entity"]
    control["permitted_organizations"] = orgs
    md["extensions"][ACS_EXTENSION_ID].update(extra)
    return md


def test_acs_permitted_organizations_act_as_releasable_to() -> None:
    md = _acs_orgs(["fr", RU.identity_id or ""])
    obj = indicator(tlp("amber"), md["id"])
    assert decide(obj, FR, node(md)).verdict is Verdict.ALLOW  # also names for TLP:AMBER
    assert decide(obj, RU, node(md)).verdict is Verdict.ALLOW
    d = decide(obj, IR, node(md))
    assert d.verdict is Verdict.DENY
    assert any(
        "permitted_organizations — releasable to" in r and "ir is not named" in r for r in d.reasons
    )


def test_acs_permitted_nationalities_act_as_releasable_to() -> None:
    md = _acs_orgs(["ALL"])
    md["extensions"][ACS_EXTENSION_ID]["control_set"]["permitted_nationalities"] = ["eu"]
    obj = indicator(tlp("clear"), md["id"])
    assert decide(obj, FR, node(md)).verdict is Verdict.ALLOW
    assert decide(obj, RU, node(md)).verdict is Verdict.DENY


def test_acs_entity_restriction_is_not_evaluated_so_it_denies() -> None:
    (md,) = _acs(5)  # sensitivity LES, entity list
    d = decide(indicator(tlp("clear"), md["id"]), FR, node(md))
    assert d.verdict is Verdict.DENY
    assert "is a restriction detente does not evaluate: fail closed." in d.reasons[0]


def test_acs_further_sharing_deny_is_onward_denied() -> None:
    md = _acs_orgs(["ALL"], further_sharing=[{"rule_effect": "deny", "sharing_scope": ["ALL"]}])
    obj = indicator(tlp("clear"), md["id"])
    local = decide(obj, RU, node(md))
    assert local.verdict is Verdict.ALLOW
    assert local.onward == "denied"
    relayed = decide(obj, RU, node(md, origin="fr"))
    assert relayed.verdict is Verdict.DENY
    assert "onward sharing is denied" in relayed.reasons[0]


def test_acs_sharedefault_deny_with_permits_is_originator_approval() -> None:
    md = _acs_orgs(
        ["ALL"],
        further_sharing=[{"rule_effect": "permit", "sharing_scope": ["X"]}],
        policy_reference="urn:isa:policy:acs:ns:v3.0?privdefault=deny&sharedefault=deny",
    )
    assert decide(indicator(tlp("clear"), md["id"]), RU, node(md)).onward == "originator-approval"


def test_acs_unknown_property_denies_naming_it() -> None:
    md = _acs_orgs(["ALL"], embargo_until="2030-01-01")
    d = decide(indicator(tlp("clear"), md["id"]), RU, node(md))
    assert d.verdict is Verdict.DENY
    assert "property 'embargo_until'" in d.reasons[0]
