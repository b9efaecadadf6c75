"""Partners: other nodes this node knows, and the TAXII clients acting for them."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field

from detente.errors import ValidationError

__all__ = ["TIER_NAMES", "Client", "Partner", "check_name", "parse_public_key"]

TIER_NAMES = {0: "unknown", 1: "probation", 2: "working", 3: "trusted", 4: "close"}

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_name(name: str, what: str = "partner name") -> str:
    if not _NAME.match(name):
        raise ValidationError(
            f"{what} {name!r} is not usable",
            hint="use 1-63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )
    return name


def parse_public_key(value: str) -> bytes:
    """An Ed25519 public key given as base64 (as `detente identity` prints it)."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"public key {value!r} is not base64") from None
    if len(raw) != 32:
        raise ValidationError(f"public key must be 32 bytes of Ed25519, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class Partner:
    name: str
    identity_id: str | None
    public_key: bytes = field(repr=False)
    url: str
    communities: frozenset[str]
    #: tier set by the operator at `partner add` (the earned-trust engine refines it)
    base_tier: int
    max_tier: int | None = None
    min_tier: int | None = None
    cap_reason: str | None = None
    added_at: int = 0

    @property
    def public_key_b64(self) -> str:
        return base64.b64encode(self.public_key).decode()


@dataclass(frozen=True, slots=True)
class Client:
    """A TAXII client credential (HTTP Basic or bearer) acting as one partner, or as the
    local operator when ``partner`` is None."""

    name: str
    partner: str | None
    user: str
    secret_hash: str = field(repr=False)
    created_at: int = 0
