"""MISP out: real MISP events go MISP -> detente -> MISP feed with every attribute intact,
the feed is what MISP and PyMISP read, and a partner's feed holds only what it may see."""

from __future__ import annotations

import base64
import copy
import hashlib
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from nacl.signing import SigningKey
from pymisp import MISPEvent
from pymisp.tools import feed_meta_generator
from tests.cli.helpers import run
from tests.misp.test_intake import INFO_STEALER, REAL_EVENTS, SAMSAM, XORIST, load
from tests.store.helpers import indicator

from detente.node import Node
from detente.release import read_releases
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Query

Attr = tuple[str, str, str, bool]


def attributes(event: dict[str, Any]) -> Counter[Attr]:
    """Every attribute of an event, in or out of MISP objects: (type, value, category,
    to_ids), counted (an event may repeat a value)."""
    found: Counter[Attr] = Counter()
    records = list(event.get("Attribute", []))
    for obj in event.get("Object", []):
        records += obj.get("Attribute", [])
    for a in records:
        to_ids = a["to_ids"] if isinstance(a["to_ids"], bool) else a["to_ids"] in ("1", 1)
        found[(a["type"], a["value"], a["category"], to_ids)] += 1
    return found


@pytest.fixture
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    h = tmp_path / "us"
    assert run(capsys, "init", "--home", str(h), "--name", "us").code == 0
    return h


def ingest(capsys: pytest.CaptureFixture[str], home: Path, *paths: Path) -> dict[str, Any]:
    r = run(capsys, "ingest", "--home", str(home), *map(str, paths), "--json")
    summary = orjson.loads(r.out)
    assert isinstance(summary, dict)
    return summary


def export(capsys: pytest.CaptureFixture[str], home: Path, out: Path, *extra: str) -> str:
    r = run(capsys, "export", "--home", str(home), "--format", "misp", "--output", str(out),
            *extra)
    assert r.code == 0, r.err
    return r.out


def feed_events(feed: Path) -> dict[str, dict[str, Any]]:
    events = {}
    for path in feed.glob("*-*-*-*-*.json"):
        event = orjson.loads(path.read_bytes())["Event"]
        assert path.name == f"{event['uuid']}.json"
        events[event["uuid"]] = event
    return events


