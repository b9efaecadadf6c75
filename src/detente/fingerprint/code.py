"""The symmetric (q-ary) Tardos score and its rigorous accusation threshold.

Hand-written because no library implements Tardos codes, let alone over STIX views.

Score (Škorić, Katzenbeisser, Celik 2008, "Symmetric Tardos fingerprinting codes for
arbitrary alphabet sizes"): at a read position with pirate symbol ``y`` and
``pi = p_i(y)`` (the probability that a recipient holds ``y`` there), a recipient holding
``y`` scores ``+sqrt((1 - pi) / pi)`` and any other recipient ``-sqrt(pi / (1 - pi))``.
Erased positions (absent from the artifact) score nothing.

Bound.  For an innocent recipient the symbols are drawn from ``p_i`` independently of each
other and of everything the colluders saw, so given the biases and the artifact, its score
is a sum of independent two-point variables ``U_i`` (mean 0, variance 1).  Chernoff:

    P(S >= Z) <= exp(-lambda Z + Lambda(lambda)),
    Lambda(lambda) = sum_i log(pi_i e^(lambda a_i) + (1 - pi_i) e^(-lambda b_i))

for every ``lambda > 0``, with the exact moment generating function of each ``U_i``.
The threshold for a recipient with read positions ``R`` is

    Z = min_lambda (Lambda_R(lambda) + ln(n / epsilon)) / lambda,

so each innocent is accused with probability at most ``epsilon / n`` and, by the union
bound over the ``n`` scored recipients, any innocent with probability at most ``epsilon``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_LAMBDA_LO = 1e-4
_LAMBDA_HI = 20.0
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class ReadPosition:
    """A position read from the artifact: ``pi`` is the probability of the symbol read."""

    position: str
    symbol: int
    pi: float


def match_score(pi: float) -> float:
    """Score of a recipient whose symbol equals the pirate's."""
    return math.sqrt((1.0 - pi) / pi)


def miss_score(pi: float) -> float:
    """Score (negative) of a recipient whose symbol differs from the pirate's."""
    return -math.sqrt(pi / (1.0 - pi))


def score(reads: Sequence[ReadPosition], symbols: dict[str, int]) -> float:
    """Symmetric score of one recipient over the reads it holds a symbol for."""
    total = 0.0
    for read in reads:
        held = symbols.get(read.position)
        if held is None:
            continue
        total += match_score(read.pi) if held == read.symbol else miss_score(read.pi)
    return total


def log_mgf(pis: Sequence[float], lam: float) -> float:
    """``Lambda(lambda)``: log moment generating function of an innocent's score."""
    total = 0.0
    for pi in pis:
        a = match_score(pi)
        b = -miss_score(pi)
        # log(pi e^{la} + (1-pi) e^{-lb}) = la + log(pi + (1-pi) e^{-l(a+b)}), overflow-free
        total += lam * a + math.log(pi + (1.0 - pi) * math.exp(-lam * (a + b)))
    return total


def _golden_min(
    f: Callable[[float], float], lo: float, hi: float, iters: int = 56
) -> tuple[float, float]:
    """Minimise a unimodal function of ``log lambda`` by golden-section search."""
    a, b = math.log(lo), math.log(hi)
    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    fc, fd = f(math.exp(c)), f(math.exp(d))
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - _GOLDEN * (b - a)
            fc = f(math.exp(c))
        else:
            a, c, fc = c, d, fd
            d = a + _GOLDEN * (b - a)
            fd = f(math.exp(d))
    x = math.exp((a + b) / 2.0)
    return x, f(x)


def threshold(pis: Sequence[float], n: int, epsilon: float) -> float:
    """Accusation threshold ``Z`` with ``P(innocent score >= Z) <= epsilon / n``.

    ``(Lambda(lambda) + L) / lambda`` is unimodal in ``lambda`` (``Lambda`` is convex with
    ``Lambda(0) = 0``), so a golden-section search finds its minimum.
    """
    if not pis:
        return math.inf
    budget = math.log(n / epsilon)
    _, z = _golden_min(lambda lam: (log_mgf(pis, lam) + budget) / lam, _LAMBDA_LO, _LAMBDA_HI)
    return z


def tail_bound(pis: Sequence[float], value: float) -> float:
    """Chernoff bound on ``P(innocent score >= value)`` for one recipient."""
    if not pis or value <= 0.0:
        return 1.0
    _, exponent = _golden_min(lambda lam: log_mgf(pis, lam) - lam * value, _LAMBDA_LO, _LAMBDA_HI)
    return min(1.0, math.exp(exponent))
