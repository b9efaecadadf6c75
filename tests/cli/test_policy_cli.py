"""`policy explain` and `policy matrix` say whether each released view is fingerprinted."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run

from detente.node import Node
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance

CLEAR = "indicator--0b1e2d3c-4a5b-4c6d-8e7f-9a0b1c2d3e41"
GREEN = "indicator--0b1e2d3c-4a5b-4c6d-8e7f-9a0b1c2d3e42"
RED = "indicator--0b1e2d3c-4a5b-4c6d-8e7f-9a0b1c2d3e43"


def _indicator(oid: str, tlp: str, node: Node) -> dict[str, object]:
    return {
        "type": "indicator", "spec_version": "2.1", "id": oid,
        "created_by_ref": node.identity_id,
        "created": "2026-11-01T00:00:00.000Z", "modified": "2026-11-01T00:00:00.000Z",
        "name": f"relay ({tlp})", "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix", "valid_from": "2026-11-01T00:00:00Z",
        "description": "Observed beaconing to a command server; organization-wide block.",
        "object_marking_refs": [TLP_2_0_IDS[tlp]],
    }


@pytest.fixture
def home(tmp_path: Path) -> Path:
    node = Node.init(tmp_path / "us", "us", communities="coalition")
    key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
    node.partners.add("fr", url="http://127.0.0.1:9", public_key=key,
                      communities=frozenset({"coalition"}), tier=3)
    node.store.put_many([validate(_indicator(o, t, node))
                         for o, t in ((CLEAR, "clear"), (GREEN, "green"), (RED, "red"))],
                        Provenance())
    node.close()
    return tmp_path / "us"


def _explain(capsys: pytest.CaptureFixture[str], home: Path, oid: str) -> dict[str, object]:
    r = run(capsys, "policy", "explain", oid, "--partner", "fr", "--home", str(home), "--json")
    assert r.code == 0, r.err
    doc: dict[str, object] = orjson.loads(r.out)
    return doc


def test_explain_says_whether_the_view_is_fingerprinted(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clear = _explain(capsys, home, CLEAR)
    assert clear["verdict"] != "deny"
    assert clear["fingerprint"] == {"fingerprinted": False,
                                    "reason": "TLP:CLEAR: released unmodified (public content)"}
    green = _explain(capsys, home, GREEN)
    assert green["verdict"] != "deny"
    assert green["fingerprint"] == {"fingerprinted": True,
                                    "reason": "TLP:GREEN: fingerprinted for each partner"}
    red = _explain(capsys, home, RED)
    assert red["verdict"] == "deny" and red["fingerprint"] is None
    r = run(capsys, "policy", "explain", GREEN, "--partner", "fr", "--home", str(home))
    assert "fingerprint: yes (TLP:GREEN: fingerprinted for each partner)" in r.out


def test_matrix_has_a_fingerprint_column(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    r = run(capsys, "policy", "matrix", CLEAR, "--home", str(home), "--json")
    assert r.code == 0, r.err
    (row,) = orjson.loads(r.out)
    assert row["partner"] == "fr" and row["fingerprint"]["fingerprinted"] is False
    r = run(capsys, "policy", "matrix", GREEN, "--home", str(home))
    assert "fingerprint" in r.out and "yes" in r.out
