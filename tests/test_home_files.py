"""A node's home holds every object (TLP:RED included), its keys and password hashes: the
home and everything in it are owner-only (finding 9), the store's WAL files included."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from detente.federation.exchange.local import ingest_local
from detente.node import Node


def test_the_home_and_everything_in_it_is_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a typical umask: files 0644 unless made otherwise
    try:
        node = Node.init(tmp_path / "us", "us")
        node.secret_file("fingerprint.key")
        body = {"type": "indicator", "spec_version": "2.1",
                "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
                "created": "2024-01-01T00:00:00.000Z", "modified": "2024-01-01T00:00:00.000Z",
                "pattern_type": "stix", "pattern": "[ipv4-addr:value = '203.0.113.1']",
                "valid_from": "2024-01-01T00:00:00Z"}
        ingest_local(node, [("1", body)])  # the WAL and shared-memory files now exist
        files = sorted(p for p in (tmp_path / "us").rglob("*"))
        assert any(p.name.endswith("-wal") for p in files)
        loose = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in [tmp_path / "us", *files]
                 if stat.S_IMODE(p.stat().st_mode) & 0o077}
        assert loose == {}
        node.close()
    finally:
        os.umask(old)
