"""Witnessing: cosign consistent growth, catch a split view, keep the evidence.

The three-log simulation: the U.S. log forks (two databases, one key, one origin) and shows
one branch to France's witness and the other to Russia's. Each view is consistent on its
own; the equivocation shows as soon as either witness is shown the other's checkpoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tests.ledger.ledger_fixtures import key, make_entry

from detente.ledger import (
    Checkpoint,
    ConsistencyProofError,
    Entry,
    EquivocationError,
    Ledger,
    SignatureError,
    StaleCheckpointError,
    Witness,
    list_alarms,
    verify_consistency,
)
from detente.store.engine import make_engine

ORIGIN = "us.example/ledger"
US_KEY = key(10)
KEYS = {ORIGIN: {"us": US_KEY.verify_key}}


@pytest.fixture
def engines(store_url: str, tmp_path: Path) -> Iterator[dict[str, sa.Engine]]:
    made = {
        "us-a": make_engine(f"sqlite:///{tmp_path / 'us-a.db'}"),
        "us-b": make_engine(f"sqlite:///{tmp_path / 'us-b.db'}"),
        "fr": make_engine(store_url),
        "ru": make_engine(f"sqlite:///{tmp_path / 'ru.db'}"),
    }
    yield made
    for engine in made.values():
        engine.dispose()


def us_log(engine: sa.Engine) -> Ledger:
    return Ledger(engine, ORIGIN, signing_key=US_KEY, key_name="us")


def witness(engine: sa.Engine, name: str, seed: int) -> Witness:
    return Witness(engine, name, key(seed), KEYS, clock=lambda: 1_700_000_000.0)


def fork_entry(i: int) -> Entry:
    return Entry(kind="release", time="2025-02-02T00:00:00Z", detail=f"fork {i}")


def test_consistent_growth_is_cosigned(engines: dict[str, sa.Engine]) -> None:
    log, fr = us_log(engines["us-a"]), witness(engines["fr"], "fr", 20)
    log.append_many([make_entry(i) for i in range(5)])
    first = log.checkpoint()
    fr.observe(first)
    log.append_many([make_entry(i) for i in range(5, 12)])
    second = log.checkpoint()
    cosig = fr.observe(second, log.consistency_proof(first.size, second.size))
    cosig.verify(second, fr.verify_key)
    cosigned = second.with_cosignature(cosig)
    assert cosigned.cosignatures({"fr": fr.verify_key})[0].timestamp == 1_700_000_000
    last = fr.last_seen(ORIGIN)
    assert last is not None and last.same_tree(second)
    fr.observe(second)  # the same checkpoint again is fine
    with pytest.raises(StaleCheckpointError, match="older"):
        fr.observe(first, log.consistency_proof(first.size, second.size))
    assert list_alarms(engines["fr"]) == []


def test_a_split_view_is_caught_and_the_evidence_kept(engines: dict[str, sa.Engine]) -> None:
    branch_a, branch_b = us_log(engines["us-a"]), us_log(engines["us-b"])
    common = [make_entry(i) for i in range(6)]
    for log in (branch_a, branch_b):
        log.append_many(common)
    fr, ru = witness(engines["fr"], "fr", 20), witness(engines["ru"], "ru", 21)
    base = branch_a.checkpoint()
    fr.observe(base)
    ru.observe(base)
    # the U.S. shows France one history and Russia another, each consistent with `base`
    branch_a.append_many([fork_entry(i) for i in range(4)])
    branch_b.append_many([fork_entry(i) for i in range(10, 14)])
    seen_by_fr, seen_by_ru = branch_a.checkpoint(), branch_b.checkpoint()
    fr.observe(seen_by_fr, branch_a.consistency_proof(6))
    ru.observe(seen_by_ru, branch_b.consistency_proof(6))
    assert seen_by_fr.size == seen_by_ru.size and seen_by_fr.root != seen_by_ru.root
    # gossip: Russia is shown France's cosigned checkpoint -> same size, two roots
    with pytest.raises(EquivocationError, match="two roots for size 10") as caught:
        ru.observe(seen_by_fr)
    assert caught.value.evidence_id is not None
    # the log grows on branch A; France is shown branch B's next checkpoint with the only
    # proof branch B can produce (from B's history): it cannot match France's view
    branch_b.append_many([fork_entry(20)])
    later_b = branch_b.checkpoint()
    with pytest.raises(EquivocationError, match="size 10 to 11"):
        fr.observe(later_b, branch_b.consistency_proof(10))
    # evidence is stored, listed by the ledger, and checkable by anyone with the U.S. key
    [evidence] = Ledger(engines["ru"], ORIGIN).alarms()
    assert (evidence.origin, evidence.kind) == (ORIGIN, "conflicting-root")
    first = Checkpoint.from_note(evidence.first_note, KEYS[ORIGIN])
    second = Checkpoint.from_note(evidence.second_note, KEYS[ORIGIN])
    assert first.size == second.size and first.root != second.root
    [fr_evidence] = list_alarms(engines["fr"])
    assert fr_evidence.kind == "inconsistent"
    old = Checkpoint.from_note(fr_evidence.first_note, KEYS[ORIGIN])
    new = Checkpoint.from_note(fr_evidence.second_note, KEYS[ORIGIN])
    with pytest.raises(ConsistencyProofError):
        verify_consistency(old.size, new.size, old.root, new.root, list(fr_evidence.proof))
    assert Ledger(engines["fr"], ORIGIN).status().alarms == 1
    # the witnesses still hold the view they cosigned
    last_ru = ru.last_seen(ORIGIN)
    assert last_ru is not None and last_ru.same_tree(seen_by_ru)


def test_unknown_origins_and_forged_checkpoints_are_refused(engines: dict[str, sa.Engine]) -> None:
    fr = witness(engines["fr"], "fr", 20)
    stranger = Checkpoint.sign("cn.example/ledger", 1, bytes(32), key(30), "cn")
    with pytest.raises(SignatureError, match="does not know origin"):
        fr.observe(stranger)
    forged = Checkpoint.sign(ORIGIN, 1, bytes(32), key(31), "us")
    with pytest.raises(SignatureError, match="no signature by a known key"):
        fr.observe(forged)
    assert fr.last_seen(ORIGIN) is None
