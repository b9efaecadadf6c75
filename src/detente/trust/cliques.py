"""Collusion cliques: partners whose claims co-occur far beyond chance count as one source.

The pairwise discount (``Model.pair_weight``) asks how often a pair's joint claims are also
supported by a *third party*.  A clique of three or more defeats it: each member is the
others' third party.  This module finds the members of such groups from the reporting
itself, so the model can count a clique as one source.

The statistic.  Every claim in play has a popularity ``d_c``: the number of sources that
reported it (partners and our own reports; echoes and revoked reports do not count).  Under
the null hypothesis of *independent reporting at each source's base rate* (a bipartite
configuration model), source P reports a claim of popularity d with probability

    pi_P(d) = min(1, d * n_P / T)        n_P: distinct claims P reported; T = sum_c d_c

and two sources both report it with probability (sampling the d reporters without
replacement, m_eff = T^2 / sum_P n_P^2 the effective number of sources)

    p_PQ(d) = min(pi_P, pi_Q, pi_P * pi_Q * (d - 1) / d * m_eff / (m_eff - 1))

so the number of claims P and Q both assert is a sum of independent Bernoulli trials,
K_PQ = sum_d Binomial(N_d, p_PQ(d)) (N_d claims of popularity d >= 2).  Conditioning on
popularity is what keeps honest partners apart: a public indicator that many sources
report is *expected* to be reported by both, so overlapping on popular claims is no
evidence of collusion; overlapping on claims nobody else reports is.

(1) k_PQ is the number of claims P and Q both assert with an *independent* link (what would
    otherwise count as corroboration); declared derivation and shared citations are
    already set aside by intake and are not counted here.
(2) The one-sided p-value P(K_PQ >= k_PQ): computed exactly for k_PQ <= 64 (small samples,
    where the bound below is loose), else bounded by the Chernoff bound of the
    Poisson-binomial sum, min_t exp(-t k) prod_d (1 - p_d + p_d e^t)^N_d (never smaller
    than the exact tail: the test errs towards *not* merging).
(3) P and Q are *linked* when that bound is at most ``alpha / pairs`` (Bonferroni over the
    pairs with joint claims), k_PQ >= ``clique_min_joint`` and k_PQ >= ``clique_min_lift``
    times its expectation (a large sample must not merge honest partners over a small
    misfit of the null) — or the overlap is complete: every claim one of them reported,
    the other asserted too (a clique that is most of the reporting pulls the expectation
    up to half its own overlap, and full overlap is no small misfit).
(4) Cliques are the connected components of the links, reported for the operator; the
    model uses the links themselves (not the components) so that one copier linked to two
    honest partners cannot merge those two: a corroborating source counts only when it is
    linked neither to the reporter nor to a source already counted.

Written by hand: no maintained library offers this test over a claim/source incidence
(scipy's Fisher test is a different null and scipy is not a node dependency); the tail
bound is a few lines of closed-form arithmetic.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

__all__ = ["CliqueFinder", "PairTest", "tail_bound", "tail_probability"]


@dataclass(frozen=True, slots=True)
class PairTest:
    """The co-occurrence test of one pair: joint claims, expected under the null, p-value
    bound and whether they are linked (count as one source)."""

    joint: int
    expected: float
    p_value: float
    linked: bool

    def why(self) -> str:
        return (f"{self.joint} joint claims where independent reporting would give "
                f"{self.expected:.1f} (p <= {self.p_value:.1e})")


def tail_bound(k: int, strata: Iterable[tuple[int, float]]) -> float:
    """Chernoff bound on P(K >= k) for K = sum of Binomial(n, p) over ``strata``."""
    strata = [(n, p) for n, p in strata if n > 0 and p > 0.0]
    mean = sum(n * p for n, p in strata)
    if k <= mean:
        return 1.0
    top = sum(n for n, _ in strata)
    if k > top:
        return 0.0
    if k == top:  # the bound's infimum as t -> infinity: every trial succeeds
        return math.exp(sum(n * math.log(p) for n, p in strata))

    def slope(t: float) -> float:  # d/dt of the log bound: increasing in t
        return sum(n * p * math.exp(t) / (1.0 - p + p * math.exp(t)) for n, p in strata) - k

    lo, hi = 0.0, 1.0
    while slope(hi) < 0.0 and hi < 700.0:
        lo, hi = hi, hi * 2.0
    for _ in range(80):
        mid = (lo + hi) / 2.0
        if slope(mid) < 0.0:
            lo = mid
        else:
            hi = mid
    t = (lo + hi) / 2.0
    log_bound = -t * k + sum(n * math.log1p(p * math.expm1(t)) for n, p in strata)
    return min(1.0, math.exp(log_bound))


#: up to this many joint claims the tail is computed exactly (the Chernoff bound is loose
#: for small samples: a five-member clique with 15 joint reports in a small world was missed)
EXACT_UP_TO = 64


def tail_probability(k: int, strata: Iterable[tuple[int, float]]) -> float:
    """P(K >= k): exact for ``k <= EXACT_UP_TO`` (a convolution of the strata's binomials
    truncated at k), else :func:`tail_bound`; never below the exact tail either way."""
    strata = [(n, p) for n, p in strata if n > 0 and p > 0.0]
    if k > EXACT_UP_TO:
        return tail_bound(k, strata)
    if k <= 0:
        return 1.0
    below = [1.0] + [0.0] * (k - 1)  # P(K = j) for j < k, over the strata seen so far
    for n, p in strata:
        if p >= 1.0:
            below = [0.0] * min(n, k) + below[: max(0, k - n)]
            continue
        lp, lq = math.log(p), math.log1p(-p)
        pmf = [math.exp(math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
                        + j * lp + (n - j) * lq) for j in range(min(n, k - 1) + 1)]
        below = [sum(below[i] * pmf[j - i] for i in range(max(0, j - len(pmf) + 1), j + 1))
                 for j in range(k)]
    # 1 - P(K < k) loses ~1e-16 per term to rounding: a margin keeps it above the exact tail
    return min(1.0, max(0.0, 1.0 - sum(below)) + 1e-12)


class CliqueFinder:
    """Pairs whose joint claims exceed independent reporting far beyond chance."""

    def __init__(self, reporters: Mapping[str, frozenset[str]],
                 joint: Mapping[tuple[str, str], int], *, alpha: float, min_joint: int,
                 min_lift: float, never: frozenset[str] = frozenset(),
                 volume: Callable[[], Mapping[str, int]] | None = None) -> None:
        """``reporters``: claim -> the sources that reported it (all counting reports);
        ``joint``: (P, Q) with P < Q -> claims both assert with an independent link;
        ``never``: sources that are never linked (our own reports); ``volume``: gives
        the distinct claims each source reported, asked only when some pair is tested
        (then ``reporters`` need only hold every claim two or more sources reported: a
        claim one source alone reported weighs in its volume and nowhere else)."""
        counted: Counter[str] = Counter()
        popularity: Counter[int] = Counter()
        for sources in reporters.values():
            if volume is None:
                counted.update(sources)
            if len(sources) >= 2:
                popularity[len(sources)] += 1
        tested = [(pair, k) for pair, k in joint.items()
                  if k > 0 and not (set(pair) & never)]
        if volume is not None and tested:
            counted = Counter({p: n for p, n in volume().items() if n > 0})
        total = sum(counted.values())
        squares = sum(n * n for n in counted.values())
        m_eff = total * total / squares if squares else 1.0
        volume_of = counted
        self.tests: dict[tuple[str, str], PairTest] = {}
        for (p, q), k in tested:
            strata = [(n, _both(d, volume_of[p], volume_of[q], total, m_eff))
                      for d, n in sorted(popularity.items())]
            expected = sum(n * x for n, x in strata)
            bound = tail_probability(k, strata)
            # the lift guards large samples against a small misfit of the null; a pair
            # where one side reported nothing the other did not is not such a misfit
            complete = k >= min(volume_of[p], volume_of[q])
            linked = (bound <= alpha / len(tested) and k >= min_joint
                      and (k >= min_lift * expected or complete))
            self.tests[(p, q)] = PairTest(k, expected, bound, linked)
        self.links: dict[str, set[str]] = {}
        for (p, q), test in self.tests.items():
            if test.linked:
                self.links.setdefault(p, set()).add(q)
                self.links.setdefault(q, set()).add(p)

    def linked(self, p: str, q: str) -> bool:
        return q in self.links.get(p, ())

    def test(self, p: str, q: str) -> PairTest | None:
        return self.tests.get((p, q) if p <= q else (q, p))

    def cliques(self) -> list[frozenset[str]]:
        """Connected components of the links (two or more members), for the operator."""
        seen: set[str] = set()
        out = []
        for start in sorted(self.links):
            if start in seen:
                continue
            group, todo = set(), [start]
            while todo:
                p = todo.pop()
                if p not in group:
                    group.add(p)
                    todo.extend(self.links.get(p, ()))
            seen |= group
            out.append(frozenset(group))
        return out


def _both(d: int, n_p: int, n_q: int, total: int, m_eff: float) -> float:
    """Probability that P and Q are both among a claim's d reporters, under the null."""
    pi_p = min(1.0, d * n_p / total)
    pi_q = min(1.0, d * n_q / total)
    correction = (d - 1) / d * (m_eff / (m_eff - 1.0) if m_eff > 1.0 else 1.0)
    return min(pi_p, pi_q, pi_p * pi_q * correction)
