"""Keyed randomness of the code: biases and symbols drawn from the node secret.

Everything secret-dependent goes through HMAC-SHA256 with a domain-separation label, so
that the biases ``p_i`` (per position) and the symbols (per position and partner) are
pseudo-random functions of the secret: reproducible by the node at trace time, unpredictable
to recipients.  ``random`` is never used for anything keyed.
"""

from __future__ import annotations

import hashlib
import math
import struct
from functools import lru_cache

_PREFIX = "detente/fingerprint/v1\x00"
_BLOCK = 64  # SHA-256's block size: HMAC's key pads are one block
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))
_TWO64 = 2.0**64
_WORDS = struct.Struct(">4Q")


def keyed_bytes(secret: bytes, label: str, *parts: str) -> bytes:
    """32 pseudo-random bytes for (label, parts) under ``secret``: HMAC-SHA256 (RFC 2104)
    of the prefix, the label and the parts, NUL-separated."""
    # views are derived for every page a partner reads: this runs a few times per object,
    # so the key schedule (the two padded-key blocks) is hashed once per secret and the
    # message is encoded once
    inner, outer = _pads(secret)
    h = inner.copy()
    h.update((_PREFIX + label + "\x00" + "\x00".join(parts)).encode())
    o = outer.copy()
    o.update(h.digest())
    return o.digest()


@lru_cache(maxsize=16)
def _pads(secret: bytes) -> tuple[hashlib._Hash, hashlib._Hash]:
    """SHA-256 states with HMAC's inner and outer key pads hashed (copied per message)."""
    key = hashlib.sha256(secret).digest() if len(secret) > _BLOCK else secret
    key = key.ljust(_BLOCK, b"\x00")
    return hashlib.sha256(key.translate(_IPAD)), hashlib.sha256(key.translate(_OPAD))


def keyed_uniforms(secret: bytes, count: int, label: str, *parts: str) -> list[float]:
    """``count`` independent uniforms in the open interval (0, 1)."""
    if count <= 4:  # a symbol draw, a small alphabet's law: the first block is enough
        words = _WORDS.unpack(keyed_bytes(secret, label, *parts, "0"))
        if count == 2:
            return [(words[0] + 0.5) / _TWO64, (words[1] + 0.5) / _TWO64]
        return [(words[k] + 0.5) / _TWO64 for k in range(count)]
    out: list[float] = []
    block = 0
    while len(out) < count:
        out.extend((w + 0.5) / _TWO64 for w in _WORDS.unpack(
            keyed_bytes(secret, label, *parts, str(block))))
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
    if q == 2:  # every channel's positions (binary): the loop below, unrolled
        u0, u1 = keyed_uniforms(secret, 2, "bias", position)
        radius = math.sqrt(-2.0 * math.log(u0))
        z0 = radius * math.cos(2.0 * math.pi * u1)
        z1 = radius * math.sin(2.0 * math.pi * u1)
        g0, g1 = z0 * z0, z1 * z1
        total2 = sum((g0, g1)) or 1.0
        return ((1.0 - cutoff) * g0 / total2 + cutoff / q,
                (1.0 - cutoff) * g1 / total2 + cutoff / q)
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
    u = (_WORDS.unpack(keyed_bytes(secret, "symbol", position, partner, "0"))[0] + 0.5) / _TWO64
    if len(bias) == 2:  # binary positions: the loop below, unrolled (0.0 + p == p)
        return 0 if u < bias[0] else 1
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
