"""Fingerprinted views stay faithful to what consumers rely on (issue 17), on real content.

Real ATT&CK for ICS 17.1 objects (a slice vendored in tests/data) and the OASIS corpus are
released to many partners; every view must keep citations resolving, names, proper nouns,
identifiers, hashes, patterns, ordered lists and timestamps byte-identical, pass
stix2-validator wherever the original passes, and import into MISP with every attribute.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.fingerprint.fp_fixtures import SECRET
from tests.realdata import REAL_DATA

from detente.fingerprint import Fingerprinter, FingerprintParams
from detente.fingerprint.channels.lists import ORDERED_LISTS
from detente.fingerprint.channels.slots import JSON
from detente.fingerprint.policy import decide, fingerprinted
from detente.stix.vocab import TLP_1_0_IDS, TLP_2_0_IDS

ATTACK_SLICE = Path(__file__).resolve().parents[1] / "data" / "attack-ics-slice.json"
PARTNERS = [f"p{k:02d}" for k in range(12)]
MISP_HELPER = Path(__file__).resolve().parent / "misp_roundtrip.py"
CITATION = re.compile(r"\(Citation: ([^)]*)\)")
AMBER = TLP_2_0_IDS["amber"]
#: properties no channel may change (besides names, handled with aliases below)
FIXED = ("id", "type", "spec_version", "created", "modified", "name", "pattern",
         "pattern_type", "valid_from", "valid_until", "first_seen", "last_seen",
         "first_observed", "last_observed", "published", "hashes", "value",
         "created_by_ref", "x_mitre_version", "x_mitre_attack_spec_version")  # fmt: skip


@cache
def attack_objects() -> tuple[JSON, ...]:
    doc = json.loads(ATTACK_SLICE.read_text("utf-8"))
    return tuple(doc["objects"])


@cache
def corpus_objects() -> tuple[JSON, ...]:
    out: list[JSON] = []
    for path in sorted(REAL_DATA.glob("*.json")):
        try:
            doc = json.loads(path.read_text("utf-8"))
        except json.JSONDecodeError:
            continue
        objs = doc.get("objects", [doc]) if isinstance(doc, dict) else doc
        out.extend(o for o in objs if isinstance(o, dict) and "type" in o)
    return tuple(out)


def _views(obj: JSON, partners: list[str] = PARTNERS) -> list[JSON]:
    fp = Fingerprinter(SECRET)
    key = f"{obj.get('id')}|{obj.get('modified', '')}"
    return [fp.embed(obj, p, object_key=key).view for p in partners]


def _sources(obj: JSON) -> set[str]:
    return {r.get("source_name") for r in obj.get("external_references", []) if isinstance(r, dict)}


def test_the_slice_is_real_attack_content_with_citations() -> None:
    objs = attack_objects()
    cited = [o for o in objs if CITATION.search(o.get("description", ""))]
    assert len(objs) >= 70 and len(cited) >= 30
    assert {o["type"] for o in objs} >= {"attack-pattern", "malware", "relationship",
                                          "intrusion-set", "course-of-action"}  # fmt: skip


def test_attack_citations_resolve_in_every_view() -> None:
    """The regression of issue 17: 258 objects had citations that no longer resolved."""
    checked = changed = 0
    for obj in attack_objects():
        text = obj.get("description", "")
        markers = CITATION.findall(text)
        if not markers:
            continue
        assert set(markers) <= _sources(obj), obj["id"]  # the original resolves
        for view in _views(obj):
            assert CITATION.findall(view["description"]) == markers
            assert set(CITATION.findall(view["description"])) <= _sources(view)
            checked += 1
            changed += view != obj
    assert checked >= 30 * len(PARTNERS)
    assert changed > checked // 4  # the views are fingerprinted, not left alone


def test_names_ids_hashes_patterns_timestamps_and_ordered_lists_never_change() -> None:
    for obj in (*attack_objects(), *corpus_objects()):
        for view in _views(obj, PARTNERS[:4]):
            for key in FIXED:
                assert view.get(key) == obj.get(key), (obj.get("id"), key)
            for key in ORDERED_LISTS | {"external_references"}:
                if key in obj and key != "external_references":
                    assert view[key] == obj[key], (obj.get("id"), key)
            refs = obj.get("external_references")
            if isinstance(refs, list) and refs and "external_id" in refs[0]:
                assert view["external_references"][0] == refs[0]
            for key in ("aliases", "x_mitre_aliases"):
                if obj.get(key) and obj[key][0] == obj.get("name"):
                    assert view[key][0] == obj[key][0]
            assert set(view) == set(obj)


def test_markdown_links_code_and_quotes_are_untouched() -> None:
    for obj in attack_objects():
        text = obj.get("description", "")
        links = re.findall(r"\[[^\]]*\]\([^)]*\)", text)
        for view in _views(obj, PARTNERS[:6]):
            assert re.findall(r"\[[^\]]*\]\([^)]*\)", view.get("description", "")) == links


def _object(description: str, **extra: Any) -> JSON:
    return {
        "type": "attack-pattern", "spec_version": "2.1",
        "id": "attack-pattern--7e150503-88e7-4861-866b-ff1ac82c4475",
        "created": "2023-01-01T00:00:00.000Z", "modified": "2023-01-01T00:00:00.000Z",
        "name": "Defense Evasion", "description": description,
        "object_marking_refs": [AMBER], **extra,
    }  # fmt: skip


def test_proper_nouns_are_never_respelled() -> None:
    text = (
        "The Israeli Defense Force and Mobile Threat Defense products were targeted. "
        "Defense Intelligence reported the organization behind it. The U.S. Cyber Command "
        "analyzed the behavior of the malware, used by the Program Organization Unit of the "
        "Electricity Information Sharing and Analysis Center."
    )
    for view in _views(_object(text), PARTNERS):
        got = view["description"]
        for noun in ("Israeli Defense Force", "Mobile Threat Defense", "Defense Intelligence",
                     "U.S. Cyber Command", "Program Organization Unit",
                     "Analysis Center", "the malware"):  # fmt: skip
            assert noun in got, (noun, got)
        assert "malicious software" not in got


def test_common_words_still_carry_marks_outside_names() -> None:
    text = (
        "The organization analyzed the behavior of the implant. Its behavior was "
        "recognized by the defense team, for example in the center of the network."
    )
    views = {v["description"] for v in _views(_object(text), PARTNERS)}
    assert len(views) > 4


def test_strings_other_properties_refer_to_are_untouched() -> None:
    refs = [{"source_name": "mitre-attack", "external_id": "T0800"},
            {"source_name": "Defense organization report 2020", "description":
             "Analyzed behavior of the center, 2020."}]  # fmt: skip
    text = ("See Defense organization report 2020: analyzed behavior of the center, 2020. "
            "(Citation: Defense organization report 2020). The 'behavior' was analyzed; the "
            "behavior of the organization was analyzed.")
    views = _views(_object(text, external_references=refs), PARTNERS)
    for view in views:
        got = view["description"]
        assert got.count("Defense organization report 2020") == 2
        assert "analyzed behavior of the center, 2020." in got
        assert "The 'behavior' was" in got
    assert len({v["description"] for v in views}) > 2  # the rest still carries marks


def test_a_timestamp_stated_to_the_second_gains_no_digits() -> None:
    obj = {
        "type": "indicator", "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2016-04-06T20:03:48.000Z", "modified": "2016-04-06T20:03:48.000Z",
        "valid_from": "2016-01-01T09:00:00Z", "valid_until": "2017-01-01T09:00:00.000000Z",
        "pattern": "[file:hashes.'SHA-256' = 'aec070645fe53ee3b3763059376134f0']",
        "pattern_type": "stix", "labels": ["a", "b", "c"], "object_marking_refs": [AMBER],
    }  # fmt: skip
    for view in _views(obj, PARTNERS):
        assert view["valid_from"] == obj["valid_from"]
        assert view["valid_until"] == obj["valid_until"]


def test_coordinates_move_only_within_a_stated_precision() -> None:
    place = {
        "type": "location", "spec_version": "2.1",
        "id": "location--a6e9345f-5a15-4c29-8bb3-7dcc5d168d64",
        "created": "2016-04-06T20:03:00.000Z", "modified": "2016-04-06T20:03:00.000Z",
        "name": "Raqqa", "latitude": 35.9594, "longitude": 38.9981,
        "object_marking_refs": [AMBER],
    }  # fmt: skip
    assert all(v == place for v in _views(place))
    stated = {**place, "precision": 30.0}
    for view in _views(stated):
        north = abs(view["latitude"] - place["latitude"]) * 111_320
        assert 0 < north <= 10.0 + 1e-6


def test_stix2_validator_reports_no_new_error_in_any_view() -> None:
    validator = pytest.importorskip("stix2validator")
    options = validator.ValidationOptions(version="2.1", strict=False)

    def errors(obj: JSON) -> set[str]:
        result = validator.validate_instance(copy.deepcopy(obj), options)
        return {str(e.message if hasattr(e, "message") else e) for e in result.errors}

    checked = 0
    for obj in (*attack_objects()[:40], *corpus_objects()):
        if obj.get("type") == "bundle":
            continue
        before = errors(obj)
        for view in _views(obj, PARTNERS[:2]):
            if view != obj:
                assert errors(view) <= before, obj.get("id")
                checked += 1
    assert checked >= 60


def test_tlp_clear_content_is_released_unmodified() -> None:
    fp = Fingerprinter(SECRET)
    for marking in (TLP_2_0_IDS["clear"], TLP_1_0_IDS["white"]):
        obj = _object("The organization analyzed the behavior.", object_marking_refs=[marking])
        result = fp.embed(obj, "p1", object_key="k|1")
        assert result.view == obj and not result.fingerprinted
        assert result.fingerprint_id is None and result.record.positions == ()
        assert not fingerprinted(obj) and "unmodified" in decide(obj).reason
    amber = _object("The organization analyzed the behavior.")
    assert fingerprinted(amber) and "TLP:AMBER" in decide(amber).reason
    unmarked = {k: v for k, v in amber.items() if k != "object_marking_refs"}
    assert fingerprinted(unmarked) and "fail closed" in decide(unmarked).reason
    mixed = _object("x", object_marking_refs=[TLP_2_0_IDS["clear"], "marking-definition--"
                                              "e828b379-4e03-4974-9ac4-e53a884c97c1"])
    assert fingerprinted(mixed)


def test_the_rule_is_configurable_per_marking_and_per_type() -> None:
    green = _object("The organization.", object_marking_refs=[TLP_2_0_IDS["green"]])
    params = FingerprintParams(plain_markings=frozenset({"clear", "green"}))
    assert fingerprinted(green) and not fingerprinted(green, params)
    by_type = FingerprintParams(plain_types=frozenset({"attack-pattern"}))
    assert not Fingerprinter(SECRET, by_type).fingerprinted(green)
    clear = _object("The organization.", object_marking_refs=[TLP_2_0_IDS["clear"]])
    always = FingerprintParams(marked_types=frozenset({"attack-pattern"}))
    assert Fingerprinter(SECRET, always).fingerprinted(clear)


def _misp(*args: str, data: Any = None) -> Any:
    if importlib.util.find_spec("misp_stix_converter") is None:
        pytest.skip("misp-stix is not installed")
    done = subprocess.run(
        [sys.executable, str(MISP_HELPER), *args], input=json.dumps(data), text=True,
        capture_output=True, timeout=300, check=True,
    )
    return json.loads(done.stdout)


def test_misp_stix_imports_a_fingerprinted_misp_event_with_every_attribute() -> None:
    """The regression of issue 17: reordered observed-data.object_refs lost 2 of 16.

    misp-stix runs in a child interpreter (see misp_roundtrip.py)."""
    bundle = _misp("make")
    fp = Fingerprinter(SECRET)
    pulled = []
    for partner in PARTNERS[:6]:
        objects = [
            fp.embed(o, partner, object_key=f"{o['id']}|{o.get('modified', '')}").view
            for o in bundle["objects"]
        ]
        for view, obj in zip(objects, bundle["objects"], strict=True):
            assert view.get("object_refs") == obj.get("object_refs")
        pulled.append({**bundle, "objects": objects})
    assert any(p["objects"] != bundle["objects"] for p in pulled)  # views are marked
    original, *views = _misp("import", data=[bundle, *pulled])
    assert len(original) == 16
    assert all(v == original for v in views)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["behavior", "organization", "center", "Defense", "analyzed",
                                 "(Citation: Organization Center)", "the", "Team", "."]),
                min_size=3, max_size=30))  # fmt: skip
def test_citations_and_capitalised_words_survive_any_prose_around_them(words: list[str]) -> None:
    text = " ".join(words)
    refs = [{"source_name": "Organization Center"}]
    obj = _object(text, external_references=refs)
    markers = CITATION.findall(text)
    for view in _views(obj, PARTNERS[:3]):
        assert CITATION.findall(view["description"]) == markers
        inside = r"(?<=[a-z] )Defense"  # a capital inside a sentence: a proper noun
        assert len(re.findall(inside, view["description"])) == len(re.findall(inside, text))
