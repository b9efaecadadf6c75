"""The code: symmetric score moments, and the false-accusation bound checked empirically."""

from __future__ import annotations

import math
import random

import pytest

from detente.fingerprint import code
from detente.fingerprint.code import ReadPosition
from detente.fingerprint.keyed import bias_vector, draw_symbol

SECRET = b"s" * 32


@pytest.mark.parametrize("pi", [0.01, 0.2, 0.5, 0.93])
def test_innocent_position_score_has_mean_zero_and_variance_one(pi: float) -> None:
    up, down = code.match_score(pi), code.miss_score(pi)
    assert pi * up + (1 - pi) * down == pytest.approx(0.0, abs=1e-12)
    assert pi * up**2 + (1 - pi) * down**2 == pytest.approx(1.0)


@pytest.mark.parametrize("q", [2, 6, 24, 255])
def test_bias_vectors_are_distributions_above_the_cutoff(q: int) -> None:
    for k in range(20):
        p = bias_vector(SECRET, f"pos-{k}", q, 0.3, 32)
        assert math.fsum(p) == pytest.approx(1.0)
        assert min(p) >= 0.3 / q - 1e-12


def test_symbols_follow_the_bias() -> None:
    p = bias_vector(SECRET, "pos", 2, 0.3, 32)
    ones = sum(draw_symbol(SECRET, "pos", f"u{k}", p) for k in range(4000))
    assert abs(ones / 4000 - p[1]) < 0.03


def test_no_positions_means_no_threshold_can_be_reached() -> None:
    assert code.threshold([], 10, 1e-3) == math.inf


def test_threshold_grows_with_recipients_and_shrinks_with_epsilon() -> None:
    pis = [0.3, 0.5, 0.04, 0.6] * 10
    assert code.threshold(pis, 100, 1e-3) > code.threshold(pis, 10, 1e-3)
    assert code.threshold(pis, 10, 1e-6) > code.threshold(pis, 10, 1e-3)


def test_threshold_meets_its_own_bound() -> None:
    pis = [0.3, 0.5, 0.04, 0.6, 1 / 24, 1 / 1000] * 8
    z = code.threshold(pis, 50, 1e-3)
    assert code.tail_bound(pis, z) <= 1e-3 / 50 * 1.0001


def test_innocent_scores_exceed_threshold_no_more_often_than_the_bound() -> None:
    """Seeded trials: innocent symbols independent of the pirate's; count exceedances.

    A loose per-recipient level (5%) makes exceedances observable at all; the rigorous
    Chernoff bound must hold empirically, with a 3-sigma binomial allowance.
    """
    rng = random.Random(2024)
    level, trials, exceed = 0.05, 3000, 0
    qs = [2, 2, 2, 6, 24, 255, 1000]
    for trial in range(trials):
        reads: list[ReadPosition] = []
        mine: dict[str, int] = {}
        for k in range(rng.randint(5, 60)):
            q = rng.choice(qs)
            pos = f"t{trial}-{k}"
            p = bias_vector(SECRET, pos, q, 0.3, 32)
            pirate = draw_symbol(SECRET, pos, "pirate", p)  # independent of the innocent
            reads.append(ReadPosition(pos, pirate, p[pirate]))
            mine[pos] = draw_symbol(SECRET, pos, f"innocent-{trial}", p)
        z = code.threshold([r.pi for r in reads], 1, level)
        exceed += code.score(reads, mine) >= z
    allowance = 3 * math.sqrt(level * (1 - level) / trials)
    assert exceed / trials <= level + allowance
    assert exceed / trials <= level  # in practice the Chernoff bound is far from tight


def test_a_colluder_holding_the_pirate_symbols_scores_high() -> None:
    reads, mine = [], {}
    for k in range(40):
        p = bias_vector(SECRET, f"c{k}", 24, 0.3, 32)
        s = draw_symbol(SECRET, f"c{k}", "colluder", p)
        reads.append(ReadPosition(f"c{k}", s, p[s]))
        mine[f"c{k}"] = s
    assert code.score(reads, mine) > code.threshold([r.pi for r in reads], 100, 1e-3)
