"""Key rotation: a statement signed by the old key; accepted by hand or during sync; the old
key refused afterwards; forged, misdirected and stale statements refused."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run
from tests.federation.exchange.cluster import Cluster, cluster, indicator, put

from detente.federation.exchange.keys import (
    KeyRotationError,
    RotationStatement,
    accept_rotation,
    rotate_node_key,
    verify_rotation,
)
from detente.federation.exchange.pull import sync_partner
from detente.federation.http.signatures import sign_request


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path) as c:
        us, _fr = c.add("us"), c.add("fr")
        c.link("us", "fr")
        c.link("fr", "us")
        put(us, *(indicator(us, f"192.0.2.{i}") for i in range(1, 4)))
        yield c


def test_statement_round_trip_and_checks(pair: Cluster) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    old_partner = fr.partners.get("us")
    statement = rotate_node_key(us)
    assert statement.old_key == old_partner.public_key
    assert statement.new_key == bytes(us.verify_key)
    parsed = RotationStatement.from_bytes((us.home / "key-rotation.json").read_bytes())
    assert parsed == statement
    verify_rotation(parsed, old_partner)
    # (3) forged: the same statement signed by some other key
    forged = RotationStatement.create("us", SigningKey.generate(), SigningKey.generate().verify_key)
    with pytest.raises(KeyRotationError, match="rotates a key we do not hold"):
        verify_rotation(forged, old_partner)
    tampered = RotationStatement(parsed.name, parsed.old_key, bytes(32), parsed.time,
                                 parsed.signature)
    with pytest.raises(KeyRotationError, match="not signed by its current key"):
        verify_rotation(tampered, old_partner)
    # (2) misdirected: a statement for another partner
    with pytest.raises(KeyRotationError, match="not 'fr'"):
        verify_rotation(parsed, us.partners.get("fr"))
    # (1) malformed
    for raw in (b"[]", b"{}", b"not json", parsed.to_bytes().replace(b"detente-key", b"other")):
        with pytest.raises(KeyRotationError):
            RotationStatement.from_bytes(raw)
    accept_rotation(fr, parsed)
    assert fr.partners.get("us").public_key == statement.new_key
    # stale: replaying the accepted statement does nothing (its old key is gone)
    with pytest.raises(KeyRotationError, match="already rotated"):
        accept_rotation(fr, parsed)


def test_sync_accepts_a_served_rotation_and_refuses_the_old_key(pair: Cluster) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    pair.start("us")
    pair.start("fr")
    pair.release_for("fr")
    assert sync_partner(fr, "us").new == 3
    old_key = us.signing_key
    rotate_node_key(us)  # the live server signs with the new key from now on
    put(us, indicator(us, "192.0.2.99"))
    pair.release_for("fr")
    summary = sync_partner(fr, "us")
    assert summary.ok and summary.key_rotated and summary.new == 1, summary
    assert fr.partners.get("us").public_key == bytes(us.verify_key)

    class OldUs:
        name = "us"
        signing_key = old_key

    url = f"{fr.settings['url']}/taxii2/"
    request = sign_request(httpx.Request("GET", url), OldUs())
    with httpx.Client() as raw:
        refused = raw.send(request)
        assert refused.status_code == 401
        fresh = raw.send(sign_request(httpx.Request("GET", url), us))
        assert fresh.status_code == 200


def test_cli_rotate_and_accept(pair: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    result = run(capsys, "key", "rotate", "--home", str(us.home), "--json")
    assert result.code == 0, result.err
    path = us.home / "key-rotation.json"
    new_key = RotationStatement.from_bytes(path.read_bytes()).new_key
    wrong = run(capsys, "partner", "rotate-key", "fr", "--home", str(fr.home),
                "--statement", str(path))
    assert wrong.code == 2 and "not 'fr'" in wrong.err
    ok = run(capsys, "partner", "rotate-key", "us", "--home", str(fr.home),
             "--statement", str(path))
    assert ok.code == 0, ok.err
    assert base64.b64encode(new_key).decode() in ok.out
    again = run(capsys, "partner", "rotate-key", "us", "--home", str(fr.home),
                "--statement", str(path))
    assert again.code != 0 and "already rotated" in again.err
