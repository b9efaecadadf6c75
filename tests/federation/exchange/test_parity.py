"""One intake path: the same cases through a TAXII push into our inbox, a pull from the
partner, and local ingest give identical outcomes.

Cases, each seen from node "us":
  echo          fr re-issues, under a new id, an indicator we released to it: flagged as
                an echo, stored, and never counted as fr's contribution or corroboration;
  corroborates  fr reports a claim ru reported before, independently: corroborated;
  confirmed     fr reports an indicator, then our own sensors sight it (local ingest):
                confirmed.
The local route is the analyst's own material: a sighting of ours confirms, and a report
of ours made first corroborates a partner's later one.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.federation.fed_fixtures import InProcess, signed_client

from detente.assembly import build_app
from detente.federation.exchange.intake import receive
from detente.federation.exchange.local import ingest_local
from detente.federation.exchange.pull import sync_partner
from detente.node import Node
from detente.release import release_pending
from detente.stix.vocab import TLP_2_0_IDS

T = "2024-05-01T10:00:00.000Z"


def _indicator(value: str, creator: str | None = None, when: str = T) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created": when, "modified": when, "pattern_type": "stix",
        "pattern": f"[ipv4-addr:value = '{value}']", "valid_from": when,
        "object_marking_refs": [TLP_2_0_IDS["clear"]],
    }
    if creator is not None:
        body["created_by_ref"] = creator
    return body


def _sighting(of: str) -> dict[str, Any]:
    return {"type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
            "created": T, "modified": T, "sighting_of_ref": of}


class World:
    """us, and fr/ru as real nodes that know us (so fr can release to us for a pull)."""

    def __init__(self, tmp: Path) -> None:
        self.us = Node.init(tmp / "us", "us", url="http://testserver", communities="c",
                            default_marking="clear")
        self.fr = Node.init(tmp / "fr", "fr", url="http://fr.test", communities="c",
                            default_marking="clear")
        self.ru = Node.init(tmp / "ru", "ru", url="http://ru.test", communities="c")
        for other in (self.fr, self.ru):
            self.us.partners.add(other.name, url=str(other.settings["url"]),
                                 public_key=other.public_key_b64, tier=2,
                                 identity_id=other.identity_id, communities=frozenset({"c"}))
        self.fr.partners.add("us", url="http://testserver", public_key=self.us.public_key_b64,
                             tier=2, identity_id=self.us.identity_id,
                             communities=frozenset({"c"}))

    def close(self) -> None:
        for n in (self.us, self.fr, self.ru):
            n.close()


def _push(w: World, objects: list[dict[str, Any]]) -> dict[str, Any]:
    # fr pushes its identity with its objects, as its own releases to us carry it
    with signed_client(w.us, w.fr) as client:
        r = client.post("/taxii2/api1/collections/" + _inbox_id(client) + "/objects/",
                        json={"objects": [w.fr.identity, *objects]},
                        headers={"Content-Type": "application/taxii+json;version=2.1"})
        assert r.status_code == 202, r.text
        status = r.json()
    return {"stored": status["success_count"], "failed": status["failure_count"]}


def _inbox_id(client: Any) -> str:
    cols = client.get("/taxii2/api1/collections/").json()["collections"]
    return next(c["id"] for c in cols if c.get("alias") == "inbox")


def _pull(w: World, objects: list[dict[str, Any]]) -> dict[str, Any]:
    # fr holds the objects as its own and releases them to us; us pulls them, signed
    ingest_local(w.fr, [(str(i), o) for i, o in enumerate(objects)])
    release_pending(w.fr.releaser, ["us"])  # fr's serve releaser; a TAXII read never does it
    summary = sync_partner(w.us, "fr", transport=InProcess(build_app(w.fr)))
    assert summary.ok, summary.error
    return {"stored": summary.new + summary.updated + summary.echoes,
            "failed": summary.rejected}


ROUTES: dict[str, Callable[[World, list[dict[str, Any]]], dict[str, Any]]] = {
    "push": _push, "pull": _pull}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    yield w
    w.close()


def _outcome(w: World, oid: str) -> dict[str, Any]:
    stored = w.us.store.get(oid)
    assert stored is not None
    counts = w.us.trust.summary("fr").counts
    return {"origin": stored.provenance.origin, "echo": bool(stored.provenance.flags.get("echo")),
            "assertions": counts.assertions, "echoes": counts.echoes,
            "corroborated": counts.corroborated, "confirmed": counts.confirmed}


def _case_echo(w: World, route: str) -> dict[str, Any]:
    ours = _indicator("203.0.113.7", w.us.identity_id)
    ingest_local(w.us, [("ours", ours)])
    release_pending(w.us.releaser, ["fr"])
    again = _indicator("203.0.113.7", w.fr.identity_id, "2024-05-02T10:00:00.000Z")
    ROUTES[route](w, [again])
    return _outcome(w, again["id"])


def _case_corroborates(w: World, route: str) -> dict[str, Any]:
    first = _indicator("198.51.100.9", w.ru.identity_id, "2024-04-30T10:00:00.000Z")
    receive(w.us, "ru", [first], None)
    report = _indicator("198.51.100.9", w.fr.identity_id)
    ROUTES[route](w, [report])
    return _outcome(w, report["id"])


def _case_confirmed(w: World, route: str) -> dict[str, Any]:
    report = _indicator("192.0.2.44", w.fr.identity_id)
    ROUTES[route](w, [report])
    ingest_local(w.us, [("sensor", _sighting(report["id"]))])
    return _outcome(w, report["id"])


# fr's assertions: its identity (an entity claim) and the case's report, echoes included
EXPECTED = {
    "echo": {"origin": "fr", "echo": True, "assertions": 2, "echoes": 1, "corroborated": 0,
             "confirmed": 0},
    "corroborates": {"origin": "fr", "echo": False, "assertions": 2, "echoes": 0,
                     "corroborated": 1, "confirmed": 0},
    "confirmed": {"origin": "fr", "echo": False, "assertions": 2, "echoes": 0,
                  "corroborated": 0, "confirmed": 1},
}
CASES = {"echo": _case_echo, "corroborates": _case_corroborates, "confirmed": _case_confirmed}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("case", sorted(CASES))
def test_push_and_pull_give_identical_outcomes(world: World, case: str, route: str) -> None:
    assert CASES[case](world, route) == EXPECTED[case]


def test_local_route_gives_trust_the_same_evidence(world: World) -> None:
    """Our own report made first corroborates fr's later one; our sighting confirms it."""
    ours = _indicator("192.0.2.99", world.us.identity_id, "2024-04-29T10:00:00.000Z")
    ingest_local(world.us, [("ours", ours)])
    report = _indicator("192.0.2.99", world.fr.identity_id)
    receive(world.us, "fr", [report], None)
    assert _outcome(world, report["id"])["corroborated"] == 1
    ingest_local(world.us, [("sensor", _sighting(report["id"]))])
    assert _outcome(world, report["id"])["confirmed"] == 1
