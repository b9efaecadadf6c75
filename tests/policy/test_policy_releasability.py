"""detente releasability: the extension files, the builder, each rule, malformed markings."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.policy.policy_fixtures import FR, IR, RU, indicator, node, tlp, to

from detente.policy import (
    DETENTE_IDENTITY_ID,
    RELEASABILITY_EXTENSION_ID,
    MalformedMarkingError,
    Verdict,
    decide,
    extension_definition,
    releasability_marking,
    releasability_schema,
)
from detente.policy.releasability import check_releasability


def _raw(
    ext: Any, mid: str = "marking-definition--dddddddd-0000-4000-8000-000000000000"
) -> dict[str, Any]:
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": mid,
        "created": "2025-01-01T00:00:00.000Z",
        "extensions": {RELEASABILITY_EXTENSION_ID: ext},
    }


def test_extension_definition_is_a_fixed_property_extension() -> None:
    ed = extension_definition()
    assert ed["id"] == RELEASABILITY_EXTENSION_ID
    assert ed["type"] == "extension-definition"
    assert ed["extension_types"] == ["property-extension"]
    assert ed["schema"] == "detente-releasability.schema.json"
    assert ed["created_by_ref"] == DETENTE_IDENTITY_ID
    jsonschema.Draft202012Validator.check_schema(releasability_schema())


def test_builder_is_deterministic_and_valid() -> None:
    a = releasability_marking(
        releasable_to=["ru", "fr"],
        min_tier=2,
        onward="denied",
        redact_below_tier={3: ["description"]},
        attribution="must",
        created_by_ref=DETENTE_IDENTITY_ID,
    )
    b = releasability_marking(
        releasable_to=["fr", "ru"],
        min_tier=2,
        onward="denied",
        redact_below_tier={3: ["description"]},
        attribution="must",
        created_by_ref=DETENTE_IDENTITY_ID,
    )
    assert json.dumps(a) == json.dumps(b)
    assert a["id"].startswith("marking-definition--")
    ext = a["extensions"][RELEASABILITY_EXTENSION_ID]
    assert ext["releasable_to"] == ["fr", "ru"]
    assert ext["redact_below_tier"] == {"3": ["description"]}
    jsonschema.validate(ext, releasability_schema())
    assert releasability_marking(min_tier=2)["id"] != releasability_marking(min_tier=3)["id"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"min_tier": 5},
        {"onward": "sometimes"},
        {"attribution": "never"},
        {"releasable_to": []},
        {"redact_below_tier": {7: ["description"]}},
        {"redact_below_tier": {2: "description"}},
        {"redact_below_tier": {2: ["labels[1]"]}},
        {"releasable_to": [1]},
    ],
)
def test_builder_refuses_invalid_content(kwargs: dict[str, Any]) -> None:
    with pytest.raises(MalformedMarkingError):
        releasability_marking(**kwargs)


def test_releasable_to_allows_named_and_denies_others() -> None:
    rel = to("fr")
    obj = indicator(tlp("clear"), rel["id"])
    assert decide(obj, FR, node(rel)).verdict is Verdict.ALLOW
    d = decide(obj, RU, node(rel))
    assert d.verdict is Verdict.DENY
    assert (
        d.reasons[0]
        == f"detente releasability {rel['id']} — releasable to fr only; ru is not named."
    )


def test_min_tier_denies_below_and_allows_at_tier() -> None:
    rel = to(min_tier=3)
    obj = indicator(tlp("green"), rel["id"])
    assert decide(obj, FR, node(rel)).verdict is Verdict.ALLOW
    d = decide(obj, RU, node(rel))
    assert d.verdict is Verdict.DENY
    assert d.reasons == (
        f"detente releasability {rel['id']} — minimum trust tier 3; ru has tier 1.",
        "TLP:GREEN — partners sharing a community with this node; ru shares coalition.",
    )


def test_redact_below_tier_strips_selectors_for_lower_tiers_only() -> None:
    rel = to(redact_below_tier={2: ["description", "labels.[2]"], 4: ["kill_chain_phases"]})
    obj = indicator(tlp("green"), rel["id"])
    d_ru = decide(obj, RU, node(rel))
    assert d_ru.verdict is Verdict.ALLOW_REDACTED
    assert d_ru.removed == ("description", "kill_chain_phases", "labels[2]")
    assert d_ru.view is not None
    assert "description" not in d_ru.view and d_ru.view["labels"] == ["c2", "raqqa"]
    d_fr = decide(obj, FR, node(rel))
    assert d_fr.removed == ("kill_chain_phases",)
    assert d_fr.view is not None and d_fr.view["description"] == obj["description"]
    assert obj == indicator(tlp("green"), rel["id"])  # the input is untouched


def test_redacting_a_required_property_denies_naming_it() -> None:
    rel = to(redact_below_tier={2: ["pattern"]})
    d = decide(indicator(tlp("green"), rel["id"]), RU, node(rel))
    assert d.verdict is Verdict.DENY
    assert d.reasons[0] == (
        "removing pattern would leave an invalid indicator (pattern is "
        "required): the whole object is denied."
    )
    assert decide(indicator(tlp("green"), rel["id"]), FR, node(rel)).verdict is Verdict.ALLOW


def test_onward_and_attribution_take_the_most_restrictive() -> None:
    a = to(onward="originator-approval", attribution="must")
    b = to(onward="allowed", attribution="must-not")
    d = decide(indicator(tlp("green"), a["id"], b["id"]), RU, node(a, b))
    assert (d.onward, d.attribution) == ("originator-approval", "must-not")
    d = decide(indicator(tlp("clear")), RU, node())
    assert (d.onward, d.attribution) == ("allowed", "may")
    c = to(onward="denied")
    assert decide(indicator(tlp("clear"), c["id"]), RU, node(c)).onward == "denied"


MALFORMED: list[tuple[Any, str]] = [
    ("not an object", "the extension is not an object"),
    ({"extension_type": "property-extension"}, "it states no rule"),
    ({"extension_type": "toplevel-property-extension", "min_tier": 1}, "extension_type"),
    ({"extension_type": "property-extension", "min_tier": "2"}, "min_tier '2'"),
    ({"extension_type": "property-extension", "min_tier": True}, "min_tier True"),
    ({"extension_type": "property-extension", "min_tier": 9}, "min_tier 9"),
    ({"extension_type": "property-extension", "releasable_to": "fr"}, "releasable_to"),
    ({"extension_type": "property-extension", "releasable_to": ["fr", "fr"]}, "duplicate"),
    ({"extension_type": "property-extension", "onward": "maybe"}, "onward 'maybe'"),
    ({"extension_type": "property-extension", "attribution": "yes"}, "attribution 'yes'"),
    ({"extension_type": "property-extension", "redact_below_tier": {"x": ["a"]}}, "key 'x'"),
    ({"extension_type": "property-extension", "redact_below_tier": {"2": []}}, "non-empty"),
    ({"extension_type": "property-extension", "redact_below_tier": {"2": ["a..b"]}}, "'a..b'"),
    ({"extension_type": "property-extension", "min_tier": 1, "embargo": "2030"}, "'embargo'"),
]


@pytest.mark.parametrize(("ext", "problem"), MALFORMED)
def test_malformed_releasability_marking_denies_with_the_reason(ext: Any, problem: str) -> None:
    md = _raw(ext)
    d = decide(indicator(tlp("clear"), md["id"]), FR, node(md))
    assert d.verdict is Verdict.DENY
    assert d.reasons[0].startswith(f"malformed releasability marking: {md['id']}: ")
    assert problem in d.reasons[0]
    if isinstance(ext, dict):
        assert not jsonschema.Draft202012Validator(releasability_schema()).is_valid(ext)


_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-2, 6)
    | st.sampled_from(
        [
            "fr",
            "",
            "coalition",
            "allowed",
            "denied",
            "must",
            "may",
            "must-not",
            "originator-approval",
            "description",
            "labels.[1]",
            "a..b",
            "3",
            "x",
        ]
    ),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["1", "3", "9", "x"]), inner, max_size=2)
    ),
    max_leaves=6,
)
_ext = st.fixed_dictionaries(
    {"extension_type": st.sampled_from(["property-extension", "other"])},
    optional={
        k: _json
        for k in [
            "releasable_to",
            "min_tier",
            "onward",
            "redact_below_tier",
            "attribution",
            "unknown",
        ]
    },
)


@given(_ext)
def test_hand_written_checks_agree_with_the_json_schema(ext: dict[str, Any]) -> None:
    schema_ok = jsonschema.Draft202012Validator(releasability_schema()).is_valid(ext)
    assert (check_releasability(ext) is None) == schema_ok


def test_releasability_alone_is_not_a_tlp() -> None:
    rel = to("fr")
    assert decide(indicator(rel["id"]), FR, node(rel)).verdict is Verdict.DENY
    assert decide(indicator(rel["id"]), FR, node(rel, default_tlp="amber")).verdict is Verdict.ALLOW
    assert decide(indicator(rel["id"]), IR, node(rel, default_tlp="clear")).verdict is Verdict.DENY
