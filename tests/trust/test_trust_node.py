"""One node end to end: reports from two partners, stored with provenance, raise a
partner's earned tier, and the views its new tier allows are released at once; and the
CLI an analyst uses for it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from nacl.signing import SigningKey
from tests.cli.helpers import run
from tests.trust.trust_helpers import DAY_US, indicator, sighting

from detente.ledger import Entry
from detente.node import Node
from detente.policy import releasability_marking
from detente.release import read_releases
from detente.stix.timestamps import now_micros
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query
from detente.trust import TrustError

DAY = DAY_US


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


@pytest.fixture
def node(tmp_path: Path, store_url: str) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us", store_url=store_url, communities="coalition")
    n.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(), tier=3)
    n.partners.add("ru", url="http://127.0.0.1:9002", public_key=_key(), tier=1)
    yield n
    n.close()


def _receive(node: Node, origin: str, body: dict[str, Any], at: int) -> None:
    node.store.put_many([validate(body)], Provenance(origin=origin, received_at=at))
    stored = node.store.get(body["id"])
    assert stored is not None
    node.trust.observe([stored])


def _ru_views(node: Node) -> set[str]:
    node.releaser.catch_up("ru")
    page = read_releases(node.store.engine, "ru", Query(versions=("all",)))
    return {v.id for v in page.views}


def _earn(node: Node, reports: int = 12) -> list[str]:
    """ru reports first, fr corroborates an hour later, our sensors confirm."""
    start = now_micros() - (reports + 2) * DAY
    ids = []
    for i in range(reports):
        at = start + i * DAY
        ours = indicator(f"203.0.113.{i}")
        _receive(node, "ru", ours, at)
        _receive(node, "fr", indicator(f"203.0.113.{i}"), at + 3_600_000_000)
        node.store.put_many([validate(sighting(ours["id"]))], Provenance())
        node.trust.observe(node.store.list(Query(types=("sighting",), ids=())).objects[-1:])
        ids.append(ours["id"])
    return ids


def test_corroborated_contributions_raise_the_tier_and_views_flow(node: Node) -> None:
    rel = releasability_marking(releasable_to=["ru"], min_tier=2,
                                created_by_ref=node.identity_id)
    secret = indicator("198.51.100.200", object_marking_refs=[TLP_2_0_IDS["amber"], rel["id"]])
    node.store.put_many([validate(rel), validate(secret)], Provenance())
    assert secret["id"] not in _ru_views(node)
    _earn(node)
    # the tier change reached the release path by itself (the node's one wiring)
    applied = [(c.partner, c.old, c.new) for c, _ in node.applied_tier_changes]
    assert applied == [("ru", 1, 2)]
    assert node.applied_tier_changes[0][1].released >= 1
    assert node.partners.tier_of(node.partners.get("ru")) == 2
    assert secret["id"] in _ru_views(node)
    with pytest.raises(TrustError, match="delivers tier changes"):
        node.trust.tier_changes()  # nobody can drain a change meant for the release path
    assert node.trust.source_grade("ru") in "AB"
    assert node.trust.credit("ru").first_reports == 12
    assert node.trust.credit("fr").first_reports == 0
    kinds = [e.kind for _, e in node.ledger.entries()]
    assert "tier-change" in kinds and kinds.count("evidence") >= 12


@pytest.fixture
def sqlite_node(tmp_path: Path) -> Iterator[Node]:
    """The CLI opens the node itself per command (SQLite: no server connections to leak)."""
    n = Node.init(tmp_path / "us", "us", communities="coalition")
    n.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(), tier=3)
    n.partners.add("ru", url="http://127.0.0.1:9002", public_key=_key(), tier=1)
    yield n
    n.close()


def test_analyst_cli_grade_refute_cap_and_partner_views(
    sqlite_node: Node, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = sqlite_node
    home = str(tmp_path / "us")
    ids = _earn(node, 10)
    lie = indicator("198.51.100.66", labels=["attribution"], confidence=90)
    _receive(node, "ru", lie, now_micros())
    node.close()

    r = run(capsys, "grade", lie["id"], "--home", home, "--json")
    assert r.code == 0, r.err
    g = orjson.loads(r.out)
    assert g["credibility"] == 3 and g["confidence"] == 50
    assert any("below tier 3" in x or "high-importance" in x for x in g["reasons"])

    r = run(capsys, "evidence", "refute", lie["id"], "--home", home, "--why", "false flag")
    assert r.code == 0, r.err
    assert "ru: tier 2 -> 1" in r.out
    r = run(capsys, "evidence", "confirm", ids[0], "--home", home, "--why", "")
    assert r.code != 0 and "reason" in r.err and "Traceback" not in r.err
    r = run(capsys, "review", "list", "--home", home)
    assert "ru" in r.out and "refuted" in r.out

    r = run(capsys, "partner", "cap", "fr", "--max-tier", "2", "--why", "onward leak suspected",
            "--home", home)
    assert r.code == 0, r.err
    r = run(capsys, "partner", "floor", "ru", "--min-tier", "2", "--why", "treaty partner",
            "--home", home)
    assert r.code == 0, r.err
    r = run(capsys, "partner", "list", "--home", home, "--json")
    rows = {x["name"]: x for x in orjson.loads(r.out)}
    assert rows["fr"]["tier"] == 2 and rows["fr"]["max_tier"] == 2
    assert rows["ru"]["tier"] == 2 and rows["ru"]["earned_tier"] == 1
    assert rows["ru"]["evidence"]["refuted"] == 1 and rows["ru"]["evidence"]["confirmed"] >= 10
    assert rows["ru"]["grade"] in "ABCDEF" and 0 <= rows["ru"]["reliability"]["mean"] <= 1
    assert rows["ru"]["credit"]["first_reports"] == 11
    r = run(capsys, "partner", "list", "--home", home)
    assert r.code == 0 and "ru" in r.out
    r = run(capsys, "partner", "show", "ru", "--home", home, "--json")
    history = orjson.loads(r.out)["history"]
    assert {"refuted", "review", "tier-change"} <= {h["kind"] for h in history}
    r = run(capsys, "partner", "show", "ru", "--home", home)
    assert "history" in r.out
    again = Node.open(Path(home))
    caps = [e for _, e in again.ledger.entries() if e.kind == "cap"]
    again.close()
    assert [e.partner for e in caps] == ["fr", "ru"] and all(isinstance(e, Entry) for e in caps)


def test_a_second_process_sees_new_evidence_at_once(node: Node) -> None:
    """Another process on the same home (a second ``serve`` worker, the CLI) caches the
    trust model too; evidence stored by this one makes that cache stale (issue 13 item 8)."""
    other = Node.open(node.home)
    try:
        before = other.trust.reliability("ru")
        _earn(node)
        after = node.trust.reliability("ru")
        assert abs(after.mean - before.mean) > 0.05
        seen = other.trust.reliability("ru")  # not its cached model of before
        assert seen.mean == pytest.approx(after.mean, abs=1e-6)
        assert seen.n == pytest.approx(after.n, rel=1e-6)
    finally:
        other.close()
