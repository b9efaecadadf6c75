"""Beta distribution quantiles without scipy.

The 90% interval of a reliability is two quantiles of a Beta(α, β) posterior.  The node
has no numpy/scipy (one small dependency set), so the regularized incomplete beta function
``I_x(a, b)`` is evaluated here with the Lentz continued fraction (Numerical Recipes §6.4,
using the symmetry ``I_x(a, b) = 1 - I_{1-x}(b, a)`` where the fraction converges slowly)
and inverted by bisection, which is monotone and cannot fail to converge.  Parameters are
real (weighted, decayed evidence), not integers.
"""

from __future__ import annotations

import math

__all__ = ["beta_cdf", "beta_quantile"]

_EPS = 1e-14
_TINY = 1e-300


def _continued_fraction(x: float, a: float, b: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + num / c
            c = c if abs(c) > _TINY else _TINY
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            break
    return h


def beta_cdf(x: float, a: float, b: float) -> float:
    """``I_x(a, b)``: P(X <= x) for X ~ Beta(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _continued_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _continued_fraction(1.0 - x, b, a) / b


def beta_quantile(p: float, a: float, b: float) -> float:
    """The x with ``I_x(a, b) = p``, to within 1e-15, by bisection."""
    if not 0.0 <= p <= 1.0 or a <= 0 or b <= 0:
        raise ValueError("beta_quantile needs 0 <= p <= 1 and a, b > 0")
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2.0
        if beta_cdf(mid, a, b) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0
