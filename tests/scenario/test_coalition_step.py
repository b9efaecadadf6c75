"""The scenario's coalition step: the U.S., France and Russia learn that all three hold the
Raqqa C2 address, and nothing else (addresses two of them share stay hidden)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from detente.federation.psi.sets import own_set
from detente.scenario.coalition_step import RAQQA_C2, coalition_deconflict
from detente.scenario.story import Coalition

pytestmark = pytest.mark.live


def test_all_three_learn_the_raqqa_c2_and_nothing_else(tmp_path: Path) -> None:
    lines: list[str] = []
    coalition = Coalition(tmp_path, lines.append)
    coalition.start()
    try:
        for name, h in coalition.holdings.items():  # each one's own reporting, not synced
            coalition._store(name, [o for r in h.rounds for o in r])
        pairs = Counter(i for n in coalition.nodes.values()
                        for i in set(own_set(n, "observables").items))
        assert any(c == 2 for c in pairs.values())  # two of them do share addresses
        step = coalition_deconflict(coalition)
    finally:
        coalition.stop()
    assert step.learned == {n: [f"ipv4-addr:{RAQQA_C2}"] for n in ("us", "fr", "ru")}
    assert step.recorded == {"us": True, "fr": True, "ru": True, "desk": True}
    assert step.reconstructor["reconstructed"] and not step.reconstructor["holds_items"]
    assert step.reconstructor["groups"] == 1
    assert "3 of 3 learned exactly that" in lines[-1]
