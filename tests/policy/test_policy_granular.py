"""Granular markings, redaction of the view, and report object_refs."""

from __future__ import annotations

from typing import Any

from tests.policy.policy_fixtures import FR, RU, indicator, node, real_objects, tlp, to

from detente.policy import Verdict, decide


def _gm(ref: str, *selectors: str) -> dict[str, Any]:
    return {"marking_ref": ref, "selectors": list(selectors)}


def test_denying_granular_marking_removes_its_field() -> None:
    obj = indicator(tlp("green"), granular_markings=[_gm(tlp("red"), "description")])
    d = decide(obj, RU, node())
    assert d.verdict is Verdict.ALLOW_REDACTED
    assert d.removed == ("description", "granular_markings[0]")
    assert d.view is not None
    assert "description" not in d.view and "granular_markings" not in d.view
    assert d.reasons[-1] == (
        "granular marking on description: TLP:RED — never released by a "
        "node. Removed from the view."
    )


def test_allowing_granular_marking_keeps_the_field_and_the_marking() -> None:
    obj = indicator(tlp("green"), granular_markings=[_gm(tlp("green"), "description")])
    d = decide(obj, RU, node())
    assert d.verdict is Verdict.ALLOW
    assert d.view == obj


def test_granular_amber_named_by_object_level_releasability() -> None:
    rel = to("fr")
    obj = indicator(tlp("green"), rel["id"], granular_markings=[_gm(tlp("amber"), "labels.[1]")])
    d = decide(obj, FR, node(rel))
    assert d.verdict is Verdict.ALLOW
    assert d.view == obj


def test_granular_amber_named_by_a_granular_releasability_covering_it() -> None:
    rel = to("ru")
    obj = indicator(
        tlp("green"),
        granular_markings=[_gm(tlp("amber"), "labels.[1]"), _gm(rel["id"], "labels.[1]", "name")],
    )
    assert decide(obj, RU, node(rel)).verdict is Verdict.ALLOW
    d_fr = decide(obj, FR, node(rel))
    assert d_fr.removed == ("labels[1]", "name", "granular_markings[0]", "granular_markings[1]")


def test_granular_releasability_on_other_fields_does_not_name_for_amber() -> None:
    rel = to("ru")
    obj = indicator(
        tlp("green"), granular_markings=[_gm(tlp("amber"), "labels.[1]"), _gm(rel["id"], "name")]
    )
    d = decide(obj, RU, node(rel))
    assert d.removed == ("labels[1]", "granular_markings[0]")
    assert d.view is not None
    assert d.view["granular_markings"] == [_gm(rel["id"], "name")]


def test_granular_amber_with_nobody_named_removes_the_element() -> None:
    obj = indicator(tlp("green"), granular_markings=[_gm(tlp("amber"), "labels.[1]")])
    d = decide(obj, RU, node())
    assert d.removed == ("labels[1]", "granular_markings[0]")
    assert d.view is not None and d.view["labels"] == ["c2", "source-humint"]


def test_list_removal_renumbers_the_remaining_granular_selectors() -> None:
    obj = indicator(
        tlp("green"),
        granular_markings=[
            _gm(tlp("red"), "labels.[0]"),
            _gm(tlp("clear"), "labels.[2]", "description"),
        ],
    )
    d = decide(obj, RU, node())
    assert d.view is not None
    assert d.view["labels"] == ["raqqa", "source-humint"]
    assert d.view["granular_markings"] == [_gm(tlp("clear"), "labels.[1]", "description")]
    assert d.removed == ("labels[0]", "granular_markings[0]")


def test_emptied_lists_are_removed_and_required_nested_properties_deny() -> None:
    obj = indicator(
        tlp("green"), labels=["only"], granular_markings=[_gm(tlp("red"), "labels.[0]")]
    )
    d = decide(obj, RU, node())
    assert d.view is not None and "labels" not in d.view
    assert d.removed == ("labels[0]", "labels", "granular_markings[0]")
    obj = indicator(
        tlp("green"), granular_markings=[_gm(tlp("red"), "kill_chain_phases.[0].phase_name")]
    )
    d = decide(obj, RU, node())
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].startswith(
        "removing kill_chain_phases[0].phase_name would leave an invalid indicator"
    )


