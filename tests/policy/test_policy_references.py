"""References in views (issue 14, finding 2), at the policy level: a view keeps a
reference only when the lookup says the recipient may see its target; a hidden required
reference denies the object, with the reason."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.policy.policy_fixtures import FR, FR_ID, US_ID, node

from detente.policy import TLP2_IDS, decide, support_view
from detente.policy.references import references

T0 = "2024-01-01T00:00:00.000Z"
POOL = (*(f"indicator--{i:08d}-0000-4000-8000-000000000000" for i in range(6)),
        "identity--44444444-4444-4444-8444-444444444444", US_ID, FR_ID)
REQUIRED = {"relationship": ("source_ref", "target_ref"), "sighting": ("sighting_of_ref",)}


def _walk(view: Any, top: bool = True) -> set[str]:
    """Ids a view names (markings aside) — independent of the policy's walker."""
    out: set[str] = set()
    if isinstance(view, dict):
        for k, v in view.items():
            if top and k in ("object_marking_refs", "granular_markings"):
                continue
            if k.endswith("_ref") and isinstance(v, str):
                out.add(v)
            elif k.endswith("_refs") and isinstance(v, list):
                out.update(x for x in v if isinstance(x, str))
            else:
                out |= _walk(v, False)
    elif isinstance(view, list):
        for v in view:
            out |= _walk(v, False)
    return out


def _object(kind: str, picks: list[int], creator: int | None) -> dict[str, Any]:
    ids = [POOL[i % len(POOL)] for i in picks]
    body: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": f"{kind}--0",
                            "created": T0, "modified": T0,
                            "object_marking_refs": [TLP2_IDS["clear"]]}
    if creator is not None:
        body["created_by_ref"] = POOL[creator % len(POOL)]
    if kind == "relationship":
        body |= {"relationship_type": "related-to", "source_ref": ids[0], "target_ref": ids[-1]}
    elif kind == "sighting":
        body |= {"sighting_of_ref": ids[0], "where_sighted_refs": ids[1:] or ids,
                 "observed_data_refs": ids}
    else:
        body |= {"name": "r", "published": T0, "object_refs": sorted(set(ids))}
    return body


@settings(max_examples=300)
@given(kind=st.sampled_from(("relationship", "sighting", "report")),
       picks=st.lists(st.integers(0, 20), min_size=1, max_size=4),
       creator=st.none() | st.integers(0, 20),
       visible=st.frozensets(st.sampled_from(POOL)))
def test_a_view_keeps_exactly_the_references_the_recipient_may_see(
        kind: str, picks: list[int], creator: int | None, visible: frozenset[str]) -> None:
    obj = _object(kind, picks, creator)
    d = decide(obj, FR, node(ref_visible=visible.__contains__))
    known = visible | {US_ID, FR_ID}  # our identity and the recipient's own are known to it
    hidden_required = [p for p in REQUIRED.get(kind, ()) if obj[p] not in known]
    if kind == "report" and not set(obj["object_refs"]) & known:
        hidden_required.append("object_refs")
    if hidden_required:
        assert not d.allowed
        assert any(f"{hidden_required[0]} is required" in r for r in d.reasons)
        return
    assert d.view is not None
    assert _walk(d.view) <= known
    # nothing visible is dropped: every reference kept is one the object made
    assert _walk(d.view) == _walk(obj) & known


def test_the_walker_finds_nested_and_embedded_references() -> None:
    email = {"type": "email-message", "id": "email-message--1", "is_multipart": True,
             "from_ref": "email-addr--1", "to_refs": ["email-addr--2"],
             "body_multipart": [{"body_raw_ref": "artifact--1"}],
             "object_marking_refs": ["marking-definition--x"],
             "extensions": {"x": {"sample_refs": ["file--1"]}}}
    assert {r for _, r in references(email)} == {
        "email-addr--1", "email-addr--2", "artifact--1", "file--1"}


def test_a_hidden_nested_reference_denies() -> None:
    email = {"type": "email-message", "spec_version": "2.1", "id": "email-message--1",
             "is_multipart": True, "object_marking_refs": [TLP2_IDS["clear"]],
             "body_multipart": [{"body_raw_ref": "artifact--1"}]}
    d = decide(email, FR, node(ref_visible=lambda _: False))
    assert not d.allowed
    assert any("body_multipart[0].body_raw_ref" in r for r in d.reasons)


def test_a_support_marking_drops_a_hidden_creator() -> None:
    md = {"type": "marking-definition", "spec_version": "2.1",
          "id": "marking-definition--55555555-5555-4555-8555-555555555555", "created": T0,
          "created_by_ref": POOL[6], "definition_type": "statement",
          "definition": {"statement": "no comment"}}
    d = support_view(md, FR, node(ref_visible=lambda _: False))
    assert d.view is not None and "created_by_ref" not in d.view
