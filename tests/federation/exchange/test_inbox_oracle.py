"""The inbox is no oracle (issue 14, finding 1): for every object the pusher may not
see, the inbox answers exactly as for an id we do not hold — same status, same counts,
same message — stores nothing for it, and records the refused write for the operator.

Before: a push of a held-but-hidden id answered "<id> was created on this node", a new
version of another partner's hidden object named its creator, and a copy of a hidden
SCO answered "already stored" — 200 of 200 hidden ids confirmed."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detente.federation.exchange.intake import (
    PushBudgetExceeded,
    receive,
    refused_writes,
)
from detente.federation.exchange.local import ingest_local
from detente.federation.taxii.status import status_resource
from detente.node import Node
from detente.stix.vocab import TLP_2_0_IDS

SCO_NAMESPACE = uuid.UUID("00abedb4-aa42-466c-9c01-fed23315a9b7")  # STIX 2.1 §2.9
T0 = "2024-05-01T10:00:00.000Z"
T1 = "2024-05-02T10:00:00.000Z"


class World:
    def __init__(self, tmp: Path) -> None:
        self.us = Node.init(tmp / "us", "us", default_marking="clear")
        self.fr = Node.init(tmp / "fr", "fr")
        self.ru = Node.init(tmp / "ru", "ru")
        for other in (self.fr, self.ru):
            self.us.partners.add(other.name, url="http://127.0.0.1:9",
                                 public_key=other.public_key_b64, tier=2,
                                 identity_id=other.identity_id)

    def close(self) -> None:
        for n in (self.us, self.fr, self.ru):
            n.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("oracle"))
    yield w
    w.close()


def _ip(n: int, net: int = 10) -> dict[str, Any]:
    """An SCO: its id is deterministic (UUIDv5 of the value), so a pusher can guess it."""
    value = f"{net}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"
    name = '{"value":"' + value + '"}'
    return {"type": "ipv4-addr", "spec_version": "2.1", "value": value,
            "id": f"ipv4-addr--{uuid.uuid5(SCO_NAMESPACE, name)}"}


def _indicator(oid: str, when: str, creator: str | None, marking: str = "red",
               value: str = "203.0.113.9") -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": oid, "created": T0,
        "modified": when, "pattern_type": "stix", "valid_from": T0,
        "pattern": f"[ipv4-addr:value = '{value}']",
        "object_marking_refs": [TLP_2_0_IDS[marking]]}
    if creator is not None:
        body["created_by_ref"] = creator
    return body


def _seen(w: World, objects: list[dict[str, Any]]) -> list[Any]:
    """What the pusher sees of a push, with the ids taken out."""
    status = status_resource("s", receive(w.us, "fr", objects, None))
    for key in ("successes", "failures"):
        for d in status.get(key, []):
            d.pop("id")
            if "modified" not in objects[0]:  # an SCO's version is the time of receipt
                d.pop("version")
    status.pop("request_timestamp")
    return sorted(status.items())


# what we hold and hide from fr, by kind of attempt a hostile fr makes
def _hidden_case(w: World, kind: str, n: int) -> dict[str, Any]:
    oid = f"indicator--{uuid.uuid4()}"
    if kind == "ours":  # a TLP:RED object created here: fr pushes "its" copy
        ingest_local(w.us, [("x", _indicator(oid, T0, w.us.identity_id))])
        return _indicator(oid, T1, w.fr.identity_id)
    if kind == "ours-same-version":  # ...or exactly our version, unattributed
        ingest_local(w.us, [("x", _indicator(oid, T0, None))])
        return _indicator(oid, T0, None, value="198.51.100.1")
    if kind == "ru-new-version":  # ru's object, hidden from fr: a "new version" of it
        receive(w.us, "ru", [_indicator(oid, T0, w.ru.identity_id)], None)
        return _indicator(oid, T1, w.fr.identity_id)
    if kind == "ru-duplicate":  # ...or an exact copy of ru's version
        body = _indicator(oid, T0, w.ru.identity_id)
        receive(w.us, "ru", [body], None)
        return dict(body)
    ip = _ip(n)  # a TLP:RED address we hold: fr guesses its deterministic id
    ingest_local(w.us, [("x", {**ip, "object_marking_refs": [TLP_2_0_IDS["red"]]})])
    return {**ip, "object_marking_refs": [TLP_2_0_IDS["red"]]}


def _unknown_case(kind: str, n: int, w: World) -> dict[str, Any]:
    oid = f"indicator--{uuid.uuid4()}"
    if kind in ("ours", "ru-new-version"):
        return _indicator(oid, T1, w.fr.identity_id)
    if kind == "ours-same-version":
        return _indicator(oid, T0, None, value="198.51.100.1")
    if kind == "ru-duplicate":
        return _indicator(oid, T0, w.ru.identity_id)
    return {**_ip(uuid.uuid4().int, net=172), "object_marking_refs": [TLP_2_0_IDS["red"]]}


KINDS = ["ours", "ours-same-version", "ru-new-version", "ru-duplicate", "sco"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), n=st.integers(0, 10**6))
def test_a_hidden_id_answers_exactly_as_an_unknown_one(world: World, kind: str,
                                                       n: int) -> None:
    w = world
    hidden = _hidden_case(w, kind, n)
    unknown = _unknown_case(kind, n, w)
    held_before = w.us.store.get(hidden["id"])
    assert _seen(w, [hidden]) == _seen(w, [unknown])
    # nothing stored for the hidden one: what we held is what we hold
    after = w.us.store.get(hidden["id"])
    assert held_before is not None and after is not None and after.raw == held_before.raw
    assert after.provenance.origin == held_before.provenance.origin
    # the operator sees the refused write
    assert any(r.object_id == hidden["id"] for r in refused_writes(w.us, "fr"))


def test_a_visible_object_is_still_refused_honestly(tmp_path: Path) -> None:
    """What fr was released, it knows: refusals about it keep their reasons."""
    w = World(tmp_path)
    try:
        ours = _indicator(f"indicator--{uuid.uuid4()}", T0, w.us.identity_id, marking="clear")
        ingest_local(w.us, [("x", ours)])
        w.us.releaser.catch_up("fr")
        result = receive(w.us, "fr", [_indicator(ours["id"], T1, w.fr.identity_id)], None)
        assert result.concealed == 0
        [failure] = result.failures
        assert "created on this node" in (failure.message or "")
    finally:
        w.close()


def test_pushes_are_budgeted_per_partner(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETENTE_PUSH_OBJECTS_PER_DAY", "5")
    w = World(tmp_path)
    try:
        node = Node.open(w.us.home)
        batch = [_indicator(f"indicator--{uuid.uuid4()}", T0, w.fr.identity_id)
                 for _ in range(4)]
        assert len(receive(node, "fr", batch, None).stored) == 4
        with pytest.raises(PushBudgetExceeded) as refused:
            receive(node, "fr", batch[:2], None)
        assert refused.value.http_status == 429
        others = [_indicator(f"indicator--{uuid.uuid4()}", T0, w.ru.identity_id)
                  for _ in range(2)]
        assert len(receive(node, "ru", others, None).stored) == 2  # ru has its own
        node.close()
    finally:
        w.close()


def test_the_operator_lists_refused_writes(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    from tests.cli.helpers import run

    w = World(tmp_path)
    try:
        ours = _indicator(f"indicator--{uuid.uuid4()}", T0, w.us.identity_id)
        ingest_local(w.us, [("x", ours)])
        receive(w.us, "fr", [_indicator(ours["id"], T1, w.fr.identity_id)], None)
        home = str(w.us.home)
        w.close()
        r = run(capsys, "log", "refused", "--home", home, "--json")
        assert r.code == 0, r.err
        assert ours["id"] in r.out and "created on this node" in r.out
    finally:
        w.close()
