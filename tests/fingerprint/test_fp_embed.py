"""Embedding: deterministic, shared positions, meaning preserved, records round-trip."""

from __future__ import annotations

import json
import math

import pytest
from tests.fingerprint.fp_fixtures import SECRET, world
from tests.realdata import REAL_DATA

from detente.fingerprint import (
    EmbedRecord,
    Fingerprinter,
    FingerprintParams,
    ParamsError,
    ReleaseRecordError,
)
from detente.fingerprint.channels.variants import default_dictionary
from detente.fingerprint.index import canonical_stream

CORPUS = REAL_DATA
LOCATION = {
    "type": "location", "spec_version": "2.1",
    "id": "location--a6e9345f-5a15-4c29-8bb3-7dcc5d168d64",
    "created": "2016-04-06T20:03:00.000Z", "modified": "2016-04-06T20:03:00.000Z",
    "name": "Raqqa", "latitude": 35.9594, "longitude": 38.9981, "precision": 30.0,
}  # fmt: skip


def _key(obj: dict) -> str:  # type: ignore[type-arg]
    return f"{obj['id']}|{obj['modified']}"


def test_embedding_is_deterministic_per_object_version_and_partner() -> None:
    w = world()
    obj = w.objects[0]
    a = w.fp.embed(obj, "partner-00", object_key=_key(obj))
    b = Fingerprinter(SECRET).embed(obj, "partner-00", object_key=_key(obj))
    assert a.view == b.view and a.record == b.record
    assert a.fingerprint_id.startswith("fp--") and SECRET.hex() not in json.dumps(
        a.record.to_json()
    )


def test_every_partner_gets_symbols_at_the_same_positions() -> None:
    w = world()
    for k, obj in enumerate(w.objects):
        positions = {
            p: sorted(r.fingerprint["positions"], key=lambda x: x["id"])  # type: ignore[index]
            for p, r in ((r.partner, r) for r in w.releases[k * 20 : (k + 1) * 20])
        }
        ids = {tuple(x["id"] for x in rows) for rows in positions.values()}
        assert len(ids) == 1, obj["id"]
    refs = [w.views[p][-1]["object_refs"] for p in w.partners]
    assert all(r == w.objects[-1]["object_refs"] for r in refs)  # MISP reads it in order
    labelled = [k for k, o in enumerate(w.objects) if len(o.get("labels", ())) >= 3]
    labels = {tuple(w.views[p][k]["labels"]) for p in w.partners for k in labelled}
    assert len(labelled) >= 3 and len(labels) > len(labelled)


def test_views_carry_the_same_intelligence() -> None:
    w = world()
    words = default_dictionary()
    for obj, mine in zip(w.objects, w.views["partner-04"], strict=True):
        assert set(mine) == set(obj)
        for name in ("id", "created", "modified", "pattern", "name", "published", "type"):
            assert mine.get(name) == obj.get(name)
        for name, value in obj.items():
            if isinstance(value, list):
                assert sorted(map(json.dumps, mine[name])) == sorted(map(json.dumps, value))
            elif name == "description":
                assert canonical_stream(mine[name], words) == canonical_stream(value, words)
            elif name.endswith(("_seen", "valid_from", "valid_until")):
                assert mine[name] == value  # timestamps are never marked


def test_coordinates_move_less_than_the_configured_metres() -> None:
    fp = Fingerprinter(SECRET, FingerprintParams(max_metres=10.0))
    for k in range(30):
        view = fp.embed(LOCATION, f"p{k}", object_key="loc|1").view
        north = (view["latitude"] - LOCATION["latitude"]) * 111_320
        east = (view["longitude"] - LOCATION["longitude"]) * 111_320 * math.cos(math.radians(36))
        assert 0 < abs(north) <= 10.1 and 0 < abs(east) <= 10.1
    assert fp.capacity(LOCATION)["number"] == 2
    unstated = {k: v for k, v in LOCATION.items() if k != "precision"}
    assert fp.capacity(unstated)["number"] == 0


def test_objects_without_marks_are_served_unchanged() -> None:
    fp = Fingerprinter(SECRET)
    sco = {
        "type": "ipv4-addr",
        "spec_version": "2.1",
        "id": "ipv4-addr--ff26c055-6336-5bc5-b98d-13d6226742dd",
        "value": "198.51.100.3",
    }
    result = fp.embed(sco, "p1", object_key="sco|")
    assert result.view == sco and result.record.positions == ()


def test_decoys_are_off_by_default_and_recorded_when_on() -> None:
    w = world()
    report = w.objects[-1]
    assert w.fp.embed(report, "p", object_key=_key(report)).decoys == ()
    fp = Fingerprinter(SECRET, FingerprintParams(decoys=True))
    result = fp.embed(report, "p", object_key=_key(report))
    (decoy,) = result.decoys
    assert decoy["id"] in result.view["object_refs"] and decoy["id"] not in report["object_refs"]
    assert result.record.decoys[0]["id"] == decoy["id"]
    assert result.record.decoys[0]["value"].endswith(".canary.invalid")


def test_records_round_trip_and_malformed_records_are_domain_errors() -> None:
    w = world()
    record = EmbedRecord.from_json(w.releases[0].fingerprint)
    assert EmbedRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    out_of_range = {"id": "a", "ch": "list", "q": 2, "sym": 5, "loc": {}}
    head = {"v": 2, "fingerprint_id": "x", "partner": "p", "object_key": "k"}
    for bad in ({}, {"v": 1}, {"v": 3}, {**head, "positions": [out_of_range]},
                {**head, "positions": 3}):  # fmt: skip
        with pytest.raises(ReleaseRecordError):
            EmbedRecord.from_json(bad)
    legacy = {**head, "v": 1, "positions": [{"id": "a", "ch": "number", "q": 1000, "sym": 5,
                                             "loc": {"field": "valid_from"}}]}  # fmt: skip
    assert EmbedRecord.from_json(legacy).positions == ()  # evidence only, never read


def test_params_are_validated() -> None:
    with pytest.raises(ParamsError):
        FingerprintParams(epsilon=2.0)
    with pytest.raises(ParamsError):
        FingerprintParams(positions_target=0)
    with pytest.raises(ParamsError):
        FingerprintParams(plain_types=frozenset({"x"}), marked_types=frozenset({"x"}))


def test_capacity_on_the_real_corpus_is_positive_for_reports() -> None:
    fp = Fingerprinter(SECRET)
    doc = json.loads((CORPUS / "cti-documentation__examples__apt1.json").read_text())
    totals = {"list": 0, "text": 0, "number": 0}
    for obj in doc["objects"]:
        for channel, count in fp.capacity(obj).items():
            if channel in totals:
                totals[channel] += count
    assert totals["list"] > 20 and totals["text"] > 5 and totals["number"] == 0
