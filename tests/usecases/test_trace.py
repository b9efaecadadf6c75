"""`detente trace` end to end on one node: releases → leak → the leaker named, with proofs."""

from __future__ import annotations

import base64
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run

from detente.ledger import verify_inclusion
from detente.ledger.hashing import leaf_hash
from detente.node import Node
from detente.release import read_releases
from detente.scenario.world import World
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query
from detente.usecases.trace import trace_artifact

PARTNERS = ["fr", "ru", "de", "uk"]


@pytest.fixture
def node(tmp_path: Path, store_url: str) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us", communities="coalition", store_url=store_url)
    # a fixed leak-attribution secret: which positions a 40% slice happens to keep is
    # then the same on every run (a random one makes the partial-leak case a coin toss)
    fd = os.open(tmp_path / "us" / "fingerprint.key", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o600)
    os.write(fd, bytes(range(32)))
    os.close(fd)
    for name in PARTNERS:
        key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
        n.partners.add(name, url="http://127.0.0.1:9", public_key=key,
                       communities=frozenset({"coalition"}), tier=3)
    world = World(seed=11)
    # a fixed author too: the node's own identity id is random, and with it the object
    # ids, so which positions the slice keeps would again be a coin toss
    author = "identity--5d3c2b1a-0f9e-4d8c-b7a6-958473625140"
    green = [TLP_2_0_IDS["green"]]
    objs = [world.indicator(author, world.ipv4(), day=3, name=f"C2 relay {i}",
                            markings=green, labels=["isis", "c2", "syria", "raqqa"],
                            description="Observed beaconing to a command server in Raqqa "
                                        "in November; organization-wide block advised.")
            for i in range(22)]
    objs += [world.threat_actor(author, "Amaq media office", day=2, markings=green)]
    report = {
        "type": "report", "spec_version": "2.1",
        "id": "report--8c1e6d6e-5e0b-4b8e-9d7c-2f0a4f6b1a11",
        "created_by_ref": author, "created": "2025-11-04T00:00:00.000Z",
        "modified": "2025-11-04T00:00:00.000Z", "name": "Raqqa C2 infrastructure",
        "published": "2025-11-04T00:00:00.000Z", "report_types": ["threat-actor"],
        "object_refs": [o["id"] for o in objs], "object_marking_refs": green,
        "labels": ["isis", "syria", "c2", "infrastructure"],
    }
    n.store.put_many([validate(o) for o in [*objs, report]], Provenance())
    for name in PARTNERS:
        n.releaser.catch_up(name)
    yield n
    n.close()


def _leak(node: Node, partner: str) -> list[dict[str, object]]:
    page = read_releases(node.store.engine, partner, Query(types=("indicator", "report",
                                                                   "threat-actor")))
    return [orjson.loads(v.view) for v in page.views]


def test_whole_leaked_view_names_the_leaker_with_ledger_proofs(node: Node) -> None:
    bundle = {"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": _leak(node, "ru")}
    outcome = trace_artifact(node, orjson.dumps(bundle))
    assert [s.partner for s in outcome.report.accused] == ["ru"]
    assert outcome.proofs and all(p["partner"] == "ru" for p in outcome.proofs)
    size, root = node.ledger.size(), node.ledger.root()
    for p in outcome.proofs:
        entry = node.ledger.entry(p["ledger_index"])
        assert entry.kind == "release" and entry.partner == "ru"
        proof = [bytes.fromhex(h) for h in p["proof"]]
        verify_inclusion(leaf_hash(entry.canonical), p["ledger_index"], p["tree_size"],
                         proof, node.ledger.root(p["tree_size"]))
    assert size >= p["tree_size"] and root
    assert node.ledger.entry(outcome.ledger_index or 0).kind == "trace"


def test_partial_reserialised_leak_still_names_the_leaker(node: Node) -> None:
    views = _leak(node, "de")
    random.Random(3).shuffle(views)
    part = views[: max(8, len(views) * 4 // 10)]
    text = "\n".join(orjson.dumps(v, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode()
                     for v in part)
    outcome = trace_artifact(node, ("[" + ",".join(orjson.dumps(
        v, option=orjson.OPT_SORT_KEYS).decode() for v in part) + "]").encode())
    assert [s.partner for s in outcome.report.accused] == ["de"]
    assert text  # the indented form is what an analyst would paste; JSON form traced above


def test_innocent_artifact_accuses_nobody(node: Node) -> None:
    world = World(seed=99)
    stranger = [world.indicator("identity--" + str(uuid.uuid4()), world.ipv4(), day=5,
                                name="unrelated", markings=[]) for _ in range(10)]
    outcome = trace_artifact(node, orjson.dumps(stranger))
    assert outcome.report.accused == ()
    assert outcome.report.verdict in ("never-released", "no-accusation")


def test_trace_cli_json(node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    leak = tmp_path / "leak.json"
    leak.write_bytes(orjson.dumps(_leak(node, "uk")))
    r = run(capsys, "trace", "--home", str(node.home), str(leak), "--json")
    assert r.code == 0, r.err
    doc = orjson.loads(r.out)
    assert [s["partner"] for s in doc["suspects"] if s["accused"]] == ["uk"]
    assert doc["ledger_proofs"]
    r = run(capsys, "trace", "--home", str(node.home), str(leak))
    assert "ACCUSED" in r.out and "uk" in r.out
    r = run(capsys, "trace", "--home", str(node.home), str(tmp_path / "missing.json"))
    assert r.code == 2 and "no such file" in r.err
