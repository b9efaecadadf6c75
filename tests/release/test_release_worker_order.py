"""release_pending shares its time out so that the partners of a policy class stay
together: a run cut short by its budget gives its chunks to the partners furthest behind.

With a fixed order, every run that ended mid-turn gave one more chunk to the first
partners of the list; at 1M objects x 20 partners their cursors drifted 35,000 versions
ahead of the last ones' and the members of a class stopped sharing decisions."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

from nacl.signing import SigningKey
from tests.store.helpers import indicator

from detente.node import Node
from detente.release import release_pending
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def test_a_run_cut_short_serves_the_partners_furthest_behind_first(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "us", "us", communities="c")
    try:
        objs = [indicator(object_marking_refs=[TLP_2_0_IDS["green"]]) for _ in range(12)]
        node.store.put_many([validate(o) for o in objs], Provenance())
        for name in ("a", "b", "c"):  # name order: a, b, c
            node.partners.add(name, url="http://127.0.0.1:9", public_key=_key(),
                              communities=frozenset({"c"}), tier=2)
        # a and b ahead of c: earlier runs each ended after their chunks
        for _ in range(2):
            release_pending(node.releaser, ["a", "b"], chunk=3,
                            should_stop=_after(2))
        cursors = node.releaser.cursors()
        assert "c" not in cursors and cursors["a"] == cursors["b"]
        # a run that has time for two chunks gives them to c, then to the next behind
        order: list[str] = []
        release_pending(node.releaser, chunk=3, should_stop=_after(2),
                        on_chunk=lambda name, _run: order.append(name))
        assert order == ["c", "a"]
        # run after run, nobody drifts ahead: every partner is caught up, each view once
        done = release_pending(node.releaser)
        assert not done.behind
        assert set(node.releaser.cursors()) == {"a", "b", "c"}
        assert len(set(node.releaser.cursors().values())) == 1
    finally:
        node.close()


def _after(chunks: int) -> Callable[[], bool]:
    """A should_stop that lets ``chunks`` chunks through (it is asked once per chunk,
    before it, and once per turn)."""
    asked = [0]

    def stop() -> bool:
        asked[0] += 1
        return asked[0] > chunks + 1

    return stop
