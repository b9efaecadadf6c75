"""The tiled storage layout: index arithmetic, proofs across tiles and strata, bundles,
concurrent appenders, damaged stores and the canonical entry encoding.

Small tile heights (2 and 3) make a few hundred leaves span several strata, so every case of
the layout (partial tiles in several strata at once, bundles split by single appends) is
reached with trees the naive reference can check in full; one test runs the default height
across its first stratum boundary (4,096 leaves).
"""

from __future__ import annotations

import os
import random
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
import rfc8785
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.ledger.ledger_fixtures import PARTNERS, make_entry
from tests.ledger.ledger_reference import RefTree

from detente.ledger import (
    Entry,
    EntryError,
    Ledger,
    LedgerStoreError,
    verify_consistency,
    verify_inclusion,
)
from detente.ledger.hashing import HASH_SIZE, subtrees
from detente.ledger.tiles import (
    TILE_HEIGHT,
    bottom_slots,
    bundle_pieces,
    grow,
    locate,
    tile_key,
    tile_slots,
)
from detente.store.engine import make_engine, writer

ORIGIN = "tiles.example/ledger"
ENTRIES = [make_entry(i) for i in range(300)]
REF = RefTree([e.canonical for e in ENTRIES])


class Height2(Ledger):
    TILE_HEIGHT = 2


class Height3(Ledger):
    TILE_HEIGHT = 3


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def complete_nodes(size: int) -> Iterator[tuple[int, int]]:
    """Every complete subtree of a tree of ``size`` leaves, in completion (post-)order."""
    for leaf in range(size):
        height = 0
        yield 0, leaf
        while (leaf >> height) & 1:
            height += 1
            yield height, leaf >> height


# -- index arithmetic ----------------------------------------------------------------------


@pytest.mark.parametrize("tall", [1, 2, 3, 6])
def test_every_node_has_its_own_slot_and_tiles_fill_as_prefixes(tall: int) -> None:
    size = 3000
    seen: dict[int, list[int]] = {}
    for height, index in complete_nodes(size):
        key, at = locate(height, index, tall)
        assert at % HASH_SIZE == 0 and 0 <= at // HASH_SIZE < tile_slots(tall)
        slots = seen.setdefault(key, [])
        # appends complete a tile's nodes in slot order: each new one is the next slot
        assert at // HASH_SIZE == len(slots), (height, index)
        slots.append(at)
    bottom = sum(len(v) for k, v in seen.items() if k >> 48 == 0)
    assert bottom == bottom_slots(size, tall)
    last = {}  # the last tile of each stratum may be partial, all others are full
    for k in seen:
        last[k >> 48] = max(last.get(k >> 48, k), k)
    assert all(len(v) == tile_slots(tall) for k, v in seen.items() if k not in last.values())
    assert tile_key(1, 5) == (1 << 48) | 5


@given(st.integers(0, 5000), st.integers(0, 300), st.integers(1, 8))
def test_bundle_pieces_cover_the_range_without_crossing_a_bundle(
    start: int, count: int, tall: int
) -> None:
    pieces = list(bundle_pieces(start, start + count, tall))
    assert [i for _, a, b in pieces for i in range(a, b)] == list(range(start, start + count))
    for bundle, a, b in pieces:
        assert a >> tall == (b - 1) >> tall == bundle


@settings(max_examples=200, deadline=None)
@given(
    batches=st.lists(st.integers(1, 150), min_size=1, max_size=8),
    tall=st.sampled_from([1, 2, 3, 6]),
)
def test_grow_builds_every_tile_slot_by_slot(batches: list[int], tall: int) -> None:
    """Batches hashed by ``grow`` leave each tile holding exactly its nodes in slot order."""
    leaves = [make_entry(i).canonical for i in range(sum(batches))]
    ref = RefTree(leaves)
    stored: dict[int, bytes] = {}
    frontier: list[bytes] = []
    start = 0
    for n in batches:
        hashes = [ref.node(0, i) for i in range(start, start + n)]
        tiles, frontier = grow(hashes, start, frontier, tall)
        assert len({key for key, _ in tiles}) == len(tiles)  # one piece per tile per batch
        for key, piece in tiles:
            stored[key] = stored.get(key, b"") + piece
        start += n
        expected = [ref.node(h, i) for h, i in subtrees(0, start)]
        assert frontier == expected  # the new right edge, largest first
    want: dict[int, list[tuple[int, bytes]]] = {}
    for height, index in complete_nodes(start):
        key, at = locate(height, index, tall)
        want.setdefault(key, []).append((at, ref.node(height, index)))
    assert stored == {k: b"".join(h for _, h in sorted(v)) for k, v in want.items()}


