"""Correlation (other reports sharing an object's observables) and the report counts'
partition, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.trust.trust_helpers import World, actor, indicator, make_world, sighting

from detente.trust.correlation import observable_label


@pytest.fixture
def world(store_url: str) -> Iterator[World]:
    w = make_world(store_url)
    yield w
    w.store.close()


def test_correlation_finds_every_other_report_of_a_shared_observable(world: World) -> None:
    ru = indicator("198.51.100.7")
    fr = indicator("198.51.100.7/32")  # normalised: the same address
    ours = {"type": "ipv4-addr", "spec_version": "2.1",
            "id": "ipv4-addr--5b4d5d8c-1f00-5b8e-9f6a-6f1c2f7f1d2a", "value": "198.51.100.7"}
    other = indicator("203.0.113.9")
    world.send("ru", ru)
    world.send("fr", fr, other)
    world.send("local", ours)
    claims, found, cut = world.trust.correlations(ru["id"])
    assert [observable_label(c) for c in claims] == ["ipv4-addr 198.51.100.7"]
    assert [(c.partner, c.object_id) for c in found] == [("fr", fr["id"]),
                                                         ("local", ours["id"])]
    assert not cut and all(c.observable == "ipv4-addr 198.51.100.7" for c in found)
    # an object that makes no observable claim correlates with nothing
    apt = actor("APT 28")
    world.send("ru", apt)
    assert world.trust.correlations(apt["id"]) == ([], [], False)
    # an object never observed by trust still correlates, from its stored body
    late = indicator("198.51.100.7")
    from detente.stix.validate import validate
    from detente.store import Provenance

    world.store.put_many([validate(late)], Provenance(origin="de"))
    assert {c.object_id for c in world.trust.correlations(late["id"])[1]} == {
        ru["id"], fr["id"], ours["id"]}


def test_report_counts_partition_the_assertions(world: World) -> None:
    reports = [indicator(f"192.0.2.{i}") for i in range(1, 7)]
    world.send("ru", *reports)
    world.send("fr", indicator("192.0.2.1"))  # corroborates one
    world.send("local", sighting(reports[1]["id"]))  # confirms one
    world.send("local", sighting(reports[2]["id"], false_positive=True))  # refutes one
    world.clock.advance(1)
    revoked = {**reports[5], "modified": "2024-06-02T00:00:00.000Z", "revoked": True}
    world.send("ru", revoked)  # revoked: not weighed
    c = world.trust.summary("ru").counts
    assert (c.confirmed, c.refuted, c.not_counted) == (1, 1, 1)
    assert c.confirmed + c.refuted + c.expired + c.awaiting + c.not_counted == c.assertions
    assert c.assertions == 6 and c.awaiting == 3 and c.corroborated >= 1