def test_real_events_survive_misp_to_detente_to_misp_feed(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = ingest(capsys, home, *REAL_EVENTS)
    assert summary["rejected"] == 0 and summary["stored"] > 100
    feed = tmp_path / "feed"
    out = export(capsys, home, feed)
    assert "wrote a MISP feed of 3 events" in out
    events = feed_events(feed)
    assert len(events) == 3
    for path in REAL_EVENTS:
        original = load(path)["Event"]
        back = events[original["uuid"]]
        assert attributes(back) == attributes(original), path.name
        assert back["info"] == original["info"]
        assert back["Orgc"] == {"name": "CIRCL", "uuid": original["Orgc"]["uuid"]}
        assert "tlp:white" in {t["name"] for t in back["Tag"]}
    # the MISP objects keep their template names and relations
    samsam = load(SAMSAM)["Event"]
    relations = Counter((o["name"], a["object_relation"])
                        for o in samsam["Object"] for a in o["Attribute"])
    back_relations = Counter((o["name"], a["object_relation"])
                             for o in events[samsam["uuid"]]["Object"] for a in o["Attribute"])
    assert back_relations == relations


def test_the_feed_is_what_misp_reads_manifest_and_hashes(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(capsys, home, XORIST, INFO_STEALER)
    feed = tmp_path / "feed"
    export(capsys, home, feed)
    manifest = orjson.loads((feed / "manifest.json").read_bytes())
    events = feed_events(feed)
    assert set(manifest) == set(events)
    for uuid, entry in manifest.items():
        # Feed.php reads these to decide what to fetch; Orgc and timestamp above all
        assert {"info", "date", "analysis", "threat_level_id", "timestamp", "Orgc",
                "Tag"} <= set(entry)
        assert int(entry["timestamp"]) == int(events[uuid]["timestamp"])
        assert entry["info"] == events[uuid]["info"]
    # hashes.csv: one "md5(value),event uuid" line per attribute value; composite values
    # ("regkey|value") count each part, as MISP's cache does
    expected: Counter[str] = Counter()
    for path in (XORIST, INFO_STEALER):
        event = load(path)["Event"]
        for type_, value, _, _ in attributes(event).elements():
            for part in value.split("|") if "|" in type_ else [value]:
                expected[f"{hashlib.md5(part.encode()).hexdigest()},{event['uuid']}"] += 1
    lines = (feed / "hashes.csv").read_text().splitlines()
    assert Counter(lines) == expected
    # PyMISP loads every event file, and its own feed tool rebuilds the same metadata
    for path in feed.glob("*-*-*-*-*.json"):
        MISPEvent().load_file(str(path))
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(feed, rebuilt)
    feed_meta_generator(rebuilt)
    assert orjson.loads((rebuilt / "manifest.json").read_bytes()) == manifest
    assert Counter((rebuilt / "hashes.csv").read_text().splitlines()) == Counter(lines)


def test_detente_reads_back_the_feed_it_wrote(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest(capsys, home, SAMSAM)
    feed = tmp_path / "feed"
    export(capsys, home, feed)
    other = tmp_path / "other"
    assert run(capsys, "init", "--home", str(other), "--name", "other").code == 0
    summary = ingest(capsys, other, feed)
    assert summary["rejected"] == 0 and summary["stored"] > 20


def test_objects_no_report_references_become_one_stable_event(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loose = tmp_path / "loose.json"
    objs = [indicator(object_marking_refs=[TLP_2_0_IDS["clear"]]) for _ in range(3)]
    loose.write_bytes(orjson.dumps(objs))
    assert ingest(capsys, home, loose)["rejected"] == 0
    first, second = tmp_path / "a", tmp_path / "b"
    export(capsys, home, first)
    export(capsys, home, second)
    [event] = feed_events(first).values()
    assert list(feed_events(second)) == [event["uuid"]]  # same uuid: MISP updates it
    assert event["Orgc"]["name"] == "us"
    values = {a["value"] for a in event.get("Attribute", [])} | {
        a["value"] for o in event.get("Object", []) for a in o["Attribute"]}
    assert "198.51.100.7" in values


# -- as a partner: only what it may see ----------------------------------------------------


def _add_partner(capsys: pytest.CaptureFixture[str], home: Path, name: str) -> None:
    key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
    r = run(capsys, "partner", "add", name, "--home", str(home), "--url",
            "http://127.0.0.1:9", "--key", key, "--tier", "2")
    assert r.code == 0, r.err


def _red_copy_of_xorist(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The Xorist event as a TLP:RED event of its own (new uuids, a secret value)."""
    event = copy.deepcopy(load(XORIST))
    body = event["Event"]
    body["uuid"] = "7ed0e1a5-0000-4000-8000-00000000aaaa"
    body["info"] = "Red only"
    body["Tag"] = [{"name": "tlp:red"}]
    for n, attribute in enumerate(body["Attribute"]):
        attribute["uuid"] = f"7ed0e1a5-0000-4000-8000-{n:012d}"
    body["Attribute"][4]["value"] = "red-secret-dropper.exe"
    path = tmp_path / "red-event.json"
    path.write_bytes(orjson.dumps(event))
    return path, event


def test_a_partners_feed_never_holds_what_it_may_not_see(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    red_path, _ = _red_copy_of_xorist(tmp_path)
    red = indicator(object_marking_refs=[TLP_2_0_IDS["red"]], name="red indicator",
                    pattern="[ipv4-addr:value = '203.0.113.66']")
    clear = indicator(object_marking_refs=[TLP_2_0_IDS["clear"]], name="clear indicator",
                      pattern="[ipv4-addr:value = '198.51.100.9']")
    loose = tmp_path / "loose.json"
    loose.write_bytes(orjson.dumps([red, clear]))
    assert ingest(capsys, home, XORIST, red_path, loose)["rejected"] == 0
    _add_partner(capsys, home, "fr")
    feed = tmp_path / "fr-feed"
    export(capsys, home, feed, "--partner", "fr")
    everything = b"".join(p.read_bytes() for p in feed.iterdir())
    events = feed_events(feed)
    # TLP:CLEAR and TLP:WHITE content is there, with every attribute of the white event
    assert b"198.51.100.9" in everything
    xorist = load(XORIST)["Event"]
    assert attributes(events[xorist["uuid"]]) == attributes(xorist)
    # nothing of the TLP:RED event or the TLP:RED indicator: not its file, manifest or hashes
    assert "7ed0e1a5-0000-4000-8000-00000000aaaa" not in events
    for secret in (b"red-secret-dropper.exe", b"203.0.113.66", b"Red only", red["id"].encode(),
                   b"7ed0e1a5-0000-4000-8000"):
        assert secret not in everything, secret
    md5 = hashlib.md5(b"red-secret-dropper.exe").hexdigest()
    assert md5 not in (feed / "hashes.csv").read_text()
    # while the operator's own feed (no --partner) has them
    mine = tmp_path / "mine"
    export(capsys, home, mine)
    assert "7ed0e1a5-0000-4000-8000-00000000aaaa" in feed_events(mine)


def test_an_attributes_red_tag_inside_a_white_event_stays_home(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    event = load(XORIST)
    secret = event["Event"]["Attribute"][4]
    secret["Tag"] = [{"name": "tlp:red"}]
    path = tmp_path / "mixed.json"
    path.write_bytes(orjson.dumps(event))
    assert ingest(capsys, home, path)["rejected"] == 0
    _add_partner(capsys, home, "fr")
    feed = tmp_path / "fr-feed"
    export(capsys, home, feed, "--partner", "fr")
    everything = b"".join(p.read_bytes() for p in feed.iterdir())
    # (its file name also appears inside a white regkey|value attribute: that one stays)
    assert secret["uuid"].encode() not in everything
    md5 = hashlib.md5(secret["value"].encode()).hexdigest()
    assert md5 not in (feed / "hashes.csv").read_text()
    # nor over TAXII: no view served to fr is the file named by the red attribute
    node = Node.open(home)
    try:
        page = read_releases(node.store.engine, "fr", Query(versions=("all",)))
        served = [orjson.loads(v.view) for v in page.views]
    finally:
        node.close()
    assert served and not [o for o in served if secret["uuid"] in o["id"]]
    assert not [o for o in served if o.get("name") == secret["value"]]
    [back] = feed_events(feed).values()
    assert attributes(back) == attributes(event["Event"]) - Counter(
        {(secret["type"], secret["value"], secret["category"], secret["to_ids"]): 1})


def test_re_exporting_for_a_partner_removes_event_files_it_may_no_longer_see(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    red_path, red_event = _red_copy_of_xorist(tmp_path)
    ingest(capsys, home, XORIST, red_path)
    _add_partner(capsys, home, "fr")
    feed = tmp_path / "feed"
    export(capsys, home, feed)  # the operator's feed first: the red event is in it
    red_file = feed / f"{red_event['Event']['uuid']}.json"
    assert red_file.exists()
    (feed / "notes.txt").write_text("kept: not an event file")
    export(capsys, home, feed, "--partner", "fr")
    assert not red_file.exists()
    assert (feed / "notes.txt").exists()
    assert set(orjson.loads((feed / "manifest.json").read_bytes())) == set(feed_events(feed))


def test_export_mistakes_are_clear(home: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "export", "--home", str(home), "--format", "misp")
    assert r.code == 2 and "give --output DIR" in r.err
    r = run(capsys, "export", "--home", str(home), "--format", "misp", "--output",
            str(tmp_path / "f"), "--partner", "nobody")
    assert r.code == 1 and "no partner named 'nobody'" in r.err
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("precious")
    r = run(capsys, "export", "--home", str(home), "--format", "misp", "--output", str(busy))
    assert r.code == 2 and "holds no MISP manifest.json" in r.err
    assert (busy / "thesis.txt").read_text() == "precious"
    r = run(capsys, "export", "--home", str(home), "--format", "csv")
    assert r.code == 2 and "--format" in r.err and "'csv' is not one of" in r.err
    r = run(capsys, "export", "--home", str(home), "--partner", "fr")
    assert r.code == 2 and "--partner goes with --format misp" in r.err
    assert "Traceback" not in r.err
