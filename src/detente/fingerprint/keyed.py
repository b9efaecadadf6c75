"""Keyed randomness of the code: biases and symbols drawn from the node secret.

Everything secret-dependent goes through HMAC-SHA256 with a domain-separation label, so
that the biases ``p_i`` (per position) and the symbols (per position and partner) are
pseudo-random functions of the secret: reproducible by the node at trace time, unpredictable
to recipients.  ``random`` is never used for anything keyed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from functools import lru_cache

_PREFIX = b"detente/fingerprint/v1\x00"


def keyed_bytes(secret: bytes, label: str, *parts: str) -> bytes:
    """32 pseudo-random bytes for (label, parts) under ``secret``."""
    h = _keyed(secret).copy()  # the key schedule once per secret: views are derived for
    h.update(_PREFIX + label.encode() + b"\x00" + "\x00".join(parts).encode())
    return h.digest()  # every page a partner reads, this runs a few times per object


@lru_cache(maxsize=16)
def _keyed(secret: bytes) -> hmac.HMAC:
    """HMAC-SHA256 keyed with ``secret``, nothing hashed yet (copied for each message)."""
    return hmac.new(secret, digestmod="sha256")


def keyed_uniforms(secret: bytes, count: int, label: str, *parts: str) -> list[float]:
    """``count`` independent uniforms in the open interval (0, 1)."""
    if count <= 4:  # a symbol draw, a small alphabet's law: the first block is enough
        raw = keyed_bytes(secret, label, *parts, "0")
        return [(int.from_bytes(raw[k : k + 8], "big") + 0.5) / 2.0**64
                for k in range(0, 8 * count, 8)]
    out: list[float] = []
    block = 0
    while len(out) < count:
        raw = keyed_bytes(secret, label, *parts, str(block))
        for k in range(0, 32, 8):
            value = int.from_bytes(raw[k : k + 8], "big")
            out.append((value + 0.5) / 2.0**64)
        block += 1
    return out[:count]


def bias_vector(
    secret: bytes, position: str, q: int, cutoff: float, dirichlet_max_q: int
) -> tuple[float, ...]:
    """The symbol distribution ``p_i`` of one position.

    For small alphabets: Dirichlet(1/2, ..., 1/2) (for q = 2 this is Tardos' arcsine law),
    mixed with the uniform law so that every probability is at least ``cutoff / q``.  For
    large alphabets the uniform law: colluders then almost never share a symbol, and the
    uniform law maximises what one matching symbol is worth.
    """
    if q > dirichlet_max_q:
        return tuple(1.0 / q for _ in range(q))
    u = keyed_uniforms(secret, q + (q % 2), "bias", position)
    normals: list[float] = []
    for k in range(0, len(u), 2):
        radius = math.sqrt(-2.0 * math.log(u[k]))
        normals.append(radius * math.cos(2.0 * math.pi * u[k + 1]))
        normals.append(radius * math.sin(2.0 * math.pi * u[k + 1]))
    gammas = [z * z for z in normals[:q]]  # chi-square(1) = 2 * Gamma(1/2): ratios are Dirichlet
    total = sum(gammas) or 1.0
    return tuple((1.0 - cutoff) * g / total + cutoff / q for g in gammas)


def draw_symbol(secret: bytes, position: str, partner: str, bias: tuple[float, ...]) -> int:
    """The partner's symbol at ``position``: a keyed draw from ``bias``."""
    (u,) = keyed_uniforms(secret, 1, "symbol", position, partner)
    acc = 0.0
    for symbol, prob in enumerate(bias):
        acc += prob
        if u < acc:
            return symbol
    return len(bias) - 1


def keyed_hex(secret: bytes, label: str, *parts: str, length: int = 16) -> str:
    """A short keyed identifier (hex)."""
    return keyed_bytes(secret, label, *parts).hex()[:length]


def plain_hex(*parts: str, length: int = 16) -> str:
    """An unkeyed content digest (BLAKE2b), for position ids and element handles."""
    data = "\x00".join(parts).encode() + b"\x00" if parts else b""
    return hashlib.blake2b(data, digest_size=16).hexdigest()[:length]