# -- the stored log against the reference --------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(st.integers(1, 40), min_size=1, max_size=14),
    cls=st.sampled_from([Height2, Height3]),
    data=st.data(),
)
def test_proofs_from_any_batching_match_the_reference(
    tmp_path: Path, batches: list[int], cls: type[Ledger], data: st.DataObject
) -> None:
    db = tmp_path / f"h{secrets.token_hex(6)}.db"  # one fresh store per example
    engine = make_engine(f"sqlite:///{db}")
    try:
        ledger = cls(engine, ORIGIN)
        size = 0
        for n in batches:
            n = min(n, len(ENTRIES) - size)
            if n == 1:
                ledger.append(ENTRIES[size])
            elif n:
                assert ledger.append_many(ENTRIES[size : size + n]) == range(size, size + n)
            size += n
        assert ledger.size() == size and ledger.root() == REF.root(size)
        for old in range(size + 1):  # every old size against the current one
            assert ledger.root(old) == REF.root(old)
            proof = ledger.consistency_proof(old)
            assert proof == REF.consistency(old, size)
            verify_consistency(old, size, REF.root(old), REF.root(size), proof)
        for _ in range(20):  # and sampled pairs of any two sizes
            new = data.draw(st.integers(1, size))
            old = data.draw(st.integers(0, new))
            index = data.draw(st.integers(0, new - 1))
            proof = ledger.inclusion_proof(index, new)
            assert proof == REF.inclusion(index, new)
            verify_inclusion(ENTRIES[index].leaf_hash, index, new, proof, REF.root(new))
            assert ledger.consistency_proof(old, new) == REF.consistency(old, new)
        a = data.draw(st.integers(0, size))
        b = data.draw(st.integers(a, size))
        assert ledger.entries(a, b) == list(zip(range(a, b), ENTRIES[a:b], strict=True))
    finally:
        engine.dispose()


def test_every_size_pair_on_both_backends_with_small_tiles(engine: sa.Engine) -> None:
    ledger = Height2(engine, ORIGIN)
    rng, size = random.Random(3), 0
    while size < 90:  # single appends and batches, so bundles and tiles are split
        n = min(rng.choice([1, 1, 2, 5, 9, 17]), 90 - size)
        ledger.append_many(ENTRIES[size : size + n])
        size += n
    for new in range(1, size + 1):
        for old in range(new + 1):
            assert ledger.consistency_proof(old, new) == REF.consistency(old, new)
        for index in range(new):
            assert ledger.inclusion_proof(index, new) == REF.inclusion(index, new)
    seen = ledger.entries_for(PARTNERS[2], 3, 70)
    assert [v.index for v in seen] == list(range(3, 70))
    assert [v.leaf_hash for v in seen] == [e.leaf_hash for e in ENTRIES[3:70]]
    assert [v.entry for v in seen if v.entry] == [
        e for e in ENTRIES[3:70] if e.partner == PARTNERS[2]
    ]


def test_default_tiles_across_the_first_stratum_boundary(tmp_path: Path) -> None:
    assert TILE_HEIGHT == 6
    entries = [make_entry(i) for i in range(4200)]
    ref = RefTree([e.canonical for e in entries])
    engine = make_engine(f"sqlite:///{tmp_path / 'big.db'}")
    try:
        ledger = Ledger(engine, ORIGIN)
        rng, size = random.Random(5), 0
        while size < len(entries):
            n = min(rng.choice([1, 63, 64, 65, 700]), len(entries) - size)
            ledger.append_many(entries[size : size + n])
            size += n
        sizes = [1, 63, 64, 65, 127, 128, 4095, 4096, 4097, 4200]
        for new in sizes:
            assert ledger.root(new) == ref.root(new)
            for old in sizes:
                if old <= new:
                    assert ledger.consistency_proof(old, new) == ref.consistency(old, new)
            for index in {0, new // 2, new - 1, rng.randrange(new)}:
                assert ledger.inclusion_proof(index, new) == ref.inclusion(index, new)
        assert ledger.entry(4099) == entries[4099]
    finally:
        engine.dispose()


def test_full_tiles_stay_in_the_table_pages(engine: sa.Engine) -> None:
    Ledger(engine, ORIGIN).append_many(ENTRIES[:128])
    with engine.connect() as conn:
        full = conn.exec_driver_sql(
            f"SELECT length(hashes) FROM ledger_tiles WHERE tile = {tile_key(0, 0)}"
        ).scalar()
        assert full == tile_slots(TILE_HEIGHT) * HASH_SIZE == 4032
        if engine.dialect.name == "postgresql":
            options = conn.exec_driver_sql(
                "SELECT reloptions FROM pg_class WHERE relname = 'ledger_tiles'"
            ).scalar()
            assert "toast_tuple_target=8160" in options


def test_an_existing_store_keeps_its_tile_height(engine: sa.Engine) -> None:
    Height2(engine, ORIGIN).append_many(ENTRIES[:30])
    reopened = Ledger(engine, ORIGIN)  # default height 6, but the store says 2
    reopened.append_many(ENTRIES[30:50])
    assert reopened.root() == REF.root(50)
    assert reopened.inclusion_proof(33) == REF.inclusion(33, 50)


# -- several appenders on one store --------------------------------------------------------

APPENDER = textwrap.dedent(
    """
    import random, sys
    from detente.ledger import Ledger
    from tests.ledger.ledger_fixtures import make_entry

    ledger = Ledger.open(sys.argv[1], "tiles.example/ledger")
    rng, me = random.Random(int(sys.argv[2])), int(sys.argv[2])
    done = 0
    while done < 150:
        n = rng.choice([1, 1, 3, 7, 20])
        ledger.append_many([make_entry(me * 1000 + done + i) for i in range(n)])
        done += n
    """
)


def test_concurrent_appenders_are_serialised_by_the_database(store_url: str) -> None:
    setup = make_engine(store_url)
    Ledger(setup, ORIGIN)  # create the tables before the race
    setup.dispose()
    root_dir = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root_dir}{os.pathsep}{root_dir / 'src'}"}
    children = [
        subprocess.Popen([sys.executable, "-c", APPENDER, store_url, str(k)], env=env, cwd=root_dir)
        for k in (1, 2, 3)
    ]
    assert [c.wait(timeout=180) for c in children] == [0, 0, 0]
    engine = make_engine(store_url)
    try:
        ledger = Ledger(engine, ORIGIN)
        stored = [e for _, e in ledger.entries()]
        assert ledger.size() == len(stored) >= 450
        wanted = {make_entry(k * 1000 + i).canonical for k in (1, 2, 3) for i in range(150)}
        assert wanted <= {e.canonical for e in stored}
        ref = RefTree([e.canonical for e in stored])
        size = len(stored)
        assert ledger.root() == ref.root(size)
        for index in random.Random(1).sample(range(size), 25):
            assert ledger.inclusion_proof(index) == ref.inclusion(index, size)
        for old in random.Random(2).sample(range(size), 25):
            assert ledger.consistency_proof(old) == ref.consistency(old, size)
    finally:
        engine.dispose()


