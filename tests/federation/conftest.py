"""Fixtures shared by the federation tests (a module may define its own `nodes`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.federation.fed_fixtures import make_nodes

from detente.node import Node


@pytest.fixture
def nodes(tmp_path: Path, store_url: str) -> Iterator[tuple[Node, dict[str, Node]]]:
    """Our node and its partners' nodes, on the backend under test."""
    us, others = make_nodes(tmp_path, store_url)
    yield us, others
    us.close()
    for n in others.values():
        n.close()
