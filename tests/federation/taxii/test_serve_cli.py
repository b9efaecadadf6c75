"""`detente serve` as a user runs it: a real process on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from tests.federation.fed_fixtures import HEADERS, indicator, put

from detente.node import Node


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.live
def test_detente_serve_answers_taxii(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "us", "us", communities="coalition")
    fr = Node.init(tmp_path / "fr", "fr")
    node.partners.add("fr", url="http://127.0.0.1:9", tier=3, public_key=fr.public_key_b64)
    fr.close()
    put(node, indicator("clear"), release=False)  # serve's background releaser does it
    _, secret = node.partners.add_client("cli", "fr")
    node.close()
    port = _free_port()
    code = "from detente.cli import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--home", str(tmp_path / "us"),
                             "--port", str(port)], stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                r = httpx.get(f"{base}/taxii2/", headers=HEADERS, auth=("cli", secret))
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "detente serve did not start"
                time.sleep(0.05)
        assert r.status_code == 200 and r.json()["title"] == "detente node us"
        deadline = time.monotonic() + 30
        while True:  # released within seconds by the upkeep thread, no request needed
            objs = httpx.get(f"{base}/taxii2/api1/collections/releases/objects/",
                             headers=HEADERS, auth=("cli", secret)).json().get("objects", [])
            if objs or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert len(objs) == 1
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"serving node us" in err