# -- damaged or foreign stores -------------------------------------------------------------


def test_a_store_in_the_old_one_row_per_leaf_layout_is_refused(engine: sa.Engine) -> None:
    with writer(engine).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ledger_entries (seq INTEGER PRIMARY KEY)")
    with pytest.raises(LedgerStoreError, match="pre-release"):
        Ledger(engine, ORIGIN)


def test_missing_or_torn_rows_are_domain_errors(engine: sa.Engine) -> None:
    ledger = Height2(engine, ORIGIN)
    ledger.append_many(ENTRIES[:40])
    with writer(engine).begin() as conn:
        conn.exec_driver_sql(f"DELETE FROM ledger_tiles WHERE tile = {tile_key(1, 0)}")
        conn.exec_driver_sql("DELETE FROM ledger_bundles WHERE first = 8")
        conn.exec_driver_sql(
            "UPDATE ledger_bundles SET entries = "
            + (
                "substr(entries, 2)"
                if engine.dialect.name == "sqlite"
                else "substring(entries from 2)"
            )
            + " WHERE first = 16"
        )
    with pytest.raises(LedgerStoreError, match="missing"):
        ledger.inclusion_proof(0, 40)
    with pytest.raises(LedgerStoreError, match=r"missing|not all stored"):
        ledger.entries(4, 12)
    with pytest.raises(LedgerStoreError, match="add up"):
        ledger.entry(17)
    assert ledger.entry(30) == ENTRIES[30]  # the rest still reads


# -- the canonical entry encoding ----------------------------------------------------------

_TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), min_size=1, max_size=40
).map(lambda s: s + '"\\\x7f\u2028é😀'[: len(s) % 7])


@settings(max_examples=400, deadline=None)
@given(
    kind=st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True),
    partner=st.none() | _TEXT,
    detail=st.none() | _TEXT,
    fingerprint=st.none() | _TEXT,
    millis=st.integers(0, 10**12),
)
def test_canonical_bytes_equal_rfc8785(
    kind: str, partner: str | None, detail: str | None, fingerprint: str | None, millis: int
) -> None:
    from datetime import UTC, datetime

    when = datetime.fromtimestamp(millis / 1000, UTC)
    entry = Entry(kind=kind, time=when, partner=partner, detail=detail, fingerprint_id=fingerprint)
    assert entry.canonical == rfc8785.dumps(entry.to_dict())
    assert Entry.from_json(entry.canonical) == entry
    assert len(entry.canonical) < 2**16


def test_an_entry_too_long_for_a_bundle_is_refused_before_anything_is_written(
    engine: sa.Engine,
) -> None:
    ledger = Ledger(engine, ORIGIN)
    ledger.append_many(ENTRIES[:3])
    huge = make_entry(3)
    object.__setattr__(huge, "canonical", b"x" * 70_000)  # no valid Entry is this long
    with pytest.raises(EntryError, match="longer than 65535 bytes"):
        ledger.append_many([ENTRIES[3], huge])
    assert ledger.size() == 3 and ledger.root() == REF.root(3)


def test_entries_with_unsafe_characters_are_refused() -> None:
    for bad in ("a\x00b", "a\x1fb", "a\ud800b"):
        with pytest.raises(EntryError, match="control"):
            Entry(kind="receipt", time="2025-01-01T00:00:00Z", detail=bad)
