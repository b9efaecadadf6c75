"""validate(): what it builds, and what it refuses with which message."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detente.errors import ValidationError
from detente.stix import UNVERSIONED, PatternError, StixValidationError, validate, validate_bytes
from detente.stix.timestamps import normalise

IND = "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"
IDENTITY = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
GREEN_1_0 = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"


def indicator(**changes: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": IND,
        "created_by_ref": IDENTITY,
        "created": "2016-04-06T20:03:48.000Z",
        "modified": "2016-04-06T20:03:48.123456Z",
        "name": "Poison Ivy",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.1']",
        "pattern_type": "stix",
        "valid_from": "2016-01-01T00:00:00Z",
        "object_marking_refs": [GREEN_1_0],
        "x_acme_score": {"kept": True},
    }
    obj.update(changes)
    return {k: v for k, v in obj.items() if v is not None}


def test_a_valid_indicator_becomes_a_stix_object() -> None:
    obj = indicator()
    got = validate(obj)
    assert (got.id, got.type, got.spec_version) == (IND, "indicator", "2.1")
    assert got.version == "2016-04-06T20:03:48.123456000Z" == normalise(obj["modified"])
    assert got.created_by_ref == IDENTITY and got.revoked is False
    assert got.body is obj and got.body["x_acme_score"] == {"kept": True}
    assert got.raw == orjson.dumps(obj)
    assert got.digest == hashlib.sha256(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)).digest()
    assert validate_bytes(orjson.dumps(obj)) == got


def test_versions_of_unversioned_types() -> None:
    sco = {"type": "ipv4-addr", "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
           "value": "198.51.100.3"}  # fmt: skip
    assert validate(sco).version == UNVERSIONED
    assert validate(sco).spec_version == "2.1"
    marking = {
        "type": "marking-definition", "spec_version": "2.1", "id": GREEN_1_0,
        "created": "2017-01-20T00:00:00.000Z", "modified": "2018-01-20T00:00:00.000Z",
        "definition_type": "tlp", "definition": {"tlp": "green"},
    }  # fmt: skip
    assert validate(marking).version == "2017-01-20T00:00:00.000000000Z"


@given(st.datetimes(), st.integers(0, 9), st.integers(0, 10**9 - 1))
def test_the_version_equals_normalise(dt: Any, digits: int, fraction: int) -> None:
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    text = f"{dt.year:04d}" + text[text.index("-"):]
    if digits:
        text += "." + str(fraction).zfill(9)[:digits]
    text += "Z"
    obj = indicator(created=text, modified=text, valid_from=text, valid_until=None)
    assert validate(obj).version == normalise(text)


REFUSALS = [
    ([1, 2], "input: not a JSON object (got an array)"),
    (indicator(type=None), "object type: missing"),
    (indicator(type="Indicator"), "object type: 'Indicator' is not a STIX type name"),
    (indicator(type="x--y"), "object type: 'x--y' is not a STIX type name"),
    (indicator(id=None), "indicator id: missing"),
    (indicator(id="indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3"), "is not <type>--<RFC 4122"),
    (indicator(id="indicator--8e2e2d2b-17d4-4cbf-c38f-98ee46b3cd3f"), "is not <type>--<RFC 4122"),
    (indicator(id="malware--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"), "does not start with the"),
    (indicator(spec_version=None), f"{IND} spec_version: missing"),
    (indicator(spec_version="2.0"), f"{IND} spec_version: '2.0' is not '2.1'"),
    (indicator(created="2016-04-06T20:03:48.000"), f"{IND} created: '2016-04-06T20:03:48.000' is"),
    (indicator(created="2016-13-06T20:03:48Z"), f"{IND} created: '2016-13-06T20:03:48Z' is not a"),
    (indicator(created="2016-02-30T20:03:48Z"), "is not a valid date or time"),
    (indicator(created="2017-01-01T00:00:00Z"), f"{IND} modified: must be at or after created"),
    (indicator(valid_until="2016-01-01T00:00:00Z"), f"{IND} valid_until: must be after valid_from"),
    (indicator(pattern="[ipv4-addr:value = '1.2.3.4'"), f"{IND} pattern: not a valid STIX 2.1"),
    (indicator(pattern="[file:hashes.MD5 = 'abc']"), "'abc' is not a valid MD5 hash"),
    (indicator(pattern=None), f"{IND} pattern: missing (required)"),
    (indicator(pattern=7), f"{IND} pattern: must be a string, got a number"),
    (indicator(created_by_ref="identity--x"), f"{IND} created_by_ref: 'identity--x' is not a"),
    (indicator(created_by_ref=GREEN_1_0), "created_by_ref: " f"'{GREEN_1_0}' must refer to an"),
    (indicator(object_marking_refs=[IDENTITY]), f"object_marking_refs[0]: '{IDENTITY}' is not"),
    (indicator(object_marking_refs=GREEN_1_0), "object_marking_refs: must be a list"),
    (indicator(sample_refs=["file--nope"]), f"{IND} sample_refs[0]: 'file--nope' is not a STIX id"),
    (indicator(confidence=101), f"{IND} confidence: must be an integer from 0 to 100, got 101"),
    (indicator(confidence=True), "confidence: must be an integer"),
    (indicator(labels="bad"), f"{IND} labels: must be a list of strings, got a string"),
    (indicator(labels=["ok", 3]), f"{IND} labels[1]: must be a string, got a number"),
    (indicator(revoked="no"), f"{IND} revoked: must be true or false, got a string"),
    (indicator(**{"Bad-Name": 1}), f"{IND} Bad-Name: not a valid property name"),
    (indicator(granular_markings=[{"selectors": [], "marking_ref": GREEN_1_0}]), "selectors: must"),
    (indicator(granular_markings=[{"selectors": ["name"], "marking_ref": IDENTITY}]),
     "granular_markings[0].marking_ref[0]: " f"'{IDENTITY}' is not a marking-definition id"),
    (indicator(granular_markings=[{"selectors": ["name"]}]), "exactly one of marking_ref and lang"),
    (indicator(extensions={"Bad Key": {}}), "extensions.Bad Key: not an extension-definition id"),
    (indicator(extensions={"x-acme-ext": 1}), "extensions.x-acme-ext: must be an object"),
    (indicator(external_references=[{"url": "x"}]), "external_references[0].source_name: missing"),
    ({"type": "widget", "id": "widget--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}, "'widget' is not a"),
    ({"type": "bundle", "id": "bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"}, "an envelope"),
]  # fmt: skip


@pytest.mark.parametrize(("obj", "message"), REFUSALS)
def test_malformed_objects_are_refused_with_what_and_where(obj: Any, message: str) -> None:
    with pytest.raises(StixValidationError) as caught:
        validate(obj)
    assert message in str(caught.value)
    assert isinstance(caught.value, ValidationError)


def test_a_bad_pattern_is_a_pattern_error() -> None:
    with pytest.raises(PatternError, match=r"pattern: .*lower|pattern: not a valid"):
        validate(indicator(pattern="[ipv4-addr:value = '1' and ipv4-addr:value = '2']"))


def test_patterns_of_other_languages_are_not_parsed() -> None:
    assert validate(indicator(pattern_type="sigma", pattern="title: anything")).type == "indicator"


def test_broken_json_is_a_validation_error() -> None:
    with pytest.raises(StixValidationError, match="input: not valid JSON"):
        validate_bytes(b'{"type": "indicator",')


SDO_BASE = {"spec_version": "2.1", "created": "2020-01-01T00:00:00Z",
            "modified": "2020-01-01T00:00:00Z"}  # fmt: skip
UUID = "0c7b5b88-8ff7-4a4d-aa9d-feb398cd0061"


@pytest.mark.parametrize(
    ("type_", "props", "missing"),
    [
        ("attack-pattern", {}, "name"),
        ("grouping", {"context": "x"}, "object_refs"),
        ("malware", {"name": "x"}, "is_family"),
        ("malware", {"is_family": True}, "name"),
        ("relationship", {"relationship_type": "uses", "source_ref": IND}, "target_ref"),
        ("sighting", {}, "sighting_of_ref"),
        ("report", {"name": "r", "object_refs": [IND]}, "published"),
        ("observed-data", {"first_observed": "2020-01-01T00:00:00Z",
                           "last_observed": "2020-01-01T00:00:00Z"}, "number_observed"),
        ("location", {"latitude": 1.0}, "longitude"),
        ("note", {"object_refs": [IND]}, "content"),
        ("opinion", {"object_refs": [IND]}, "opinion"),
        ("language-content", {"object_ref": IND}, "contents"),
        ("extension-definition", {"name": "x"}, "created_by_ref"),
    ],
)  # fmt: skip
def test_required_properties(type_: str, props: dict[str, Any], missing: str) -> None:
    obj = {"type": type_, "id": f"{type_}--{UUID}", **SDO_BASE, **props}
    with pytest.raises(StixValidationError, match=f"{type_}--{UUID} {missing}: missing"):
        validate(obj)


def test_scos_need_their_value_and_may_omit_spec_version() -> None:
    validate({"type": "domain-name", "id": f"domain-name--{UUID}", "value": "example.com"})
    with pytest.raises(StixValidationError, match="value: missing"):
        validate({"type": "domain-name", "id": f"domain-name--{UUID}"})
    with pytest.raises(StixValidationError, match=r"spec_version: '2\.0' is not '2\.1'"):
        validate({"type": "url", "id": f"url--{UUID}", "value": "http://x", "spec_version": "2.0"})


def test_custom_objects_and_extension_defined_types_are_kept() -> None:
    custom = {"type": "x-acme-widget", "id": f"x-acme-widget--{UUID}", "x_size": 3, **SDO_BASE}
    assert validate(custom).body == custom
    new_sdo = {
        "type": "event", "id": f"event--{UUID}", **SDO_BASE,
        "extensions": {"extension-definition--4ca6de00-5b0d-45ef-a1dc-ea7279ea910e":
                       {"extension_type": "new-sdo"}},
    }  # fmt: skip
    assert validate(new_sdo).version == "2020-01-01T00:00:00.000000000Z"


# -- interoperability with the stix2 library -------------------------------------------------


def stix2_objects() -> list[Any]:
    import stix2

    identity = stix2.Identity(name="ACME", identity_class="organization")
    malware = stix2.Malware(name="Poison Ivy", is_family=True, created_by_ref=identity.id)
    ind = stix2.Indicator(
        name="bad ip", pattern="[ipv4-addr:value = '198.51.100.1']", pattern_type="stix",
        object_marking_refs=[stix2.TLP_AMBER], labels=["malicious-activity"], confidence=70,
        kill_chain_phases=[{"kill_chain_name": "lockheed", "phase_name": "delivery"}],
    )  # fmt: skip
    rel = stix2.Relationship(ind, "indicates", malware)
    report = stix2.Report(name="r", published="2020-01-01T00:00:00Z",
                          object_refs=[ind.id, malware.id, rel.id])  # fmt: skip
    statement = stix2.StatementMarking("Copyright ACME")
    marking = stix2.MarkingDefinition(definition_type="statement", definition=statement)
    ip = stix2.IPv4Address(value="198.51.100.1")
    file = stix2.File(name="evil.exe", hashes={"SHA-256": "ab" * 32})
    traffic = stix2.NetworkTraffic(src_ref=ip.id, protocols=["tcp"])
    sighting = stix2.Sighting(sighting_of_ref=ind.id, count=2)
    return [identity, malware, ind, rel, report, marking, stix2.TLP_AMBER, ip, file, traffic,
            sighting]  # fmt: skip


def test_objects_built_with_stix2_validate_and_round_trip() -> None:
    import stix2

    for built in stix2_objects():
        data = orjson.loads(built.serialize())
        got = validate(data)
        assert got.id == built.id and got.type == built.type
        again = stix2.parse(got.raw.decode(), allow_custom=False)
        assert orjson.loads(again.serialize()) == data == orjson.loads(got.raw)


# -- identifiers with upper-case hex (RFC 4122: case-insensitive on input) ------------------


def _upper_hex(identifier: str, mask: list[bool]) -> str:
    type_, uuid_ = identifier.split("--", 1)
    return type_ + "--" + "".join(c.upper() if up else c for c, up in zip(uuid_, mask, strict=True))


def test_upper_case_hex_is_folded_in_the_id_and_every_reference() -> None:
    ext = "extension-definition--d83fce45-ef58-4c6c-a3f4-1fbc32e98c6e"
    given = indicator(
        id=IND.upper().replace("INDICATOR", "indicator"),
        created_by_ref=IDENTITY.replace("f431f809", "F431F809"),
        object_marking_refs=[GREEN_1_0.replace("34098fce", "34098FCE")],
        granular_markings=[{"selectors": ["name"], "marking_ref": GREEN_1_0.upper()
                            .replace("MARKING-DEFINITION", "marking-definition")}],
        extensions={ext.replace("d83fce45", "D83FCE45"): {"extension_type": "property-extension"}},
        x_acme_note="NOT-AN-ID stays",
    )
    got = validate(given)
    assert got.id == IND and got.created_by_ref == IDENTITY
    assert got.body["object_marking_refs"] == [GREEN_1_0]
    assert got.body["granular_markings"][0]["marking_ref"] == GREEN_1_0
    assert list(got.body["extensions"]) == [ext]
    assert got.body["x_acme_note"] == "NOT-AN-ID stays"
    assert given["id"] != IND  # the caller's dict is untouched
    assert got.raw == orjson.dumps(got.body)


def test_a_recased_copy_is_the_same_object_not_a_second_one() -> None:
    """The attack the old refusal guarded against: a partner re-cases the id of an object we
    hold, hoping it is stored as a new object (or that an echo of ours goes unnoticed)."""
    ours = validate(indicator())
    theirs = validate(indicator(id=IND.replace("8e2e2d2b", "8E2E2D2B")))
    assert theirs.key == ours.key and theirs.digest == ours.digest


@given(st.lists(st.booleans(), min_size=36, max_size=36))
def test_any_casing_of_the_hex_validates_to_the_lower_case_object(mask: list[bool]) -> None:
    recased = indicator(id=_upper_hex(IND, mask), created_by_ref=_upper_hex(IDENTITY, mask))
    got = validate(recased)
    assert got.raw == validate(indicator()).raw


def test_an_upper_case_type_is_still_refused() -> None:
    with pytest.raises(StixValidationError, match="does not start with the object's type"):
        validate(indicator(id="INDICATOR--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"))
    with pytest.raises(StixValidationError, match="is not <type>--<RFC 4122"):
        validate(indicator(id="indicator--8E2E2D2B-17D4-4CBF-C38F-98EE46B3CD3F"))  # variant


def test_a_reference_accepted_before_is_still_checked_for_its_role() -> None:
    """Creators and markings once accepted are remembered (the hot path skips their
    pattern), each for its own property: an identity accepted as a creator is still no
    marking, a marking accepted as one is still no creator."""
    validate(indicator())  # IDENTITY accepted as a creator, GREEN_1_0 as a marking
    for _ in range(2):
        with pytest.raises(StixValidationError, match="is not a marking-definition id"):
            validate(indicator(object_marking_refs=[GREEN_1_0, IDENTITY]))
        with pytest.raises(StixValidationError, match="must refer to an identity"):
            validate(indicator(created_by_ref=GREEN_1_0))
        with pytest.raises(StixValidationError, match="must be a list of identifiers"):
            validate(indicator(object_marking_refs=GREEN_1_0))
    assert validate(indicator(object_marking_refs=[GREEN_1_0, GREEN_1_0])).id == IND


def test_raw_holds_its_own_size_not_the_encoders_block() -> None:
    """A validated object's ``raw`` is kept as long as the object (a batch of 5,000, every
    object of a strict ingest until it commits): it must not hold the ~8 KB block orjson
    wrote it into."""
    import tracemalloc

    objs = [{"type": "indicator", "spec_version": "2.1",
             "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
             "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
             "pattern": f"[ipv4-addr:value = '10.0.{i // 256}.{i % 256}']",
             "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"} for i in range(300)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        raws = [validate(o).raw for o in objs]
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    held = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert max(len(r) for r in raws) < 300
    # each raw's bytes and header, the list's slot, and what validation memoises of a new
    # pattern (~700 bytes an object in all, measured); with the encoder's block, ~4,500
    assert held / len(raws) < 2048, held / len(raws)
