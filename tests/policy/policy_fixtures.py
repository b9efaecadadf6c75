"""Shared builders for the policy tests: a node, its partners, objects, real markings."""

from __future__ import annotations

import json
from typing import Any

from tests.realdata import REAL_DATA

from detente.policy import TLP2_IDS, NodeContext, Recipient, releasability_marking

REAL = REAL_DATA

US_ID = "identity--11111111-1111-4111-8111-111111111111"
FR_ID = "identity--22222222-2222-4222-8222-222222222222"
RU_ID = "identity--33333333-3333-4333-8333-333333333333"

FR = Recipient("fr", FR_ID, frozenset({"coalition", "eu"}), 3)
RU = Recipient("ru", RU_ID, frozenset({"coalition"}), 1)
IR = Recipient("ir", None, frozenset(), 0)


def node(
    *markings: dict[str, Any],
    default_tlp: str | None = None,
    origin: str | None = None,
    **extra: Any,
) -> NodeContext:
    return NodeContext(
        name="us",
        identity_id=US_ID,
        communities=frozenset({"coalition"}),
        default_tlp=default_tlp,
        markings={m["id"]: m for m in markings},
        origin=origin,
        **extra,
    )


def indicator(*marking_refs: str, **props: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": "indicator--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f",
        "created": "2024-04-06T20:03:48.000Z",
        "modified": "2024-04-06T20:03:48.000Z",
        "name": "ISIS C2 server",
        "description": "Seen in Raqqa operations",
        "indicator_types": ["malicious-activity"],
        "pattern": "[ipv4-addr:value = '198.51.100.3']",
        "pattern_type": "stix",
        "valid_from": "2024-01-01T00:00:00Z",
        "labels": ["c2", "raqqa", "source-humint"],
        "kill_chain_phases": [{"kill_chain_name": "lockheed-martin", "phase_name": "c2"}],
    }
    if marking_refs:
        obj["object_marking_refs"] = list(marking_refs)
    obj.update(props)
    return obj


def tlp(level: str) -> str:
    return TLP2_IDS[level]


def to(*names: str, **kwargs: Any) -> dict[str, Any]:
    """A releasability marking naming ``names`` (plus any other releasability argument)."""
    return releasability_marking(releasable_to=list(names) if names else None, **kwargs)


def real_objects(name: str) -> list[dict[str, Any]]:
    data = json.loads((REAL / name).read_text(encoding="utf-8"))
    if isinstance(data, dict) and "objects" in data:
        return list(data["objects"])
    return [data]
