"""Fixtures for the UI tests: a populated node, an empty one, logged-in clients."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.web.client import TestClient
from tests.web.world import OPERATOR, PASSWORD, build_node, csrf_of

from detente.node import Node
from detente.web.app import create_web_app


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = build_node(tmp_path / "us")
    yield n
    n.close()


@pytest.fixture
def empty_node(tmp_path: Path) -> Iterator[Node]:
    n = build_node(tmp_path / "empty", partners=False, content=False)
    yield n
    n.close()


def login(client: TestClient, name: str = OPERATOR, password: str = PASSWORD,
          next_path: str = "/") -> object:
    page = client.get(f"/login?next={next_path}")
    return client.post("/login", data={"name": name, "password": password,
                                       "next": next_path, "csrf_token": csrf_of(page.text)},
                       follow_redirects=False)


def _client(node: Node) -> Iterator[TestClient]:
    with TestClient(create_web_app(node), follow_redirects=False) as client:
        yield client


@pytest.fixture
def anon(node: Node) -> Iterator[TestClient]:
    yield from _client(node)


@pytest.fixture
def client(node: Node) -> Iterator[TestClient]:
    for c in _client(node):
        r = login(c)
        assert r.status_code == 303, r.text  # type: ignore[attr-defined]
        yield c


@pytest.fixture
def empty_client(empty_node: Node) -> Iterator[TestClient]:
    for c in _client(empty_node):
        assert login(c).status_code == 303  # type: ignore[attr-defined]
        yield c
