"""A small world for trust tests: a store, a ledger, a clock, partners that send STIX."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from detente.ledger import Ledger
from detente.schema import create_schema
from detente.stix.validate import validate
from detente.store import Provenance
from detente.store.base import StoredObject
from detente.store.sql import SqlStore, open_store
from detente.trust import Observation, TrustConfig, TrustEngine

DAY_US = 86_400 * 1_000_000
T0 = 1_717_200_000 * 1_000_000  # 2024-06-01


def ts(micros: int) -> str:
    from detente.stix.timestamps import format_micros

    return format_micros(micros)


@dataclass
class Clock:
    now: int = T0

    def __call__(self) -> int:
        return self.now

    def advance(self, days: float) -> None:
        self.now += int(days * DAY_US)


def ipv4(n: int) -> str:
    return f"198.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


def indicator(value: str, *, sco: str = "ipv4-addr", labels: list[str] | None = None,
              valid_days: float | None = None, when: int = T0, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created": ts(when), "modified": ts(when), "pattern_type": "stix",
        "pattern": f"[{sco}:value = '{value}']", "valid_from": ts(when),
    }
    if labels:
        body["labels"] = labels
    if valid_days is not None:
        body["valid_until"] = ts(when + int(valid_days * DAY_US))
    body.update(extra)
    return body


def actor(name: str, when: int = T0, **extra: Any) -> dict[str, Any]:
    return {"type": "threat-actor", "spec_version": "2.1", "id": f"threat-actor--{uuid.uuid4()}",
            "created": ts(when), "modified": ts(when), "name": name, **extra}


def sighting(of: str, *, false_positive: bool = False, when: int = T0) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
        "created": ts(when), "modified": ts(when), "sighting_of_ref": of}
    if false_positive:
        body["x_opencti_negative"] = True
    return body


def relationship(src: str, rtype: str, dst: str, when: int = T0) -> dict[str, Any]:
    return {"type": "relationship", "spec_version": "2.1",
            "id": f"relationship--{uuid.uuid4()}", "created": ts(when), "modified": ts(when),
            "relationship_type": rtype, "source_ref": src, "target_ref": dst}


@dataclass
class World:
    store: SqlStore
    trust: TrustEngine
    clock: Clock
    ledger: Ledger | None = None
    sent: list[Observation] = field(default_factory=list)

    def send(self, origin: str, *bodies: dict[str, Any],
             flags: dict[str, Any] | None = None) -> list[Observation]:
        """Store objects as received from ``origin`` now, then observe them."""
        prov = Provenance(origin=origin, received_at=self.clock.now, flags=flags or {})
        self.store.put_many([validate(b) for b in bodies], prov)
        stored = [self.stored(b["id"]) for b in bodies]
        out = self.trust.observe(stored)
        self.sent += out
        return out

    def stored(self, object_id: str) -> StoredObject:
        obj = self.store.get(object_id)
        assert obj is not None
        return obj


def make_world(url: str, *, ledger: bool = False, **config: Any) -> World:
    store = open_store(url, create=True)
    create_schema(store)  # every package's tables, as a node has them
    clock = Clock()
    led = Ledger(store.engine, "detente/test") if ledger else None
    engine = TrustEngine(store.engine, store, ledger=led,
                         config=TrustConfig(clock=clock, **config))
    return World(store, engine, clock, led)
