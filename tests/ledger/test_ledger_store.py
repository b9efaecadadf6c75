"""The persistent log on both backends: roots, proofs, transactions, visibility, status."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from tests.ledger.ledger_fixtures import PARTNERS, key, make_entry
from tests.ledger.ledger_reference import RefTree

from detente.errors import UsageError
from detente.ledger import (
    EMPTY_ROOT,
    Checkpoint,
    EntryError,
    Ledger,
    LedgerStoreError,
    verify_consistency,
    verify_inclusion,
)
from detente.store.engine import make_engine, writer

ORIGIN = "us.example/ledger"


@pytest.fixture
def engine(store_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(store_url)
    yield eng
    eng.dispose()


def test_every_proof_of_every_prefix_matches_the_reference(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    entries = [make_entry(i) for i in range(37)]
    for start in range(0, 37, 5):  # uneven batches cross subtree boundaries
        ledger.append_many(entries[start : start + 5])
    ref = RefTree([e.canonical for e in entries])
    assert ledger.size() == 37
    assert ledger.root() == ref.root(37)
    for size in range(0, 38):
        assert ledger.root(size) == ref.root(size)
        for index in range(size):
            proof = ledger.inclusion_proof(index, size)
            assert proof == ref.inclusion(index, size)
            verify_inclusion(entries[index].leaf_hash, index, size, proof, ref.root(size))
        proof = ledger.consistency_proof(size)
        assert proof == ref.consistency(size, 37)
        verify_consistency(size, 37, ref.root(size), ref.root(37), proof)


def test_entries_read_back_identical(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    assert ledger.append_many([make_entry(i) for i in range(4)]) == range(0, 4)
    assert ledger.append(make_entry(4)) == 4
    assert ledger.entry(3) == make_entry(3)
    assert ledger.leaf_hash(4) == make_entry(4).leaf_hash
    assert [i for i, _ in ledger.entries(1, 3)] == [1, 2]


def test_append_joins_the_callers_transaction(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    ledger.append_many([make_entry(0)])
    with writer(engine).connect() as conn:
        conn.begin()
        assert ledger.append_many([make_entry(1), make_entry(2)], conn) == range(1, 3)
        conn.rollback()
    assert ledger.size() == 1
    with writer(engine).begin() as conn:
        ledger.append_many([make_entry(5)], conn)
    assert ledger.size() == 2
    ref = RefTree([make_entry(0).canonical, make_entry(5).canonical])
    assert ledger.root() == ref.root(2)


def test_append_outside_a_transaction_is_refused(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    with engine.connect() as conn, pytest.raises(UsageError, match="inside a transaction"):
        ledger.append_many([make_entry(0)], conn)


def test_two_handles_on_one_database_stay_consistent(engine: sa.Engine) -> None:
    first, second = Ledger(engine, ORIGIN), Ledger(engine, ORIGIN)
    entries = [make_entry(i) for i in range(10)]
    for i, e in enumerate(entries):
        (first if i % 2 else second).append(e)
    assert first.root() == second.root() == RefTree([e.canonical for e in entries]).root(10)


def test_non_entries_and_other_origins_are_refused(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    with pytest.raises(EntryError, match="must be Entry"):
        ledger.append_many([b"raw"])  # type: ignore[list-item]
    with pytest.raises(LedgerStoreError, match="holds the ledger of"):
        Ledger(engine, "fr.example/ledger")


def test_reads_past_the_end_are_domain_errors(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    ledger.append_many([make_entry(i) for i in range(3)])
    with pytest.raises(LedgerStoreError, match="outside"):
        ledger.inclusion_proof(3)
    with pytest.raises(LedgerStoreError, match="outside"):
        ledger.inclusion_proof(0, 4)
    with pytest.raises(LedgerStoreError, match="outside"):
        ledger.consistency_proof(4)
    with pytest.raises(LedgerStoreError, match="outside the log"):
        ledger.entry(7)
    assert ledger.root(0) == EMPTY_ROOT


def test_partners_see_their_entries_in_full_and_others_as_hashes(engine: sa.Engine) -> None:
    ledger = Ledger(engine, ORIGIN)
    entries = [make_entry(i) for i in range(6)]
    ledger.append_many(entries)
    seen = ledger.entries_for(PARTNERS[1])
    assert [v.index for v in seen] == list(range(6))
    assert [v.leaf_hash for v in seen] == [e.leaf_hash for e in entries]
    full = [v.entry for v in seen if v.entry is not None]
    assert full == [entries[1], entries[4]]
    assert all(e.partner == PARTNERS[1] for e in full)


def test_checkpoint_and_status(engine: sa.Engine) -> None:
    signer = key(1)
    ledger = Ledger(engine, ORIGIN, signing_key=signer, key_name="us")
    assert ledger.status().checkpoint is None
    ledger.append_many([make_entry(i) for i in range(5)])
    cp = ledger.checkpoint()
    parsed = Checkpoint.from_note(cp.to_note(), {"us": signer.verify_key})
    assert (parsed.origin, parsed.size, parsed.root) == (ORIGIN, 5, ledger.root())
    status = ledger.status()
    assert (status.size, status.root, status.alarms) == (5, ledger.root(), 0)
    assert status.checkpoint is not None and status.checkpoint.same_tree(cp)
    with pytest.raises(UsageError, match="no signing key"):
        Ledger(engine, ORIGIN).checkpoint()


def test_checkpoints_lists_signed_notes_newest_first(store_url: str) -> None:
    from datetime import UTC, datetime

    from nacl.signing import SigningKey

    from detente.ledger import Checkpoint, Entry, Ledger
    from detente.store.engine import make_engine

    key = SigningKey.generate()
    engine = make_engine(store_url)
    ledger = Ledger(engine, "detente/us", signing_key=key)
    for _ in range(3):
        ledger.append(Entry(kind="receipt", time=datetime.now(UTC), partner="fr"))
        ledger.checkpoint()
    notes = ledger.checkpoints(2)
    assert len(notes) == 2
    sizes = [Checkpoint.from_note(n, {"detente/us": key.verify_key}).size for n in notes]
    assert sizes == [3, 2]
    engine.dispose()
