"""A Golomb-coded set (Golomb-Rice codes) for the responder's blinded set.

Why hand-written: no maintained Python library encodes GCS, and this is a compression
format, not cryptography. The set holds ``count`` values uniform in ``[0, count << bits)``;
sorted gaps are written as a Rice code with ``bits`` remainder bits. A lookup of a value not
in the set is a false positive with probability about ``2**-bits``; a query of ``n`` items
therefore sees about ``n * 2**-bits`` false positives, and :func:`rice_bits` picks ``bits``
for a stated total rate. Cost: about ``bits + 2`` bits per element.

Layout (two streams so that both code and decode run in C-level string operations):
quotients in unary (``q`` ones then a zero) then remainders at fixed width, each stream
padded with zero bits to whole bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import accumulate

from detente.deconflict.errors import ProtocolError

__all__ = ["GolombSet", "rice_bits"]

MAX_BITS = 96


def rice_bits(max_lookups: int, false_positive_rate: float) -> int:
    """Remainder bits so that ``max_lookups`` lookups see a false positive w.p. <= the rate."""
    if not 0 < false_positive_rate < 1:
        raise ValueError("false_positive_rate must be in (0, 1)")
    return max(1, math.ceil(math.log2(max(1, max_lookups) / false_positive_rate)))


def _to_bits(bitstring: str) -> bytes:
    pad = -len(bitstring) % 8
    padded = bitstring + "0" * pad
    return int("1" + padded, 2).to_bytes(len(padded) // 8 + 1, "big")[1:]


def _from_bits(data: bytes) -> str:
    return format(int.from_bytes(b"\x01" + data, "big"), "b")[1:]


@dataclass(frozen=True)
class GolombSet:
    """An immutable Golomb-coded set; validated when built, decoded lazily once."""

    count: int
    bits: int
    quotients: bytes
    remainders: bytes
    _values: list[int] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.bits <= MAX_BITS:
            raise ProtocolError(f"golomb set: remainder width {self.bits} out of range")
        if self.count < 0:
            raise ProtocolError("golomb set: negative count")
        if len(self.remainders) != -(-self.count * self.bits // 8):
            raise ProtocolError(
                f"golomb set: {len(self.remainders)} remainder bytes for {self.count} values"
            )
        if len(self.quotients) < -(-self.count // 8):
            raise ProtocolError("golomb set: quotient stream is truncated")

    @property
    def modulus(self) -> int:
        """Values hashed into the set must be reduced into ``[0, modulus)``."""
        return max(1, self.count) << self.bits

    @classmethod
    def build(cls, values: list[int], bits: int) -> GolombSet:
        """Encode values already reduced mod ``len(values) << bits`` (repeats allowed)."""
        ordered = sorted(values)
        gaps = [b - a for a, b in zip([0, *ordered], ordered, strict=False)]
        mask = (1 << bits) - 1
        unary = "".join(["1" * (g >> bits) + "0" for g in gaps])
        rem = "".join([format(g & mask, f"0{bits}b") for g in gaps])
        made = cls(len(ordered), bits, _to_bits(unary), _to_bits(rem))
        object.__setattr__(made, "_values", ordered)
        return made

    def values(self) -> list[int]:
        """The sorted values (decoded once, then cached)."""
        if self._values is None:
            object.__setattr__(self, "_values", self._decode())
        assert self._values is not None
        return self._values

    def _decode(self) -> list[int]:
        n, k = self.count, self.bits
        if n == 0:
            return []
        runs = _from_bits(self.quotients).split("0")
        if not n < len(runs) <= n + 8 or any(runs[n:]):
            raise ProtocolError("golomb set: quotient stream does not hold exactly the count")
        rem = _from_bits(self.remainders)
        if "1" in rem[n * k :]:
            raise ProtocolError("golomb set: non-zero padding after the remainders")
        gaps = [(len(runs[i]) << k) | int(rem[i * k : i * k + k], 2) for i in range(n)]
        ordered = list(accumulate(gaps))
        if ordered[-1] >= self.modulus:
            raise ProtocolError("golomb set: a value lies outside the set's range")
        return ordered
