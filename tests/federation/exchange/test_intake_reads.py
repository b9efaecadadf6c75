"""What the intake path reads of the store for a page, and what it writes to the ledger.

A page costs one read of the ids it names (:meth:`Store.held_versions`: held at all, which
versions, from whom) for the refusals of step (2), the echo checks of step (3) and the
counts of step (4); the refusals, counts and receipts stay exactly what they were.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from tests.federation.fed_fixtures import indicator, put

from detente.federation.exchange import echo as echo_module
from detente.federation.exchange.echo import EchoIndex
from detente.federation.exchange.intake import Intake, Source
from detente.ledger import Entry
from detente.node import Node

LATER = "2024-05-01T00:00:00.000Z"


class Reads:
    """Counts the store reads by id that the intake path makes, and the release-record
    reads of the echo check."""

    def __init__(self, node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        store = node.store
        for name in ("held", "held_versions", "get"):
            monkeypatch.setattr(store, name, self._count(name, getattr(store, name)))
        monkeypatch.setattr(echo_module, "released_versions",
                            self._count("released_versions", echo_module.released_versions))

    def _count(self, name: str, inner: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return inner(*args, **kwargs)
        return wrapper


def test_a_partner_cannot_add_a_version_of_our_material_same_refusal(nodes: Any) -> None:
    us, _ = nodes
    ours = indicator()
    put(us, ours, release=False)
    theirs = indicator()
    with Intake(us, Source.partner(us, "fr")) as intake:
        result = intake.receive([dict(ours, modified=LATER, name="changed"), theirs])
    assert [d.id for d in result.successes] == [theirs["id"]]
    [failure] = result.failures
    assert (failure.id, failure.version, failure.position) == (ours["id"], LATER, "0")
    assert failure.message == (f"{ours['id']} was created on this node: partners cannot add "
                               "versions of it, nor correct it")
    assert failure.about_held
    assert result.new == 1 and result.rejected == 1
    assert [v.provenance.origin for v in us.store.versions(ours["id"])] == ["local"]


def test_a_feed_cannot_add_a_version_of_our_material_same_refusal(nodes: Any) -> None:
    us, _ = nodes
    ours = indicator()
    put(us, ours, release=False)
    with Intake(us, Source.feed("osint")) as intake:
        result = intake.receive([dict(ours, modified=LATER)])
    [failure] = result.failures
    assert failure.message == (f"{ours['id']} was created on this node: feeds cannot add "
                               "versions of it, nor correct it")
    assert result.stored == []


def test_a_page_reads_its_ids_once(nodes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    us, _ = nodes
    ours, relayed = indicator(), indicator()
    put(us, ours, release=False)
    put(us, relayed, origin="ru", release=False)
    fresh = [indicator() for _ in range(3)]
    reads = Reads(us, monkeypatch)
    with Intake(us, Source.partner(us, "fr")) as intake:
        result = intake.receive([dict(ours, modified=LATER), dict(relayed, modified=LATER),
                                 *fresh, {"not": "stix"}])
    # one read by id for (2)-(4); no release records read for ids that are not ours
    assert reads.calls == ["held_versions"]
    assert (result.new, result.updated, result.rejected) == (3, 1, 2)
    refused = {d.position: d.message or "" for d in result.failures}
    assert "was created on this node" in refused["0"] and "type" in refused["5"]


def test_a_feed_page_relaying_a_partners_objects_reads_its_ids_once(
        nodes: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A feed may not add versions to a partner's object (its answers are unsigned); the
    versions held are known from the page's one read, not read again object by object."""
    us, others = nodes
    fr = others["fr"].identity_id
    held = [indicator(created_by_ref=fr) for _ in range(3)]
    put(us, *held, origin="fr", release=False)
    page = [*held, *(dict(o, modified=LATER) for o in held), indicator(created_by_ref=fr)]
    reads = Reads(us, monkeypatch)
    with Intake(us, Source.feed("osint")) as intake:
        result = intake.receive(page)
    assert reads.calls == ["held_versions"]
    refused = {d.position: d.message or "" for d in result.failures}
    assert sorted(refused) == ["3", "4", "5"]
    for i in ("3", "4", "5"):
        oid = page[int(i)]["id"]
        assert refused[i] == (f"{oid} is created by partner fr: only its own signed answers "
                              "add versions of it, not a feed")
    # the versions held: duplicates by another route; the partner's new id: stored
    assert (result.duplicates, result.new) == (3, 1)
    assert [o.provenance.origin for o in us.store.versions(held[0]["id"])] == ["fr"]


def test_every_receipt_hashes_the_stored_bytes(nodes: Any) -> None:
    us, _ = nodes
    page = [indicator(), indicator(marking=None), indicator(labels=["ü", "\u2028"])]
    size = us.ledger.size()
    with Intake(us, Source.partner(us, "fr")) as intake:
        result = intake.receive(page, signature="sig")
    entries = [us.ledger.entry(i) for i in range(size, us.ledger.size())]
    assert [(e.kind, e.partner, e.object_id) for e in entries] == [
        ("receipt", "fr", o["id"]) for o in page]
    for entry, received in zip(entries, result.stored, strict=True):
        stored = us.store.get(received.object.id, received.object.version)
        assert stored is not None
        assert entry.view_hash == hashlib.sha256(stored.raw).hexdigest()
        assert entry.object_version == stored.version
        # the entry's bytes are those of the one constructor, field by field
        assert entry.canonical == Entry(
            kind="receipt", time=entry.time, partner="fr", object_id=stored.id,
            object_version=stored.version, view_hash=entry.view_hash).canonical


def _echo_index() -> EchoIndex:
    index = EchoIndex("fr")
    index.released.add(("indicator--a", "2025-03-01T10:00:00.000000000Z"))
    return index


def test_only_our_own_material_is_looked_up_as_an_exact_echo() -> None:
    body = {"type": "indicator", "id": "indicator--a", "modified": "2025-03-01T10:00:00Z",
            "pattern": "[x:y = 'z']"}
    assert _echo_index().classify([body])[0].how == "id"
    assert _echo_index().classify([body], local={"indicator--a"})[0].how == "id"
    # an id the store does not hold as ours: not looked up, not an exact echo
    assert _echo_index().classify([body], local=set()) == {}
