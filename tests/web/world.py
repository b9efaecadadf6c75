"""A small node for UI tests: partners fr, ru and de, marked objects, a released report,
something received from fr, and an operator account."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path
from typing import Any

import orjson
from nacl.signing import SigningKey

from detente.node import Node
from detente.policy import releasability_marking
from detente.release import read_releases
from detente.scenario.world import World
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query
from detente.web.operators import OperatorBook

OPERATOR, PASSWORD = "alice", "correct horse battery"
XSS = "<script>alert('owned')</script>"
PARTNERS = {"fr": 3, "ru": 1, "de": 2}


def _ts(day: int) -> str:
    return f"2025-11-{day:02d}T00:00:00.000Z"


def _indicator(node: Node, name: str, ip: str, markings: list[str]) -> dict[str, Any]:
    return {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created_by_ref": node.identity_id, "created": _ts(5), "modified": _ts(5),
        "name": name, "pattern_type": "stix", "valid_from": _ts(5),
        "pattern": f"[ipv4-addr:value = '{ip}']", "object_marking_refs": markings,
        "description": "Command server used by the Raqqa cell; block at the perimeter.",
    }


def build_node(home: Path, *, partners: bool = True, content: bool = True) -> Node:
    node = Node.init(home, "us", communities="coalition")
    OperatorBook(node.store.engine).add(OPERATOR, PASSWORD)
    if partners:
        for name, tier in PARTNERS.items():
            key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
            node.partners.add(name, url=f"https://{name}.example", public_key=key,
                              communities=frozenset({"coalition"} if name != "ru" else ()),
                              tier=tier)
    if content:
        _content(node)
    return node


def _content(node: Node) -> None:
    world = World(seed=11)
    green, amber = [TLP_2_0_IDS["green"]], [TLP_2_0_IDS["amber"]]
    to_fr = releasability_marking(releasable_to=["fr"], min_tier=2)
    objs = [world.indicator(node.identity_id, world.ipv4(), day=3, name=f"C2 relay {i}",
                            markings=green, labels=["isis", "c2", "syria", "raqqa"],
                            description="Observed beaconing to a command server in Raqqa "
                                        "in November; organization-wide block advised.")
            for i in range(22)]
    objs.append(world.threat_actor(node.identity_id, "Amaq media office", day=2,
                                   markings=green))
    report = {
        "type": "report", "spec_version": "2.1", "id": f"report--{uuid.uuid4()}",
        "created_by_ref": node.identity_id, "created": _ts(4), "modified": _ts(4),
        "name": "Raqqa C2 infrastructure", "published": _ts(4),
        "report_types": ["threat-actor"], "object_refs": [o["id"] for o in objs],
        "object_marking_refs": green, "labels": ["isis", "syria", "c2"],
    }
    special = [_indicator(node, "Safe house uplink (France only)", "198.51.100.7",
                          [to_fr["id"], *amber]),
               _indicator(node, XSS, "203.0.113.9", green)]
    node.store.put_many([validate(o) for o in [to_fr, *objs, report, *special]],
                        Provenance())
    received = _indicator(node, f"Relay seen by fr {XSS}", "192.0.2.44", green)
    received["created_by_ref"] = f"identity--{uuid.uuid4()}"
    node.store.put_many([validate(received)], Provenance(origin="fr"))
    _related(node, special[0]["id"], objs[-1]["id"])
    for name in PARTNERS:
        node.releaser.catch_up(name)


def _related(node: Node, uplink: str, actor: str) -> None:
    """Through the intake path (so earned trust sees them): a relationship from the uplink
    to the actor, our own and Russia's reports of the uplink's address, a TLP:CLEAR one."""
    from detente.federation.exchange.intake import Intake, Source
    from detente.federation.exchange.local import ingest_local

    green = [TLP_2_0_IDS["green"]]
    rel = {"type": "relationship", "spec_version": "2.1", "id": f"relationship--{uuid.uuid4()}",
           "created_by_ref": node.identity_id, "created": _ts(6), "modified": _ts(6),
           "relationship_type": "indicates", "source_ref": uplink, "target_ref": actor,
           "object_marking_refs": green}
    ours = _indicator(node, "Uplink watch (ours)", "198.51.100.7/32", green)
    public = _indicator(node, "Public scanner", "192.0.2.200", [TLP_2_0_IDS["clear"]])
    summary = ingest_local(node, [("rel", rel), ("ours", ours), ("public", public)])
    assert not summary.rejected, summary.rejected
    theirs = _indicator(node, "Uplink reported by ru", "198.51.100.7", green)
    theirs["created_by_ref"] = f"identity--{uuid.uuid4()}"
    with Intake(node, Source.partner(node, "ru")) as intake:
        result = intake.receive([theirs])
    assert not result.failures, result.failures


def find(node: Node, name: str) -> str:
    for obj in node.store.iter_all(Query()):
        if obj.body.get("name") == name:
            return obj.id
    raise LookupError(name)


def leaked_views(node: Node, partner: str) -> bytes:
    page = read_releases(node.store.engine, partner,
                         Query(types=("indicator", "report", "threat-actor")))
    return orjson.dumps([orjson.loads(v.view) for v in page.views])


CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)
