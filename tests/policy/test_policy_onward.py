"""Onward sharing: material received from partner P, released on to Q."""

from __future__ import annotations

from tests.policy.policy_fixtures import FR, IR, RU, indicator, node, tlp, to

from detente.policy import Verdict, decide


def test_onward_denied_material_is_never_re_released() -> None:
    rel = to("fr", "ru", onward="denied")
    obj = indicator(tlp("green"), rel["id"])
    assert decide(obj, RU, node(rel)).verdict is Verdict.ALLOW  # locally created: fine
    d = decide(obj, RU, node(rel, origin="fr"))
    assert d.verdict is Verdict.DENY
    assert d.reasons[0] == (
        f"received from fr: detente releasability {rel['id']} — onward "
        "sharing is denied; it is never re-released."
    )


def test_amber_strict_from_a_partner_is_never_re_released() -> None:
    rel = to("ru")
    obj = indicator(tlp("amber+strict"), rel["id"])
    assert decide(obj, RU, node(rel)).allowed
    d = decide(obj, RU, node(rel, origin="fr"))
    assert d.verdict is Verdict.DENY
    assert (
        "received from fr: TLP:AMBER+STRICT — TLP:AMBER+STRICT material is never re-released."
    ) in d.reasons


def test_originator_approval_is_given_by_naming_the_recipient() -> None:
    rel = to("ru", onward="originator-approval")
    obj = indicator(tlp("green"), rel["id"])
    d = decide(obj, RU, node(rel, origin="fr"))
    assert d.verdict is Verdict.ALLOW
    assert any("onward sharing needs fr's approval, which naming ru" in r for r in d.reasons)


def test_originator_approval_without_a_name_denies() -> None:
    rel = to(min_tier=0, onward="originator-approval")
    obj = indicator(tlp("green"), rel["id"])
    assert decide(obj, RU, node(rel)).verdict is Verdict.ALLOW
    d = decide(obj, RU, node(rel, origin="fr"))
    assert d.verdict is Verdict.DENY
    assert "releasable_to does not name ru" in d.reasons[0]


def test_amber_from_a_partner_goes_only_to_recipients_its_marking_names() -> None:
    rel = to("ru")
    obj = indicator(tlp("amber"), rel["id"])
    assert decide(obj, RU, node(rel, origin="fr")).verdict is Verdict.ALLOW
    assert decide(obj, IR, node(rel, origin="fr")).verdict is Verdict.DENY
    assert decide(indicator(tlp("amber")), RU, node(origin="fr")).verdict is Verdict.DENY


def test_green_from_a_partner_goes_to_partners_sharing_a_community_with_this_node() -> None:
    obj = indicator(tlp("green"))
    assert decide(obj, RU, node(origin="fr")).verdict is Verdict.ALLOW
    assert decide(obj, IR, node(origin="fr")).verdict is Verdict.DENY


def test_onward_allowed_passes() -> None:
    rel = to(onward="allowed", min_tier=1)
    d = decide(indicator(tlp("clear"), rel["id"]), RU, node(rel, origin="fr"))
    assert d.verdict is Verdict.ALLOW
    assert d.onward == "allowed"


def test_onward_rules_of_granular_markings_strip_fields() -> None:
    rel = to("ru", onward="denied")
    obj = indicator(
        tlp("green"),
        granular_markings=[{"marking_ref": rel["id"], "selectors": ["description"]}],
    )
    local = decide(obj, RU, node(rel))
    assert local.verdict is Verdict.ALLOW
    assert local.onward == "denied"
    onward = decide(obj, RU, node(rel, origin="fr"))
    assert onward.verdict is Verdict.ALLOW_REDACTED
    assert onward.removed == ("description", "granular_markings[0]")
    assert onward.view is not None and "granular_markings" not in onward.view


def test_red_from_a_partner_denies_for_everyone() -> None:
    for who in (FR, RU, IR):
        assert decide(indicator(tlp("red")), who, node(origin="fr")).verdict is Verdict.DENY
