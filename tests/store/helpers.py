"""Builders of valid STIX objects for store tests."""

from __future__ import annotations

import uuid
from typing import Any

from detente.stix.model import StixObject
from detente.stix.validate import validate

CREATOR = "identity--f431f809-377b-45e0-aa1c-6a4751cae5ff"
OTHER = "identity--0b9d3f3a-1111-4c1b-9a3e-35f2d4c7aa01"


def ts(second: int, frac: str = "000") -> str:
    minute, sec = divmod(second, 60)
    hour, minute = divmod(minute, 60)
    return f"2024-01-01T{hour:02d}:{minute:02d}:{sec:02d}.{frac}Z"


def indicator(
    oid: str | None = None, *, modified: int = 0, creator: str | None = CREATOR,
    name: str = "bad ip", revoked: bool = False, **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": oid or f"indicator--{uuid.uuid4()}",
        "created": ts(0),
        "modified": ts(modified),
        "name": name,
        "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix",
        "valid_from": ts(0),
    }
    if creator:
        body["created_by_ref"] = creator
    if revoked:
        body["revoked"] = True
    body.update(extra)
    return body


def v(body: dict[str, Any]) -> StixObject:
    return validate(body)
