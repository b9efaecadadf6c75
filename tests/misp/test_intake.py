"""MISP in: every form MISP writes is recognised, converted by misp-stix and validated;
what cannot be converted is refused by event name, and the rest goes on."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.stix import DecodeFailure, Position, iter_objects, validate
from detente.stix.vocab import TLP_1_0_IDS

DATA = Path(__file__).resolve().parents[1] / "data" / "misp"
XORIST = DATA / "pymisp-2.5.34.4__tests__57c4445b-c548-4654-af0b-4be3950d210f.json"
SAMSAM = DATA / "pymisp-2.5.34.4__tests__reportlab_testfiles__mainly_objects_2.json"
INFO_STEALER = DATA / "pymisp-2.5.34.4__tests__reportlab_testfiles__to_delete3.json"
URSNIF = DATA / "pymisp-2.5.34.4__tests__reportlab_testfiles__sighting_1.json"
REAL_EVENTS = [XORIST, SAMSAM, INFO_STEALER]


def load(path: Path) -> dict[str, Any]:
    value = orjson.loads(path.read_bytes())
    assert isinstance(value, dict)
    return value


def read(source: bytes | Path) -> tuple[list[dict[str, Any]], list[str], list[Position]]:
    objects, failures, positions = [], [], []
    for position, item in iter_objects(source):
        assert isinstance(position, Position)
        positions.append(position)
        if isinstance(item, DecodeFailure):
            failures.append(item.message)
        else:
            assert isinstance(item, dict)
            objects.append(item)
    return objects, failures, positions


@pytest.mark.parametrize("path", REAL_EVENTS, ids=lambda p: p.name.rsplit("__", 1)[-1])
def test_real_events_become_valid_stix(path: Path) -> None:
    objects, failures, positions = read(path)
    assert failures == []
    event = load(path)["Event"]
    ids = {o["id"] for o in objects}  # an unpublished event becomes a grouping
    assert f"report--{event['uuid']}" in ids or f"grouping--{event['uuid']}" in ids
    for obj in objects:
        validate(obj)  # every converted object passes detente's own validation
    assert all(p.within is not None and event["uuid"] in p.within for p in positions)
    assert event["uuid"] in positions[0].describe()


def test_the_events_tlp_marks_every_object_of_the_event() -> None:
    """MISP applies an event's tags to its attributes; misp-stix marks only the report, and
    a node releases nothing unmarked.  Every object the report references carries it."""
    objects, _, _ = read(XORIST)
    [report] = [o for o in objects if o["type"] == "report"]
    white = TLP_1_0_IDS["white"]
    assert report["object_marking_refs"] == [white]
    by_id = {o["id"]: o for o in objects}
    for ref in report["object_refs"]:
        assert white in by_id[ref]["object_marking_refs"], ref


def test_an_attributes_own_stricter_tlp_is_kept_beside_the_events() -> None:
    """An attribute tagged TLP:RED in a TLP:WHITE event: misp-stix marks its observed-data
    and indicator red but the ``file`` holding the value only with what we add; without the
    observed-data's markings on it, the file name would be released as TLP:WHITE."""
    event = load(XORIST)
    first = event["Event"]["Attribute"][4]
    first["Tag"] = [{"name": "tlp:red"}]
    objects, failures, _ = read(orjson.dumps(event))
    assert failures == []
    marked = [o for o in objects if first["uuid"] in o["id"] and o["type"] != "relationship"]
    assert marked
    for obj in marked:
        assert {TLP_1_0_IDS["red"], TLP_1_0_IDS["white"]} <= set(obj["object_marking_refs"])


@settings(max_examples=15, deadline=None)
@given(st.lists(st.sampled_from(["tlp:red", "tlp:amber", "tlp:green", None]),
                min_size=9, max_size=9))
def test_every_object_holding_an_attribute_carries_its_tlp_and_the_events(
    tags: list[str | None],
) -> None:
    """Whatever TLP each attribute of the event carries, every STIX object made from an
    attribute carries that TLP and the event's: nothing is decided on less."""
    event = load(XORIST)
    for attribute, tag in zip(event["Event"]["Attribute"], tags, strict=True):
        if tag is not None:
            attribute["Tag"] = [{"name": tag}]
    objects, failures, _ = read(orjson.dumps(event))
    assert failures == []
    for attribute, tag in zip(event["Event"]["Attribute"], tags, strict=True):
        made = [o for o in objects if o["id"].endswith(attribute["uuid"])
                and o["type"] != "relationship"]
        assert made, attribute["uuid"]
        for obj in made:
            markings = set(obj["object_marking_refs"])
            assert TLP_1_0_IDS["white"] in markings
            if tag is not None:
                assert TLP_1_0_IDS[tag.split(":")[1]] in markings, (tag, obj["id"])


def test_every_form_misp_writes_gives_the_same_objects(tmp_path: Path) -> None:
    one, two = load(XORIST), load(INFO_STEALER)
    expected = read(XORIST)[0] + read(INFO_STEALER)[0]
    forms = {
        "array": orjson.dumps([one, two]),
        "json lines": orjson.dumps(one) + b"\n" + orjson.dumps(two) + b"\n",
        "rest api": orjson.dumps({"response": [one, two]}),
    }
    for name, data in forms.items():
        objects, failures, _ = read(data)
        assert failures == [] and objects == expected, name
    feed = tmp_path / "feed"
    feed.mkdir()
    manifest = {}
    for event in (one, two):
        uuid = event["Event"]["uuid"]
        (feed / f"{uuid}.json").write_bytes(orjson.dumps(event))
        manifest[uuid] = {"info": event["Event"]["info"]}
    (feed / "manifest.json").write_bytes(orjson.dumps(manifest))
    objects, failures, positions = read(feed)
    assert failures == [] and objects == expected
    assert f"{one['Event']['uuid']}.json" in positions[0].describe()


