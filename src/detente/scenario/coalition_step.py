"""The scenario's coalition-deconfliction step: the U.S., France and Russia each hold, from
their own collection and held back (TLP:RED), the same Raqqa C2 address. One coalition run
at threshold 3, started by the U.S. over the signed channels, tells each of the three —
and nobody else — that all three hold it, and nothing else: the addresses two of them
share stay hidden (docs/deconfliction.md, Coalition deconfliction).

Hook: ``play`` in ``story.py`` calls :func:`coalition_deconflict` after
``coalition.credit_and_ledgers()`` (the last step, so no earlier figure moves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from detente.federation.exchange.local import ingest_local
from detente.federation.psi.coalition import coalition_runs, run_coalition
from detente.federation.psi.remote import ItemsSpec
from detente.scenario.world import stix_id, ts
from detente.stix.vocab import TLP_2_0_IDS

__all__ = ["RAQQA_C2", "CoalitionStep", "coalition_deconflict"]

#: outside the ranges the scenario's world draws from, so only these sightings hold it
RAQQA_C2 = "198.18.7.77"


@dataclass
class CoalitionStep:
    """What each node learned from the run (labels of its own items), and its ledger."""

    threshold: int = 3
    learned: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    recorded: dict[str, bool] = field(default_factory=dict)
    run_id: str = ""


def _sighting(creator: str, service: str, address: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": stix_id("indicator", creator, f"sighting-{address}"),
            "created_by_ref": creator, "created": ts(30), "modified": ts(30),
            "name": f"Raqqa C2 ({service} collection)",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[ipv4-addr:value = '{address}']", "pattern_type": "stix",
            "valid_from": ts(30), "labels": ["isis", "c2", "raqqa"],
            "object_marking_refs": [TLP_2_0_IDS["red"]]}


def coalition_deconflict(coalition: Any, address: str = RAQQA_C2, *,
                         plant: bool = True) -> CoalitionStep:
    """Run the step on a started :class:`~detente.scenario.story.Coalition`. ``plant``:
    first give each of the three its own TLP:RED sighting of ``address`` (the full story
    needs none: by its end all three hold the held-back Raqqa C2 of their own)."""
    nodes = coalition.nodes
    label = f"ipv4-addr:{address}"
    if plant:
        for name, service in (("us", "NSA"), ("fr", "DGSE"), ("ru", "GRU")):
            node = nodes[name]
            ingest_local(node, [("sighting", _sighting(node.identity_id, service, address))])
    us = nodes["us"]
    got = run_coalition(us, ["fr", "ru"], 3, ItemsSpec.observables(us))
    step = CoalitionStep(run_id=got.spec.run_id.hex(), sizes=dict(got.sizes))
    step.learned["us"] = list(got.matched)
    for name in ("fr", "ru"):
        latest = coalition_runs(nodes[name], 1)
        mine = latest[0] if latest and latest[0]["run_id"] == step.run_id else {}
        step.learned[name] = list(mine.get("matched", []))
    for name, node in nodes.items():
        step.recorded[name] = any(
            e.kind == "deconfliction" and step.run_id in (e.detail or "")
            and label not in (e.detail or "") for _i, e in node.ledger.entries())
    shared = [v for v in step.learned.values() if v == [label]]
    coalition.say(f"Coalition deconfliction, threshold 3, without a centre: the U.S., France "
                  f"and Russia ({', '.join(f'{n} {s}' for n, s in sorted(step.sizes.items()))}"
                  f" own observables) each learn that all three hold the Raqqa C2 "
                  f"{address} — {len(shared)} of 3 learned exactly that, and nothing else: "
                  f"the addresses two of them share stayed hidden, and no list left its node.")
    return step
