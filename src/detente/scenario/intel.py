"""What each service knows in the demo world, and how it marks it.

Ground truth: a set of ISIS command-and-control observables.  Each service knows a part
of it; the overlaps are what lets independent sources corroborate each other.  Russia also
holds one deceptive, high-importance report that nobody can corroborate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from detente.policy import releasability_marking
from detente.scenario.world import ACTORS, PLACES, World, stix_id, ts
from detente.stix.vocab import TLP_2_0_IDS

__all__ = ["Holdings", "build_holdings"]

GREEN, AMBER = TLP_2_0_IDS["green"], TLP_2_0_IDS["amber"]


def _operation(name: str, latitude: float, longitude: float, radius_m: float, start: str,
               end: str, contact: str) -> dict[str, Any]:
    """A planned operation as the deconfliction input file holds it (parsed and checked by
    :func:`detente.federation.psi.sets.parse_operations`)."""
    return {"name": name, "latitude": latitude, "longitude": longitude,
            "radius_m": radius_m, "start": start, "end": end, "contact": contact}


@dataclass
class Holdings:
    """One service's intelligence and plans."""

    node: str
    markings: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[list[dict[str, Any]]] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    #: targets this service declares (names) for the alignment check
    declared_targets: list[str] = field(default_factory=list)
    #: ids of notable objects, by role, for the story's assertions
    notable: dict[str, str] = field(default_factory=dict)


def _truth(world: World, n: int = 64) -> list[str]:
    seen: list[str] = []
    while len(seen) < n:
        value = world.ipv4() if len(seen) % 2 else world.domain()
        if value not in seen:
            seen.append(value)
    return seen


def _indicators(world: World, creator: str, values: list[str], day: int,
                markings: list[str], prefix: str, **kw: Any) -> list[dict[str, Any]]:
    return [world.indicator(creator, v, day=day + i % 5, name=f"{prefix} {v}",
                            markings=markings, **kw) for i, v in enumerate(values)]


def _us(world: World, ids: dict[str, str], truth: list[str]) -> Holdings:
    me = ids["us"]
    fr_only = releasability_marking(releasable_to=["fr"], created_by_ref=me)
    coalition = releasability_marking(releasable_to=["coalition"], min_tier=2,
                                      redact_below_tier={3: ["description"]},
                                      created_by_ref=me)
    no_onward = releasability_marking(releasable_to=["fr"], onward="denied",
                                      created_by_ref=me)
    h = Holdings("us", markings=[fr_only, coalition, no_onward])
    r1 = _indicators(world, me, truth[0:16], 3, [GREEN], "ISIS C2 (US)")
    r1 += _indicators(world, me, truth[16:24], 3, [AMBER, fr_only["id"]], "ISIS C2 (US/FR)")
    r1 += [world.threat_actor(me, a, day=2, markings=[GREEN]) for a in ACTORS]
    sensitive = _indicators(world, me, truth[24:46], 6, [AMBER, coalition["id"]],
                            "Raqqa relay", labels=["isis", "c2", "raqqa", "financing"],
                            description="Collected from a sensitive source in Raqqa: "
                                        "relay used by the external operations cell.")
    report: dict[str, Any] = {
        "type": "report", "spec_version": "2.1", "id": stix_id("report", me, "raqqa"),
        "created_by_ref": me, "created": ts(7), "modified": ts(7),
        "name": "Raqqa relay network supporting external operations",
        "description": "Relays identified in Raqqa province; organization-wide blocking "
                       "advised. Assessment based on multiple sources.",
        "published": ts(7), "report_types": ["threat-actor", "indicator"],
        "labels": ["isis", "raqqa", "c2", "external-operations"],
        "object_refs": [o["id"] for o in sensitive], "object_marking_refs":
            [AMBER, coalition["id"]],
    }
    secret = world.indicator(me, truth[46], day=8, name="Courier network node",
                             markings=[AMBER, no_onward["id"]])
    h.rounds = [r1, [*sensitive, report, secret]]
    h.notable = {"leaked_report": report["id"], "no_onward": secret["id"],
                 "coalition_marking": coalition["id"]}
    h.operations = [_operation("US strike package RAQ-7", 35.9528, 39.0079, 2_000,
                              "2025-11-20T10:00:00Z", "2025-11-20T14:00:00Z",
                              "CJTF-OIR fires cell")]
    h.declared_targets = ACTORS[:3]
    return h


def _fr(world: World, ids: dict[str, str], truth: list[str]) -> Holdings:
    me = ids["fr"]
    h = Holdings("fr")
    # round 1 overlaps U.S. holdings (12-16) and what Russia reports at the same time
    # (50-60); round 2 overlaps Russia's round-2 reporting (60-64)
    first = truth[12:16] + truth[50:60]
    h.rounds = [_indicators(world, me, first, 4, [GREEN], "C2 EI (FR)"),
                _indicators(world, me, truth[60:64], 8, [GREEN], "C2 EI (FR)")]
    h.operations = [_operation("Opération Chammal M-3", 36.3350, 43.1189, 3_000,
                              "2025-11-20T08:00:00Z", "2025-11-20T18:00:00Z",
                              "EMA CPCO")]
    h.declared_targets = [*ACTORS[:2], "Mosul media cell"]
    return h


def _ru(world: World, ids: dict[str, str], truth: list[str]) -> Holdings:
    me = ids["ru"]
    h = Holdings("ru")
    # honest reporting, made before anything of the same could have reached Russia:
    # U.S. holdings never released to Russia (16-24) and France's own reporting (50-64)
    first = _indicators(world, me, truth[16:22] + truth[50:56], 5, [GREEN], "C2 node (RU)")
    second = _indicators(world, me, truth[22:24] + truth[60:64], 9, [GREEN], "C2 node (RU)")
    # circular reporting: two U.S. indicators Russia received, re-issued as its own
    laundered = _indicators(world, me, truth[0:2], 9, [GREEN], "Confirmed C2 (RU)")
    actors = [world.threat_actor(me, a, day=1, markings=[GREEN])
              for a in [*ACTORS[:2], "Free Syrian Army"]]
    lie = world.indicator(me, "203.0.113.66", day=10, name="Imminent attack cell: staging "
                          "server", markings=[GREEN], confidence=95,
                          labels=["isis", "imminent", "attack-planning",
                                  "external-operations"],
                          description="Staging server of a cell preparing an attack in "
                                      "Europe within days. Act now.")
    h.rounds = [[*actors, *first], [*second, *laundered, lie]]
    h.notable = {"deception": lie["id"], "laundered": laundered[0]["id"]}
    h.operations = [_operation("Aerospace forces sortie 1120", 35.9650, 39.0200, 1_500,
                              "2025-11-20T12:00:00Z", "2025-11-20T16:00:00Z",
                              "Hmeimim coordination line")]
    h.declared_targets = [*ACTORS[:2], "Free Syrian Army"]
    return h


def build_holdings(identities: dict[str, str], seed: int = 2015) -> dict[str, Holdings]:
    """Every service's holdings, from the nodes' STIX identity ids."""
    world = World(seed=seed)
    truth = _truth(world)
    random.Random(seed).shuffle(truth)
    return {"us": _us(world, identities, truth), "fr": _fr(world, identities, truth),
            "ru": _ru(world, identities, truth)}


#: the agreed common-threat set for the alignment check
COMMON_THREATS = [*ACTORS, "Amaq news agency", *(f"{p[0]} wilayah" for p in PLACES[:3])]