def test_conversion_is_deterministic_so_a_second_ingest_is_all_duplicates() -> None:
    assert read(SAMSAM)[0] == read(SAMSAM)[0]


def test_a_stix_bundle_is_not_taken_for_misp() -> None:
    bundle = {"type": "bundle", "id": "bundle--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
              "objects": [{"type": "x-thing", "id": "x-thing--8e2e2d2b-17d4-4cbf-938f-"
                           "98ee46b3cd3f", "Event": "not misp"}]}
    objects, failures, _ = read(orjson.dumps(bundle))
    assert failures == [] and objects == bundle["objects"]


# -- malformed and hostile MISP input: a clear refusal naming the event -------------------


def _xorist(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(load(XORIST))
    event["Event"].update(changes)
    return {"Event": {k: v for k, v in event["Event"].items() if v is not None}}


@pytest.mark.parametrize(("document", "message"), [
    ({"Event": "nope"}, "MISP event: 'Event' is not a JSON object"),
    (_xorist(uuid=None), "MISP event 'Ransomware - Xorist': has no uuid"),
    (_xorist(uuid="../../etc"), "has uuid '../../etc', which is not a UUID"),
    (_xorist(Attribute={"type": "md5"}), "MISP event 57c4445b-c548-4654-af0b-4be3950d210f "
                                         "'Ransomware - Xorist': 'Attribute' must be a list"),
    ({"response": [{"Attribute": []}]}, "MISP response[0]: not a MISP event"),
])  # fmt: skip
def test_malformed_events_are_refused_by_name(document: dict[str, Any], message: str) -> None:
    objects, failures, _ = read(orjson.dumps(document))
    assert objects == []
    [failure] = failures
    assert message in failure


def test_an_event_misp_stix_cannot_convert_is_refused_and_the_others_go_on() -> None:
    """A real event from an older MISP: its galaxy clusters have no uuid."""
    data = orjson.dumps([load(URSNIF), load(XORIST)])
    objects, failures, _ = read(data)
    [failure] = failures
    assert failure.startswith("MISP event 5b646415-7b48-40d5-86b4-c0070acd0835 "
                              "'Ursnif, MALWAREMESSIAGH': misp-stix cannot convert it: ")
    assert objects == read(XORIST)[0]


def test_records_misp_stix_keeps_in_its_custom_form_are_not_refusals() -> None:
    """Two pe objects of the SamSam event lack pe_type: misp-stix reports an error but keeps
    them as x-misp-object, with every attribute."""
    objects, failures, _ = read(SAMSAM)
    assert failures == []
    kept = {o["id"] for o in objects if o["type"] == "x-misp-object"}
    assert "x-misp-object--8168c6de-3598-40b0-af61-205f042834f9" in kept


def _feed(tmp_path: Path, manifest: dict[str, Any], files: dict[str, bytes]) -> Path:
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "manifest.json").write_bytes(orjson.dumps(manifest))
    for name, data in files.items():
        (feed / name).write_bytes(data)
    return feed


def test_a_manifest_key_that_is_not_a_uuid_never_becomes_a_path(tmp_path: Path) -> None:
    """A hostile feed names ``../secret`` in its manifest, hoping ingest reads a file
    outside the feed directory."""
    (tmp_path / "secret.json").write_bytes(orjson.dumps(load(XORIST)))
    feed = _feed(tmp_path, {"../secret": {}}, {})
    objects, failures, _ = read(feed)
    assert objects == []
    [failure] = failures
    assert "manifest entry '../secret'" in failure and "not an event uuid" in failure


def test_a_feed_file_holding_another_event_is_refused(tmp_path: Path) -> None:
    claimed = "11111111-2222-4333-8444-555555555555"
    feed = _feed(tmp_path, {claimed: {}}, {f"{claimed}.json": XORIST.read_bytes()})
    objects, failures, _ = read(feed)
    assert objects == []
    assert "holds event 57c4445b-c548-4654-af0b-4be3950d210f, not the" in failures[0]


def test_a_missing_or_broken_feed_file_is_named(tmp_path: Path) -> None:
    gone, broken = "11111111-2222-4333-8444-555555555555", "21111111-2222-4333-8444-555555555555"
    feed = _feed(tmp_path, {gone: {}, broken: {}}, {f"{broken}.json": b"{not json"})
    _, failures, _ = read(feed)
    assert len(failures) == 2
    assert gone in failures[0] and "the file is missing" in failures[0]
    assert broken in failures[1] and "cannot be read" in failures[1]


def test_a_broken_manifest_and_a_plain_directory_are_failures_not_exceptions(
    tmp_path: Path,
) -> None:
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "manifest.json").write_bytes(b"[1, 2]")
    [(_, failure)] = list(iter_objects(feed))
    assert isinstance(failure, DecodeFailure) and "manifest.json is not a JSON object" in (
        failure.message)
    plain = tmp_path / "plain"
    plain.mkdir()
    [(_, failure)] = list(iter_objects(plain))
    assert isinstance(failure, DecodeFailure) and "without a MISP manifest.json" in (
        failure.message)