def test_granular_red_on_a_required_property_denies_the_object() -> None:
    obj = indicator(tlp("green"), granular_markings=[_gm(tlp("red"), "pattern")])
    d = decide(obj, RU, node())
    assert d.verdict is Verdict.DENY
    assert d.view is None
    assert "pattern is required" in d.reasons[0]


def test_marking_properties_cannot_be_redacted_away() -> None:
    rel = to(redact_below_tier={4: ["object_marking_refs"]})
    d = decide(indicator(tlp("green"), rel["id"]), RU, node(rel))
    assert d.verdict is Verdict.DENY
    assert "object_marking_refs is required" in d.reasons[0]


def test_unknown_granular_marking_removes_its_field() -> None:
    ref = "marking-definition--eeeeeeee-0000-4000-8000-000000000000"
    d = decide(indicator(tlp("green"), granular_markings=[_gm(ref, "description")]), RU, node())
    assert d.removed == ("description", "granular_markings[0]")
    assert "unknown marking" in d.reasons[-1]


def test_unparseable_selector_of_a_denying_granular_marking_denies() -> None:
    obj = indicator(tlp("green"), granular_markings=[_gm(tlp("red"), "labels[0]")])
    d = decide(obj, RU, node())
    assert d.verdict is Verdict.DENY
    assert "a selector cannot be applied: fail closed" in d.reasons[0]


def test_language_granular_markings_do_not_restrict() -> None:
    obj = indicator(tlp("green"), granular_markings=[{"lang": "fr", "selectors": ["name"]}])
    assert decide(obj, RU, node()).verdict is Verdict.ALLOW


def test_granular_releasability_redaction_applies() -> None:
    rel = to(redact_below_tier={3: ["name"]})
    obj = indicator(tlp("green"), granular_markings=[_gm(rel["id"], "description")])
    assert decide(obj, RU, node(rel)).removed == ("name",)
    assert decide(obj, FR, node(rel)).verdict is Verdict.ALLOW


def test_real_granular_markings_example() -> None:
    objects = real_objects("cti-documentation__examples__using-granular-markings.json")
    (obj,) = [o for o in objects if o["type"] == "indicator"]
    d = decide(obj, RU, node(default_tlp="green"))
    assert d.verdict is Verdict.ALLOW_REDACTED
    assert d.removed == (
        "description",
        "indicator_types[1]",
        "granular_markings[0]",
        "granular_markings[1]",
    )
    assert d.view is not None
    assert d.view["indicator_types"] == ["malicious-activity"]
    assert d.view["granular_markings"] == [
        _gm(
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da",
            "indicator_types.[0]",
            "name",
            "pattern",
        )
    ]
    rest = {k: v for k, v in d.view.items() if k != "granular_markings"}
    assert rest == {
        k: v
        for k, v in obj.items()
        if k not in ("description", "indicator_types", "granular_markings")
    } | {"indicator_types": ["malicious-activity"]}


def _report(refs: list[str]) -> dict[str, Any]:
    return {
        "type": "report",
        "spec_version": "2.1",
        "id": "report--eff11c91-12da-4bec-ac82-285d1efc0cf6",
        "created": "2020-06-18T00:00:00.000Z",
        "modified": "2020-06-18T00:00:00.000Z",
        "name": "ISIS logistics",
        "published": "2020-07-19T00:00:00Z",
        "object_refs": refs,
        "object_marking_refs": [tlp("green")],
    }


def test_report_object_refs_the_partner_may_not_see_are_dropped() -> None:
    refs = ["indicator--1", "threat-actor--2", "ipv4-addr--3"]
    visible = {"indicator--1", "ipv4-addr--3"}
    ctx = node(ref_visible=visible.__contains__)
    d = decide(_report(refs), RU, ctx)
    assert d.verdict is Verdict.ALLOW_REDACTED
    assert d.view is not None and d.view["object_refs"] == ["indicator--1", "ipv4-addr--3"]
    assert d.removed == ("object_refs[1]",)
    assert "1 of 3 references point to objects ru may not see" in d.reasons[-1]
    assert decide(_report(refs), RU, node()).verdict is Verdict.ALLOW  # no ref_visible: kept


def test_report_with_no_visible_refs_is_denied() -> None:
    d = decide(_report(["indicator--1"]), RU, node(ref_visible=lambda _: False))
    assert d.verdict is Verdict.DENY
    assert "object_refs is required" in d.reasons[0]
