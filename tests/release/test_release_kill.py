"""SIGKILL during ``detente release``: nothing lost, nothing duplicated, and the next run
completes it.

A real process releases a backlog (two partners, thousands of versions, some denied) and
is killed with SIGKILL as soon as its first chunk is committed — usually in the middle of
another chunk.  What it left must be whole chunks: every release row with its ledger entry
(same partner, object, version and view hash), no version released twice, no ledger entry
twice, nothing the policy denies, and no gap (a partner holds every allowed version up to
its cursor and none after it).  A second run then completes the release, with the same
checks and every allowed version released exactly once.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.federation.fed_fixtures import versioned_indicator

from detente.node import Node
from detente.release import iter_release_records, view_hash
from detente.release.proofs import batch_entries
from detente.stix.validate import validate
from detente.store import Provenance, Query

PARTNERS = ("fr", "de")
N = 3000  # objects; a third get a second version: ~8,000 version x partner evaluations


def _home(tmp_path: Path) -> Path:
    node = Node.init(tmp_path / "hub", "hub", communities="coalition")
    for name in PARTNERS:
        key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
        node.partners.add(name, url="http://127.0.0.1:9", public_key=key, tier=2,
                          communities=frozenset({"coalition"}))
    first = [validate(versioned_indicator(i, 0, 0)) for i in range(N)]
    for start in range(0, N, 1000):
        node.store.put_many(first[start:start + 1000], Provenance())
    second = [validate(versioned_indicator(i, 1, 0)) for i in range(0, N, 3)]
    node.store.put_many(second, Provenance())
    node.close()
    return tmp_path / "hub"


def _release(home: Path, *extra: str) -> subprocess.Popen[bytes]:
    code = "from detente.cli import main; main()"
    return subprocess.Popen([sys.executable, "-c", code, "release", "--home", str(home),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "COLUMNS": "120"})


def _check(node: Node, *, complete: bool) -> dict[str, int]:
    """The invariants of a release state; returns the versions released per partner."""
    versions = list(node.store.iter_all(Query(versions=("all",))))
    cursors = node.releaser.cursors()
    records = list(iter_release_records(node.store.engine))
    # no version released twice to a partner
    keys = Counter((r.partner, r.object_id, r.version) for r in records)
    assert max(keys.values(), default=1) == 1, "a version was released twice"
    # every release row has its ledger entry (in a release batch), and no release entry
    # exists without its row
    entries = {}
    for i, batch in node.ledger.entries():
        if batch.kind == "release-batch":
            _batch, members = batch_entries(node.store.engine, node.ledger, i)
            entries.update({seq: (i, e) for seq, e in members})
    assert len(entries) == len(records), "ledger release entries and release rows differ"
    for r in records:
        assert r.ledger_index is not None
        index, e = entries[r.released_at]
        assert index == r.ledger_index
        assert (e.partner, e.object_id, e.object_version, e.view_hash) == (
            r.partner, r.object_id, r.version, view_hash(r.view_bytes))
    ledger_keys = Counter((e.partner, e.object_id, e.object_version)
                          for _i, e in entries.values())
    assert max(ledger_keys.values(), default=1) == 1, "a ledger entry was written twice"
    # released == allowed up to the cursor: no gap, nothing denied, nothing beyond it
    out = {}
    for name in PARTNERS:
        partner = node.partners.get(name)
        cursor = cursors.get(name)
        allowed = {(o.id, o.version) for o in versions
                   if cursor is not None and o.date_added <= cursor
                   and node.releaser.decide(o, partner).allowed}
        released = {(r.object_id, r.version) for r in records if r.partner == name}
        assert released == allowed, f"{name}: released != allowed up to its cursor"
        if complete:
            assert cursor == node.store.last_added(), f"{name} not caught up"
        out[name] = len(released)
    return out


@pytest.mark.slow
def test_sigkill_mid_release_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    home = _home(tmp_path)
    watcher = Node.open(home)
    total = sum(1 for _ in watcher.store.iter_all(Query(versions=("all",))))
    proc = _release(home)
    try:
        # (1) kill as soon as the first chunk is committed (bounded wait)
        deadline = time.monotonic() + 120
        while not watcher.releaser.cursors():
            assert proc.poll() is None, "detente release ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk committed within 120 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # (2) what the killed run left: whole chunks, consistent, and really part-way
    partial = _check(watcher, complete=False)
    cursors = watcher.releaser.cursors()
    assert len(cursors) < len(PARTNERS) or min(cursors.values()) < watcher.store.last_added()
    # (3) a second run completes it, exactly once
    done = _release(home, "--json")
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err.decode()
    report = orjson.loads(out)
    final = _check(watcher, complete=True)
    assert sum(final.values()) == sum(partial.values()) + report["released"]
    assert report["evaluated"] <= total * len(PARTNERS)
    for name in PARTNERS:
        assert final[name] == sum(1 for o in watcher.store.iter_all(Query(versions=("all",)))
                                  if watcher.releaser.decide(o, watcher.partners.get(name))
                                  .allowed)
    watcher.close()


@pytest.mark.slow
def test_sigkill_of_serves_releaser_process_loses_nothing_and_it_is_restarted(
        tmp_path: Path) -> None:
    """``detente serve`` releases in a child process (``assembly.ReleaserProcess``):
    killed mid catch-up, it leaves whole chunks; the upkeep starts it again and the
    restarted one completes the catch-up, every allowed version released exactly once."""
    from detente.assembly import ReleaserProcess

    home = _home(tmp_path)
    watcher = Node.open(home)
    releaser = ReleaserProcess(home, 0.05, restart_after_s=0)
    try:
        releaser.ensure()
        first = releaser.pid
        assert first is not None
        # (1) kill it as soon as its first chunk is committed (bounded wait)
        deadline = time.monotonic() + 120
        while not watcher.releaser.cursors():
            assert releaser.running, "the releaser process ended before it could be killed"
            assert time.monotonic() < deadline, "no chunk committed within 120 s"
            time.sleep(0.005)
        os.kill(first, signal.SIGKILL)
        while releaser.running:
            assert time.monotonic() < deadline, "SIGKILL did not end the releaser"
            time.sleep(0.01)
        partial = _check(watcher, complete=False)
        cursors = watcher.releaser.cursors()
        assert len(cursors) < len(PARTNERS) or min(cursors.values()) < watcher.store.last_added()
        # (2) the upkeep's release task starts it again; it completes the catch-up
        releaser.ensure()
        assert releaser.running and releaser.pid != first
        last = watcher.store.last_added()
        deadline = time.monotonic() + 600
        while len(cursors := watcher.releaser.cursors()) < len(PARTNERS) \
                or min(cursors.values()) != last:
            assert releaser.running, "the restarted releaser process died"
            assert time.monotonic() < deadline, f"not caught up within 600 s: {cursors}"
            time.sleep(0.05)
    finally:
        status = releaser.stop()
    assert status == 0, "the releaser did not stop cleanly when its server closed the pipe"
    final = _check(watcher, complete=True)
    assert all(final[name] >= partial[name] for name in PARTNERS)
    watcher.close()
