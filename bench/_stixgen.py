"""Seeded synthetic STIX content shared by the benchmarks (realistic indicators)."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

TLP_GREEN = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
TLP_AMBER = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
TLP_CLEAR = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
CREATOR = "identity--8e2e2d2b-17d4-4cbf-938f-98ee46b3cd3f"

_LABELS = [
    "malicious-activity",
    "c2",
    "phishing",
    "botnet",
    "anonymization",
    "exfiltration",
    "isis",
    "syria",
    "propaganda",
    "financing",
]
_WORDS = [
    "command", "control", "server", "observed", "beaconing", "from", "infected", "hosts",
    "in", "the", "region", "associated", "with", "the", "campaign", "reported", "by",
    "partner", "services",
]


def _ts(rng: random.Random) -> str:
    return (
        f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T"
        f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}."
        f"{rng.randint(0, 999):03d}Z"
    )


def _pattern(rng: random.Random) -> str:
    kind = rng.randrange(4)
    if kind == 0:
        return (
            f"[ipv4-addr:value = '{rng.randint(1, 223)}.{rng.randint(0, 255)}."
            f"{rng.randint(0, 255)}.{rng.randint(1, 254)}']"
        )
    if kind == 1:
        return f"[domain-name:value = 'c2-{rng.getrandbits(40):x}.example.net']"
    if kind == 2:
        return f"[file:hashes.'SHA-256' = '{rng.getrandbits(256):064x}']"
    return (
        f"[url:value = 'https://{rng.getrandbits(32):x}.example.org/gate.php?id="
        f"{rng.getrandbits(24)}']"
    )


def indicator(rng: random.Random, marking: str | None = None) -> dict[str, Any]:
    created = _ts(rng)
    return {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
        "created_by_ref": CREATOR,
        "created": created,
        "modified": created,
        "name": "ISIS-linked C2 " + " ".join(rng.choices(_WORDS, k=3)),
        "description": " ".join(rng.choices(_WORDS, k=rng.randint(12, 22))),
        "indicator_types": ["malicious-activity"],
        "pattern": _pattern(rng),
        "pattern_type": "stix",
        "valid_from": created,
        "confidence": rng.randint(10, 95),
        "labels": rng.sample(_LABELS, 3),
        "object_marking_refs": [marking or rng.choice([TLP_GREEN, TLP_AMBER, TLP_CLEAR])],
    }


def indicators(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for _ in range(n):
        yield indicator(rng)
