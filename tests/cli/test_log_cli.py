"""`detente log status|show|prove` on a node that released something."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run
from tests.store.helpers import indicator

from detente.ledger import Checkpoint, verify_inclusion
from detente.node import Node
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance


def test_status_show_and_prove(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = Node.init(tmp_path / "us", "us", communities="coalition")
    key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
    node.partners.add("fr", url="http://127.0.0.1:9", public_key=key,
                      communities=frozenset({"coalition"}), tier=2)
    obj = indicator(object_marking_refs=[TLP_2_0_IDS["green"]])
    node.store.put_many([validate(obj)], Provenance())
    node.releaser.catch_up("fr")
    home = str(node.home)
    r = run(capsys, "log", "status", "--home", home, "--json")
    status = orjson.loads(r.out)
    assert status["size"] >= 1 and status["alarms"] == []
    cp = Checkpoint.from_note(status["checkpoint"], {"detente/us": node.verify_key})
    assert cp.size == status["size"]
    r = run(capsys, "log", "show", "--home", home, "--kind", "release", "--json")
    [entry] = orjson.loads(r.out)
    assert entry["partner"] == "fr" and entry["object_id"] == obj["id"]
    r = run(capsys, "log", "prove", "--home", home, "--object", obj["id"], "--partner", "fr",
            "--json")
    doc = orjson.loads(r.out)
    [rel] = doc["releases"]
    verify_inclusion(bytes.fromhex(rel["leaf_hash"]), rel["index"], doc["tree_size"],
                     [bytes.fromhex(h) for h in rel["proof"]], cp.root)
    r = run(capsys, "log", "prove", "--home", home, "--object", obj["id"], "--partner", "ru")
    assert r.code == 1 and "no release" in r.err
