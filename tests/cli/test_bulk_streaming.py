"""The bulk partner and policy commands stream: they read the store in bounded chunks.

Measured at 1M objects (``/usr/bin/time -v``, see CHANGELOG), their memory is that of one
chunk.  These tests hold the shape that makes it so — every read of stored versions is
bounded by the release path's chunk size, whatever the number of objects — with a chunk
size small enough that a run over the whole store takes several chunks, and check that
the outcome is still complete.  No timing, no RSS.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run
from tests.store.helpers import indicator

from detente.node import Node
from detente.policy import releasability_marking
from detente.release import path as release_path
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query
from detente.store.sql import SqlStore

CHUNK = 4
GREEN = TLP_2_0_IDS["green"]
#: stored indicators; a third of them need tier 2 (a releasability marking's min_tier)
N = 15


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[int | None, int]]]:
    """Every listing of stored versions the command makes: (limit asked, objects read)."""
    seen: list[tuple[int | None, int]] = []
    listing = SqlStore.list

    def spy(self: SqlStore, query: Query) -> object:
        page = listing(self, query)
        # a read of one id (store.get, which takes no LIMIT) is bounded by its versions
        one_id = query.ids is not None and len(query.ids) == 1
        seen.append((1 if one_id else query.limit, len(page.objects)))
        return page

    monkeypatch.setattr(release_path, "BATCH", CHUNK)
    monkeypatch.setattr(SqlStore, "list", spy)
    yield seen


def _home(tmp_path: Path) -> tuple[Path, int]:
    """A home with N indicators (and its identity, the tier marking): (home, versions)."""
    node = Node.init(tmp_path / "us", "us", communities="c")
    tiered = releasability_marking(min_tier=2, created_by_ref=node.identity_id)
    objs = [tiered] + [indicator(object_marking_refs=[GREEN, tiered["id"]] if i % 3 == 0
                                 else [GREEN]) for i in range(N)]
    node.store.put_many([validate(o) for o in objs], Provenance())
    stored = node.store.count()
    node.close()
    return tmp_path / "us", stored


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _bounded(reads: list[tuple[int | None, int]]) -> None:
    assert reads, "the command read no stored version"
    unbounded = [(limit, got) for limit, got in reads if limit is None or got > max(CHUNK, 100)]
    assert not unbounded, f"reads not bounded by a chunk: {unbounded}"


def test_set_tier_re_evaluates_chunk_by_chunk(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        reads: list[tuple[int | None, int]]) -> None:
    home, stored = _home(tmp_path)
    h = ["--home", str(home)]
    assert run(capsys, "partner", "add", "fr", "--url", "http://127.0.0.1:9", "--key", _key(),
               "--community", "c", "--tier", "2", *h).code == 0
    assert run(capsys, "release", *h).code == 0
    reads.clear()
    doc = orjson.loads(run(capsys, "partner", "set-tier", "fr", "1", "--json", *h).out)
    # every stored version re-decided, over several chunks, none read whole
    assert doc["evaluated"] == stored
    assert doc["withdrawn"] == N // 3 and doc["released"] == 0
    chunks = [got for limit, got in reads if limit == CHUNK and got]
    assert len(chunks) >= stored // CHUNK and sum(chunks) >= stored
    _bounded(reads)
    reads.clear()
    doc = orjson.loads(run(capsys, "partner", "set-tier", "fr", "2", "--json", *h).out)
    assert doc["released"] == N // 3 and doc["withdrawn"] == 0
    _bounded(reads)


def test_default_marking_re_decides_every_partner_chunk_by_chunk(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        reads: list[tuple[int | None, int]]) -> None:
    node = Node.init(tmp_path / "us", "us", communities="c", default_marking="green")
    node.store.put_many([validate(indicator()) for _ in range(N)], Provenance())  # unmarked
    stored = node.store.count()  # the indicators and the node's identity, none marked
    node.close()
    h = ["--home", str(tmp_path / "us")]
    for name in ("fr", "de"):
        assert run(capsys, "partner", "add", name, "--url", "http://127.0.0.1:9", "--key",
                   _key(), "--community", "c", *h).code == 0
    assert run(capsys, "release", *h).code == 0
    reads.clear()
    doc = orjson.loads(run(capsys, "policy", "default-marking", "none", "--json", *h).out)
    # every unmarked object withdrawn from both, read a chunk at a time per partner
    assert {p: r["withdrawn"] for p, r in doc["partners"].items()} == {"fr": stored,
                                                                       "de": stored}
    chunks = [got for limit, got in reads if limit == CHUNK and got]
    assert len(chunks) >= 2 * (N // CHUNK)
    _bounded(reads)
