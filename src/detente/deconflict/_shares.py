"""Over-threshold secret sharing for coalition deconfliction (after Mahdavi et al., ACSAC 2020).

Why hand-written: no maintained Python library offers threshold-PSI share matching. What is
here is arithmetic, not a cipher: Shamir-style shares over the prime field GF(2^127 - 1) of a
polynomial whose coefficients are a keyed BLAKE2b (hashlib) of the item's joint OPRF tag.
Every confidentiality primitive around it is libsodium's (sealed boxes, secretbox).

For an item with tag ``t`` in run ``run``:

* its **bin** is ``BLAKE2b(run, "bin" || t) mod bins``;
* its **polynomial** is ``P(X) = a_1 X + … + a_{T-1} X^{T-1}`` (so ``P(0) = 0``) with
  ``a_j = BLAKE2b(run, "coef" || j || t) mod p``;
* a holder's **share** is ``(x, P(x))`` for a fresh uniformly random non-zero ``x``.

Any ``T - 1`` shares of one item are ``T - 1`` points of a polynomial with ``T - 1`` unknown
coefficients: every polynomial through them is equally likely, so they look like random
pairs (as the padding dummies are). ``T`` shares, with the origin, over-determine it: they
lie on one polynomial of degree ``T - 1`` through the origin, which random pairs do with
probability about ``1/p``. The reconstructor finds such groups per bin by dividing out
``X``: ``Q(X) = P(X) / X`` has degree ``T - 2`` and passes through ``(x, y/x)``, so each
``T - 1``-subset of shares from distinct uploads determines one ``Q``; two subsets with the
same ``Q`` belong to one item held by at least ``T`` uploads. For ``T = 2``, ``Q`` is the
constant ``y/x``: one dictionary lookup per share (the fast path).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import secrets
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["FIELD_BYTES", "PRIME", "Shape", "Share", "coefficients", "find_groups",
           "item_bin", "make_share", "matching_work", "pointer_key", "random_share", "shape_for"]

PRIME = (1 << 127) - 1
FIELD_BYTES = 16
_PERSON = b"detente-mpsi-v1"
_OVERFLOW_LOG2 = -40  # chance that a bin of an honest upload overflows, per run
_MEAN_LOAD = 8.0      # items per bin on average when T >= 3 (least matching work)


@dataclass(frozen=True, slots=True)
class Shape:
    """How every upload of a run is laid out: ``bins`` bins of ``load`` slots each (all
    uploads alike, whatever the participant's set size: the padding hides the size)."""

    bins: int
    load: int

    @property
    def slots(self) -> int:
        return self.bins * self.load


def _poisson_tail_log2(mean: float, above: int) -> float:
    """log2 of P[Poisson(mean) > above] (an upper bound on the binomial tail's value
    for our purposes: the sum is dominated by its first term)."""
    total, k = 0.0, above + 1
    term = math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
    while term > 1e-300 and k < above + 200:
        total += term
        k += 1
        term *= mean / k
    return math.log2(total) if total > 0 else -1000.0


def shape_for(threshold: int, capacity: int) -> Shape:
    """The layout for uploads of at most ``capacity`` items: one bin for ``T = 2`` (the
    reconstructor matches by a dictionary); for larger ``T`` whichever needs less matching
    work of one bin of ``capacity`` slots (never overflows) and bins of mean load 8 with a
    load bound that overflows with probability below 2^-40 over the whole upload."""
    if capacity < 1:
        raise ValueError("capacity must be >= 1")
    if threshold <= 2:
        return Shape(1, capacity)
    bins = max(1, math.ceil(capacity / _MEAN_LOAD))
    mean = capacity / bins
    load = max(1, math.ceil(mean))
    while _poisson_tail_log2(mean, load) + math.log2(bins) > _OVERFLOW_LOG2:
        load += 1
    if bins * load ** (threshold - 1) >= capacity ** (threshold - 1):
        return Shape(1, capacity)
    return Shape(bins, load)


def matching_work(threshold: int, participants: int, capacity: int) -> int:
    """How many candidate keys the reconstructor computes for a run of this size."""
    shape = shape_for(threshold, capacity)
    if threshold <= 2:
        return participants * shape.slots
    combos = math.comb(participants, threshold - 1)
    return int(shape.bins * combos * shape.load ** (threshold - 1))


def _kdf(run_id: bytes, label: bytes, tag: bytes, size: int = 32) -> bytes:
    return hashlib.blake2b(label + b"\x00" + tag, digest_size=size, key=run_id,
                           person=_PERSON).digest()


def item_bin(run_id: bytes, tag: bytes, bins: int) -> int:
    return int.from_bytes(_kdf(run_id, b"bin", tag, 16), "little") % bins


def coefficients(run_id: bytes, tag: bytes, threshold: int) -> tuple[int, ...]:
    """``a_1 … a_{T-1}`` of the item's polynomial (64-byte outputs reduced mod p)."""
    return tuple(int.from_bytes(_kdf(run_id, b"coef%d" % j, tag, 64), "little") % PRIME
                 for j in range(1, threshold))


def pointer_key(run_id: bytes, tag: bytes) -> bytes:
    """The secretbox key of a holder's contact pointer: only co-holders know the tag."""
    return _kdf(run_id, b"pointer", tag)


@dataclass(frozen=True, slots=True)
class Share:
    x: int
    y: int

    def to_bytes(self) -> bytes:
        return self.x.to_bytes(FIELD_BYTES, "little") + self.y.to_bytes(FIELD_BYTES, "little")

    @classmethod
    def from_bytes(cls, raw: bytes) -> Share:
        x = int.from_bytes(raw[:FIELD_BYTES], "little")
        y = int.from_bytes(raw[FIELD_BYTES:2 * FIELD_BYTES], "little")
        if not 0 < x < PRIME or not 0 <= y < PRIME:
            raise ValueError("share coordinate outside the field")
        return cls(x, y)


def _random_x() -> int:
    return secrets.randbelow(PRIME - 1) + 1


def make_share(coefs: Sequence[int]) -> Share:
    x = _random_x()
    y, power = 0, 1
    for a in coefs:
        power = power * x % PRIME
        y = (y + a * power) % PRIME
    return Share(x, y)


def random_share() -> Share:
    """A padding dummy: indistinguishable from any ``T - 1`` shares of one item."""
    return Share(_random_x(), secrets.randbelow(PRIME))


def _q_key(points: Sequence[tuple[int, int]], size: int) -> tuple[int, ...]:
    """The values at 0, 1, …, size-1 of the unique polynomial of degree < size through
    ``points`` (distinct x): a canonical key for it (Lagrange, shared denominators)."""
    dens = []
    for i, (xi, _zi) in enumerate(points):
        den = 1
        for j, (xj, _zj) in enumerate(points):
            if j != i:
                den = den * (xi - xj) % PRIME
        dens.append(den)
    weights = [zi * d % PRIME for (_xi, zi), d in zip(points, _inverses(dens), strict=True)]
    out = []
    for u in range(size):
        total = 0
        for i, w in enumerate(weights):
            num = w
            for j, (xj, _zj) in enumerate(points):
                if j != i:
                    num = num * (u - xj) % PRIME
            total += num
        out.append(total % PRIME)
    return tuple(out)


Slot = tuple[int, int]  # (upload index, slot index)


def _inverses(values: Sequence[int]) -> list[int]:
    """Every value's inverse mod p with one exponentiation (Montgomery's batch trick)."""
    prefix, acc = [], 1
    for v in values:
        prefix.append(acc)
        acc = acc * v % PRIME
    inv = pow(acc, -1, PRIME)
    out = [0] * len(values)
    for k in range(len(values) - 1, -1, -1):
        out[k] = prefix[k] * inv % PRIME
        inv = inv * values[k] % PRIME
    return out


def _lines(z: Sequence[tuple[int, int, int, int]], by_upload: Mapping[int, list[int]],
           found: dict[tuple[int, ...], set[int]]) -> None:
    """T = 3: every pair of shares from distinct uploads, keyed by its line (intercept,
    slope) in the (x, y/x) plane; one batch inversion per share."""
    uploads = sorted(by_upload)
    for a, ua in enumerate(uploads):
        later = [k for ub in uploads[a + 1:] for k in by_upload[ub]]
        if not later:
            continue
        for i in by_upload[ua]:
            _u, _s, xi, zi = z[i]
            pairs = [j for j in later if z[j][2] != xi]
            invs = _inverses([z[j][2] - xi for j in pairs])
            for j, inv in zip(pairs, invs, strict=True):
                slope = (z[j][3] - zi) * inv % PRIME
                found[((zi - slope * xi) % PRIME, slope)].update((i, j))


def find_groups(bins: Sequence[Sequence[tuple[int, int, Share]]],
                threshold: int) -> list[list[Slot]]:
    """The groups of slots, per bin, whose shares lie on one polynomial through the origin
    and come from at least ``threshold`` distinct uploads. Each bin entry is
    ``(upload, slot, share)``. A group never counts one upload twice. Work per bin:
    linear for ``T = 2``; for larger ``T`` one key per choice of ``T - 1`` shares from
    ``T - 1`` distinct uploads."""
    groups: list[list[Slot]] = []
    for entries in bins:
        found: dict[tuple[int, ...], set[int]] = defaultdict(set)
        invx = _inverses([sh.x for _u, _s, sh in entries]) if entries else []
        z = [(u, s, sh.x, sh.y * ix % PRIME)
             for (u, s, sh), ix in zip(entries, invx, strict=True)]
        if threshold <= 2:
            for k, (_u, _s, _x, zk) in enumerate(z):
                found[(zk,)].add(k)
        else:
            by_upload: dict[int, list[int]] = defaultdict(list)
            for k, entry in enumerate(z):
                by_upload[entry[0]].append(k)
            if threshold == 3:
                _lines(z, by_upload, found)
                by_upload = {}
            for uploads in itertools.combinations(sorted(by_upload), threshold - 1):
                for combo in itertools.product(*(by_upload[u] for u in uploads)):
                    points = [(z[k][2], z[k][3]) for k in combo]
                    if len({x for x, _ in points}) < len(points):
                        continue
                    found[_q_key(points, threshold - 1)].update(combo)
        for members in found.values():
            if len({z[k][0] for k in members}) >= threshold:
                groups.append([(z[k][0], z[k][1]) for k in sorted(members)])
    return groups
