"""The markings vocabulary matches the published marking-definitions; canonical JSON is JCS."""

from __future__ import annotations

import orjson
import pytest
from tests.realdata import REAL_DATA

from detente.stix import vocab

DATA = REAL_DATA


@pytest.mark.skipif(not DATA.is_dir(), reason="real STIX corpus not present")
def test_tlp_2_0_ids_match_the_published_marking_definitions() -> None:
    seen = {}
    for path in DATA.glob("cti-stix-common-objects__*marking-definition*.json"):
        for obj in orjson.loads(path.read_bytes()).get("objects", []):
            ext = obj.get("extensions", {}).get(vocab.TLP_2_0_EXTENSION)
            if ext:
                seen[ext["tlp_2_0"]] = obj["id"]
    for path in DATA.glob("cti-stix-common-objects__tlp-2.0__examples__tlp-*.json"):
        for obj in orjson.loads(path.read_bytes())["objects"]:
            seen[obj["extensions"][vocab.TLP_2_0_EXTENSION]["tlp_2_0"]] = obj["id"]
    assert seen == vocab.TLP_2_0_IDS


def test_tlp_levels() -> None:
    assert vocab.tlp_level(vocab.TLP_1_0_IDS["white"]) == "clear"
    assert vocab.tlp_level(vocab.TLP_AMBER_STRICT) == "amber+strict"
    assert vocab.tlp_level("marking-definition--00000000-0000-4000-8000-000000000000") is None


def test_canonical_json_is_rfc_8785() -> None:
    assert vocab.canonical_json({"b": 1.0, "a": [1e21, "é"], "c": None}) == (
        b'{"a":[1e+21,"\xc3\xa9"],"b":1,"c":null}'
    )
