"""The scenario's coalition-deconfliction step: the U.S., France and Russia each hold, from
their own collection and held back (TLP:RED), the same Raqqa C2 address. One coalition run
at threshold 3, started by the U.S. over the signed channels, tells each of the three —
and nobody else — that all three hold it, and nothing else: the addresses two of them
share stay hidden (docs/deconfliction.md, Coalition deconfliction).

At threshold 3 the run needs a reconstructor that holds no items (one that held items could
count the holders of its own items below the threshold), and the demo's three nodes all
hold some. So the step adds the smallest honest thing: a fourth node, ``desk`` — a
coalition deconfliction desk with no intelligence of its own, known to the three as a
partner on probation in no community (nothing of theirs is releasable to it) — which takes
part in the run with no set, reconstructs, and records only that it did.

Hook: ``play`` in ``story.py`` calls :func:`coalition_deconflict` after
``coalition.credit_and_ledgers()`` (the last step, so no earlier figure moves).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from detente.federation.exchange.local import ingest_local
from detente.federation.psi.coalition import coalition_runs, run_coalition
from detente.federation.psi.remote import ItemsSpec
from detente.node import Node
from detente.scenario.live import listening_socket, serve_in_thread, url_of
from detente.scenario.world import stix_id, ts
from detente.stix.vocab import TLP_2_0_IDS

__all__ = ["RAQQA_C2", "RECONSTRUCTOR", "CoalitionStep", "coalition_deconflict"]

#: outside the ranges the scenario's world draws from, so only these sightings hold it
RAQQA_C2 = "198.18.7.77"
#: the fourth node: reconstructs the run, holds no items in it
RECONSTRUCTOR = "desk"
PARTICIPANTS = ("us", "fr", "ru")


@dataclass
class CoalitionStep:
    """What each node learned from the run (labels of its own items), and its ledger."""

    threshold: int = 3
    learned: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    recorded: dict[str, bool] = field(default_factory=dict)
    run_id: str = ""
    #: the reconstructor's ledger entry for the run (never items)
    reconstructor: dict[str, Any] = field(default_factory=dict)


def _sighting(creator: str, service: str, address: str) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": stix_id("indicator", creator, f"sighting-{address}"),
            "created_by_ref": creator, "created": ts(30), "modified": ts(30),
            "name": f"Raqqa C2 ({service} collection)",
            "indicator_types": ["malicious-activity"],
            "pattern": f"[ipv4-addr:value = '{address}']", "pattern_type": "stix",
            "valid_from": ts(30), "labels": ["isis", "c2", "raqqa"],
            "object_marking_refs": [TLP_2_0_IDS["red"]]}


def add_reconstructor(coalition: Any) -> Node:
    """Start ``desk`` beside the three nodes (once): it and they know each other as
    partners; the three give it tier 1 and no community, so none of their material is
    releasable to it. Its server stops with the coalition's."""
    if RECONSTRUCTOR in coalition.nodes:
        node: Node = coalition.nodes[RECONSTRUCTOR]
        return node
    sock = listening_socket()
    desk = Node.init(coalition.out / RECONSTRUCTOR, RECONSTRUCTOR, url=url_of(sock))
    for name in PARTICIPANTS:
        peer = coalition.nodes[name]
        desk.partners.add(name, url=str(peer.settings["url"]), public_key=peer.public_key_b64,
                          tier=1, identity_id=peer.identity_id)
        peer.partners.add(RECONSTRUCTOR, url=url_of(sock), public_key=desk.public_key_b64,
                          tier=1, identity_id=desk.identity_id)
    coalition.nodes[RECONSTRUCTOR] = desk
    coalition.servers[RECONSTRUCTOR] = serve_in_thread(desk, sock)
    return desk


def _entry_of(node: Node, run_id: str) -> dict[str, Any]:
    for _i, e in node.ledger.entries():
        if e.kind == "deconfliction" and run_id in (e.detail or ""):
            doc: dict[str, Any] = orjson.loads(e.detail or "{}")
            return doc
    return {}


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
    desk = add_reconstructor(coalition)
    us = nodes["us"]
    got = run_coalition(us, ["fr", "ru"], 3, ItemsSpec.observables(us),
                        reconstructor=RECONSTRUCTOR)
    step = CoalitionStep(run_id=got.spec.run_id.hex(), sizes=dict(got.sizes))
    step.reconstructor = _entry_of(desk, step.run_id)
    step.learned["us"] = list(got.matched)
    for name in ("fr", "ru"):
        latest = coalition_runs(nodes[name], 1)
        mine = latest[0] if latest and latest[0]["run_id"] == step.run_id else {}
        step.learned[name] = list(mine.get("matched", []))
    for name, node in nodes.items():
        step.recorded[name] = any(
            e.kind == "deconfliction" and step.run_id in (e.detail or "")
            and address not in (e.detail or "") for _i, e in node.ledger.entries())
    shared = [v for v in step.learned.values() if v == [label]]
    groups = step.reconstructor.get("groups")
    coalition.say(f"Coalition deconfliction, threshold 3, without a centre: the U.S., France "
                  f"and Russia ({', '.join(f'{n} {s}' for n, s in sorted(step.sizes.items()))}"
                  f" own observables) each learn that all three hold the Raqqa C2 "
                  f"{address} — {len(shared)} of 3 learned exactly that, and nothing else: "
                  f"the addresses two of them share stayed hidden, and no list left its node. "
                  f"A fourth node, {RECONSTRUCTOR}, holding no items, reconstructed the sealed "
                  f"shares: it learned that {groups} item(s) passed the threshold, not which.")
    return step
