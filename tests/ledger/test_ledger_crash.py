"""Crash safety: a writer SIGKILLed mid-append leaves a whole, verifiable log.

The child appends batches of entries and reports each committed size; the parent kills it
with SIGKILL after a random number of reports (so usually in the middle of a batch), then
checks that the log holds whole batches only, at least everything reported committed, that
the stored root recomputes from the stored entries, and that proofs verify.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.ledger.ledger_reference import RefTree

from detente.ledger import Ledger, verify_consistency, verify_inclusion
from detente.store.engine import make_engine

BATCH = 50
CHILD = textwrap.dedent(
    """
    import sys
    from detente.ledger import Ledger
    from tests.ledger.ledger_fixtures import make_entry

    ledger = Ledger.open(sys.argv[1], "crash.example/ledger")
    n = 0
    while True:
        ledger.append_many([make_entry(n + i) for i in range({batch})])
        n += {batch}
        print(n, flush=True)
    """
).format(batch=BATCH)


@pytest.mark.parametrize("reports", [random.Random(7).randint(3, 30), 1])
def test_sigkill_mid_append_leaves_a_consistent_log(store_url: str, reports: int) -> None:
    root_dir = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root_dir}{os.pathsep}{root_dir / 'src'}"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, store_url],
        stdout=subprocess.PIPE,
        env=env,
        cwd=root_dir,
        text=True,
    )
    assert child.stdout is not None
    committed = 0
    for _ in range(reports):
        committed = int(child.stdout.readline())
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    engine = make_engine(store_url)
    try:
        ledger = Ledger(engine, "crash.example/ledger")
        size = ledger.size()
        assert size >= committed and size % BATCH == 0
        entries = [e for _, e in ledger.entries()]
        assert len(entries) == size
        ref = RefTree([e.canonical for e in entries])
        assert ledger.root() == ref.root(size)
        for index in random.Random(size).sample(range(size), 10):
            proof = ledger.inclusion_proof(index)
            verify_inclusion(entries[index].leaf_hash, index, size, proof, ref.root(size))
        verify_consistency(
            committed,
            size,
            ref.root(committed),
            ref.root(size),
            ledger.consistency_proof(committed),
        )
        # the log keeps working after the crash
        ledger.append_many(entries[:3])
        assert ledger.root() == RefTree([*ref.leaves, *ref.leaves[:3]]).root(size + 3)
    finally:
        engine.dispose()
