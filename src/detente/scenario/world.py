"""Seeded synthetic intelligence for the demo: indicators, threat actors, places.

Everything is generated from a seed so the demo and its tests are reproducible.  All
addresses come from documentation ranges (RFC 5737, example.* domains): nothing here
points at a real host.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Any

__all__ = ["PLACES", "World", "stix_id"]

NS = uuid.UUID("6c0f8e7e-5a36-4d53-9f5e-2f0c1d1c8a11")

#: (name, latitude, longitude) of places in the scenario
PLACES = [
    ("Raqqa", 35.9528, 39.0079), ("Deir ez-Zor", 35.3359, 40.1408),
    ("Palmyra", 34.5560, 38.2680), ("Al-Bukamal", 34.4537, 40.9365),
    ("Mosul", 36.3350, 43.1189), ("Manbij", 36.5281, 37.9549),
]

ACTORS = ["ISIS external operations cell", "Amaq media office", "Raqqa logistics network",
          "Deir ez-Zor financing network"]


def stix_id(kind: str, *parts: object) -> str:
    """Deterministic STIX id from the scenario namespace."""
    return f"{kind}--{uuid.uuid5(NS, '|'.join(str(p) for p in (kind, *parts)))}"


def ts(day: int, second: int = 0) -> str:
    hours, rest = divmod(second, 3600)
    return f"2025-11-{day:02d}T{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"


@dataclass
class World:
    seed: int = 2015

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def ipv4(self) -> str:
        block = self.rng.choice(["192.0.2", "198.51.100", "203.0.113"])
        return f"{block}.{self.rng.randint(1, 254)}"

    def domain(self) -> str:
        return f"{self.rng.choice(['amaq', 'nashir', 'dabiq', 'rumiyah'])}-" \
               f"{self.rng.getrandbits(24):06x}.example.net"

    def indicator(self, creator: str, value: str, *, day: int, name: str,
                  markings: list[str], confidence: int = 60,
                  labels: list[str] | None = None, description: str = "") -> dict[str, Any]:
        kind = "ipv4-addr" if value[0].isdigit() else "domain-name"
        obj: dict[str, Any] = {
            "type": "indicator", "spec_version": "2.1",
            "id": stix_id("indicator", creator, value),
            "created_by_ref": creator, "created": ts(day), "modified": ts(day),
            "name": name, "indicator_types": ["malicious-activity"],
            "pattern": f"[{kind}:value = '{value}']", "pattern_type": "stix",
            "valid_from": ts(day), "confidence": confidence,
            "labels": labels or ["isis", "c2"],
            "object_marking_refs": markings,
        }
        if description:
            obj["description"] = description
        return obj

    def threat_actor(self, creator: str, name: str, *, day: int,
                     markings: list[str]) -> dict[str, Any]:
        return {
            "type": "threat-actor", "spec_version": "2.1",
            "id": stix_id("threat-actor", creator, name), "created_by_ref": creator,
            "created": ts(day), "modified": ts(day), "name": name,
            "threat_actor_types": ["terrorist"], "aliases": [name.split()[0] + " network"],
            "object_marking_refs": markings,
        }

    def location(self, creator: str, place: str, *, day: int,
                 markings: list[str]) -> dict[str, Any]:
        _, lat, lon = next(p for p in PLACES if p[0] == place)
        return {
            "type": "location", "spec_version": "2.1",
            "id": stix_id("location", creator, place), "created_by_ref": creator,
            "created": ts(day), "modified": ts(day), "name": place,
            "latitude": lat, "longitude": lon, "country": "SY" if place != "Mosul" else "IQ",
            "object_marking_refs": markings,
        }

    def sample(self, creator: str, marking: str, n: int = 40) -> list[dict[str, Any]]:
        """A mixed sample for the quick demo: actors, places, indicators."""
        out = [self.threat_actor(creator, a, day=1, markings=[marking]) for a in ACTORS]
        out += [self.location(creator, p[0], day=1, markings=[marking]) for p in PLACES]
        for i in range(n):
            value = self.ipv4() if i % 2 else self.domain()
            out.append(self.indicator(creator, value, day=2 + i % 20,
                                      name=f"ISIS C2 node {i}", markings=[marking]))
        return out
