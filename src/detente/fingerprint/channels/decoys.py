"""Channel 4 (optional, off by default): per-recipient canary observables.

A decoy is an extra indicator served only to one partner alongside a report or grouping
(its id is added to ``object_refs``).  Its domain is keyed by the secret, the object
version and the partner, under a domain the node controls (``decoy_domain``).  A decoy is
*false* intelligence by construction, so it is opt-in and always recorded in the embed
record as a decoy, so that the node itself never mistakes it for content.  Seeing a decoy
in an artifact points at its one recipient; the chance that anyone guesses a 64-bit label
is 2**-64.
"""

from __future__ import annotations

import uuid

from detente.fingerprint.channels.slots import JSON, ChannelContext
from detente.fingerprint.keyed import keyed_bytes, keyed_hex

CONTAINERS = frozenset({"report", "grouping"})
GUESS_PROBABILITY = 2.0**-64


def make_decoy(view: JSON, partner: str, object_key: str, ctx: ChannelContext) -> JSON | None:
    """The decoy indicator for this (object version, partner), or None if not a container."""
    if not ctx.params.decoys or view.get("type") not in CONTAINERS:
        return None
    label = keyed_hex(ctx.secret, "decoy-label", object_key, partner)
    raw = keyed_bytes(ctx.secret, "decoy-id", object_key, partner)[:16]
    ident = uuid.UUID(bytes=raw, version=4)
    value = f"{label}.{ctx.params.decoy_domain}"
    stamp = str(view.get("modified") or view.get("created"))
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{ident}",
        "created": stamp,
        "modified": stamp,
        "name": f"Infrastructure domain {label[:6]}",
        "indicator_types": ["malicious-activity"],
        "pattern": f"[domain-name:value = '{value}']",
        "pattern_type": "stix",
        "valid_from": stamp,
    }


def attach(view: JSON, decoy: JSON) -> None:
    """Reference the decoy from the container (after list marks are written)."""
    refs = view.get("object_refs")
    view["object_refs"] = [*(refs if isinstance(refs, list) else []), decoy["id"]]


def decoy_value(decoy: JSON) -> str:
    """The canary domain inside a decoy's pattern."""
    pattern = str(decoy.get("pattern", ""))
    return pattern.split("'")[1] if pattern.count("'") >= 2 else pattern
