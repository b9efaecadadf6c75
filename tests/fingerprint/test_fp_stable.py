"""Served views are derived again on every read: the fingerprinter's output must never
change for the same (view, partner, object version, secret).

The release path logs the hash of each partner's view and serving derives the bytes again
(:mod:`detente.release.views`); a view that no longer derives to its logged hash is not
served (fail closed).  So any change to what ``embed`` writes — a faster helper that
orders keys differently, a rounding, one more position — would silently stop a node from
serving everything it released before the upgrade.  This test pins the exact bytes over a
varied corpus (real published STIX, an ATT&CK slice, a synthetic report with every
channel, generated indicators) to digests computed with the code as released.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path
from typing import Any

import orjson
from bench._fpsim import synthetic_report
from bench._stixgen import TLP_GREEN, indicators
from tests.fingerprint.fp_fixtures import SECRET
from tests.realdata import REAL_DATA

from detente.fingerprint import Fingerprinter

ATTACK_SLICE = Path(__file__).resolve().parents[1] / "data" / "attack-ics-slice.json"
PARTNERS = ("partner-00", "b")

#: sha256 over every object's embed output for each partner, per corpus (computed with
#: the fingerprinter of detente 2026-12-05; see the module docstring before changing one)
EXPECTED = {
    "real": "512ae3d3bbf95fedf0ca2d50eb5aff13f9580e3ef255b2f1dd7c39ecc56b4104",
    "attack": "01624a9000952ad5653951a91a7ae67eaf22dfc2fea8353483a35f7d342cc348",
    "synthetic": "4e7813686b883f914a9f124d479f3f95203e0f0aa4cebd81038d84023d9dbfaf",
    "indicators": "aa44269deb54b4de9c5345d501f2e9c926267d6e15a9072076d21f5adab2b6b6",
}


def _objects(doc: Any) -> list[dict[str, Any]]:
    objects = doc.get("objects", []) if isinstance(doc, dict) else []
    return [o for o in objects if isinstance(o, dict) and isinstance(o.get("type"), str)]


def _corpus(name: str) -> list[dict[str, Any]]:
    if name == "real":
        out: list[dict[str, Any]] = []
        for path in sorted(REAL_DATA.glob("*.json")):
            try:
                out += _objects(json.loads(path.read_text("utf-8")))
            except ValueError:  # the corpus keeps a few malformed published files
                continue
        return out
    if name == "attack":
        return _objects(json.loads(ATTACK_SLICE.read_text("utf-8")))
    if name == "synthetic":
        return synthetic_report(random.Random(7), 60)
    return [dict(o, object_marking_refs=[TLP_GREEN]) for o in indicators(300)]


def _digest(fp: Fingerprinter, objects: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for obj in objects:
        key = f"{obj.get('id')}|{obj.get('modified') or obj.get('created')}"
        for partner in PARTNERS:
            result = fp.embed(obj, partner, object_key=key)
            h.update(orjson.dumps(result.view))  # the served bytes: key order included
            h.update(orjson.dumps(result.record.to_json()))
            h.update(orjson.dumps(list(result.decoys)))
    return h.hexdigest()


def test_embed_output_is_unchanged_over_the_corpus() -> None:
    fp = Fingerprinter(SECRET)
    got = {name: _digest(fp, _corpus(name)) for name in EXPECTED}
    assert got == EXPECTED, (
        "the fingerprinter's output changed: views released before this change would no "
        "longer derive to their logged hashes and would not be served (unless the corpus "
        "itself changed — tests/data, bench/_fpsim.py, bench/_stixgen.py: then recompute "
        "EXPECTED with the fingerprinter of main)")


def test_embed_output_does_not_depend_on_what_was_embedded_before() -> None:
    """Caches (plans, keyed laws, text scans) never leak into the bytes: embedding the
    corpus backwards gives each object the same bytes."""
    objects = _corpus("synthetic")[:20]
    fp = Fingerprinter(SECRET)
    forward = {o["id"]: fp.embed(o, "b", object_key=o["id"]).view for o in objects}
    fresh = Fingerprinter(SECRET)
    backward = {o["id"]: fresh.embed(o, "b", object_key=o["id"]).view
                for o in reversed(objects)}
    assert {k: orjson.dumps(v) for k, v in forward.items()} == \
        {k: orjson.dumps(v) for k, v in backward.items()}
