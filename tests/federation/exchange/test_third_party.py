"""Third-party material keeps its creator, and corrections without a new version.

ATT&CK loaded with ``detente ingest`` is MITRE's, not ours: stored as a local import
(origin ``local:import``), so a partner holding ATT&CK too sends duplicates, not
rejections, and its newer versions are accepted by the usual versioning rules.  MITRE
changes objects without bumping ``modified`` (ICS 17.1 → 18.1: 70 attack-patterns):
``ingest --accept-corrections`` replaces them, records each in the ledger and re-cuts the
views already released.  ATT&CK ICS 18.1 is not available offline here: the 18.1 case is
built from 17.1 by changing the content of 70 attack-patterns without bumping
``modified`` — exactly the change 18.1 made.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.cli.helpers import run
from tests.federation.exchange.cluster import Cluster, cluster, indicator

from detente.federation.exchange.local import ingest_local
from detente.federation.exchange.pull import sync_partner
from detente.node import Node
from detente.release import iter_release_records, release_pending
from detente.settings import Settings
from detente.store import Query
from detente.store.base import IMPORTED, LOCAL

SLICE = Path(__file__).resolve().parents[2] / "data" / "attack-ics-slice.json"
#: the whole ATT&CK for ICS 17.1 bundle, in ../shared/data beside the checkout (CI has it)
ATTACK_ICS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / \
    "attack-ics-17.1.json"
MITRE = "identity--c78cb6e5-0c4b-4611-8297-d1b8b55e40b5"


def objects(path: Path = SLICE) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["objects"])


def ingest(node: Node, objs: list[dict[str, Any]], **kw: Any) -> Any:
    return ingest_local(node, [(str(i), o) for i, o in enumerate(objs)], **kw)


def origins(node: Node, ids: set[str]) -> dict[str, str]:
    return {o.id: o.provenance.origin for o in node.store.iter_all(Query(versions=("all",)))
            if o.id in ids}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    """``us`` and ``fr``, partners of each other, both serving."""
    with cluster(tmp_path) as c:
        for name in ("us", "fr"):
            node = c.add(name, "coalition")
            # ATT&CK carries no TLP: a node that relays it says TLP:CLEAR by default
            node.settings = Settings({**node.settings, "default_marking": "clear"})
        c.link("us", "fr", tier=3, communities=["coalition"])
        c.link("fr", "us", tier=3, communities=["coalition"])
        c.start("us")
        c.start("fr")
        yield c


def test_local_import_keeps_its_creator_and_is_not_ours(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "us", "us")
    try:
        objs = objects()
        s = ingest(node, objs)
        assert (s.stored, len(s.rejected)) == (len(objs), 0)
        got = origins(node, {o["id"] for o in objs})
        assert set(got.values()) == {IMPORTED}  # MITRE's identity too: it names the creator
        mitre = node.store.get(MITRE)
        assert mitre is not None and mitre.provenance.origin == IMPORTED
        some = node.store.get(objs[0]["id"])
        assert some is not None and some.created_by_ref == objs[0].get("created_by_ref")
        # material typed in by this node's operator stays ours
        ours = {"type": "note", "spec_version": "2.1",
                "id": "note--0f1a9c3e-7bd5-4c8a-9e2c-7a6f1d2b3c4d",
                "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
                "content": "ours", "object_refs": [objs[0]["id"]]}
        mine = {**ours, "id": "note--1f1a9c3e-7bd5-4c8a-9e2c-7a6f1d2b3c4d",
                "created_by_ref": node.identity_id}
        ingest(node, [ours, mine])
        assert origins(node, {ours["id"], mine["id"]}) == {ours["id"]: LOCAL, mine["id"]: LOCAL}
    finally:
        node.close()


def test_the_object_page_says_local_import(tmp_path: Path) -> None:
    from detente.web.objects import object_page

    node = Node.init(tmp_path / "us", "us")
    try:
        objs = objects()
        ingest(node, objs)
        page = object_page(node, objs[0]["id"])
        assert page["origin"] == IMPORTED
        from jinja2 import Environment, PackageLoader

        env = Environment(loader=PackageLoader("detente.web", "templates"), autoescape=True)
        source = env.loader.get_source(env, "object.html")[0]  # type: ignore[union-attr]
        assert 'origin == "local:import" %}local import' in source
    finally:
        node.close()


def test_a_partners_copy_of_third_party_material_is_a_duplicate(pair: Cluster) -> None:
    """Both nodes loaded the same ATT&CK slice; ``us`` pulls ``fr``'s releases of it:
    every object is a duplicate by another route, none a rejection."""
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    objs = objects()
    ingest(us, objs)
    ingest(fr, objs)
    pair.release_for("us")
    released = {r.object_id for r in iter_release_records(fr.store.engine, partner="us")}
    assert len(released) >= len(objs) // 2  # fr does relay MITRE's material to us
    s = sync_partner(us, "fr")
    assert s.error is None, s.error
    ids = {o["id"] for o in objs}
    assert (s.rejected, s.updated) == (0, 0), s.rejections
    assert s.new == len(released - ids)  # fr's own identity, nothing of MITRE's
    assert s.duplicates == len(released & ids)
    assert set(origins(us, {o["id"] for o in objs}).values()) == {IMPORTED}


def test_a_partners_newer_version_of_third_party_material_is_accepted(pair: Cluster) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    support = [o for o in objects() if o["type"] in ("identity", "marking-definition")]
    objs = [o for o in objects() if o["type"] == "attack-pattern"][:3]
    ingest(us, [*support, *objs])
    newer = [{**o, "modified": "2026-02-01T00:00:00.000Z", "name": o["name"] + " (v2)"}
             for o in objs]
    ingest(fr, [*support, *newer])
    pair.release_for("us")
    s = sync_partner(us, "fr")
    assert s.error is None and s.rejected == 0, s.rejections
    assert s.updated == len(objs)
    for o in newer:
        got = us.store.get(o["id"])
        assert got is not None and got.body["name"] == o["name"]
        assert got.provenance.origin == "fr"
        assert [v.provenance.origin for v in us.store.versions(o["id"])] == [IMPORTED, "fr"]


def test_a_partner_cannot_claim_or_version_what_we_created(
        pair: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    """The other side of the rule: material created here (our creator, or none) is still
    refused from a partner — and ``detente sync`` lists every refusal and exits 1."""
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    ours = [{**indicator(us, f"203.0.113.{i}"), "created_by_ref": None} for i in range(25)]
    for o in ours:
        del o["created_by_ref"]  # no creator given: created here
    ingest(us, ours)
    newer = [{**o, "modified": "2026-01-01T00:00:00.000Z", "name": "rewritten"}
             for o in ours]
    ingest(fr, newer)  # fr holds versions of ids we created (as its own import)
    pair.release_for("us")
    out = run(capsys, "sync", "--home", str(us.home))
    assert out.code == 1, out.err
    listed = [line for line in out.out.splitlines() if "fr rejected:" in line]
    assert len(listed) == 25  # every one, not the first 20
    assert all(o["id"] in out.out for o in ours)
    assert "created on this node" in listed[0]
    again = run(capsys, "sync", "--home", str(us.home), "--json")
    assert again.code == 0  # the cursor moved on: nothing received, nothing rejected


# -- corrections: ATT&CK ICS 17.1 -> "18.1" ------------------------------------------------------
def _corrected(objs: list[dict[str, Any]], count: int = 70) -> tuple[list[dict[str, Any]],
                                                                    set[str]]:
    """17.1 with ``count`` attack-patterns changed in content, ``modified`` unchanged."""
    out = copy.deepcopy(objs)
    changed: set[str] = set()
    for o in out:
        if o["type"] == "attack-pattern" and not o.get("revoked") and len(changed) < count:
            o["description"] = o.get("description", "") + "\n\n(Revised in 18.1.)"
            changed.add(o["id"])
    assert len(changed) == count
    return out, changed


def test_attack_ics_17_1_to_18_1_with_accept_corrections_leaves_nothing_stale(
        tmp_path: Path) -> None:
    """The whole 17.1 bundle when ../shared/data has it (70 attack-patterns corrected, as
    in 18.1); else the vendored slice (its 14 attack-patterns)."""
    whole = ATTACK_ICS.exists()
    v17 = objects(ATTACK_ICS if whole else SLICE)
    count = 70 if whole else 14
    node = Node.init(tmp_path / "us", "us", communities="coalition", default_marking="clear")
    try:
        node.partners.add("fr", url="http://127.0.0.1:9", public_key="A" * 43 + "=",
                          tier=3, communities=frozenset({"coalition"}))
        assert ingest(node, v17).rejected == []
        release_pending(node.releaser, ["fr"])
        before = {(r.object_id, r.version): r.view_bytes
                  for r in iter_release_records(node.store.engine, partner="fr")
                  if not r.withdrawn}
        v18, changed = _corrected(v17, count)
        refused = ingest(node, v18)
        assert len(refused.rejected) == count and refused.stored == 0
        assert all("--accept-corrections" in r.reason for r in refused.rejected)
        size = node.ledger.size()
        fixed = ingest(node, v18, accept_corrections=True)
        assert (fixed.corrected, fixed.stored, len(fixed.rejected)) == (count, count, 0)
        assert fixed.duplicates == len(v17) - count
        stale = [o["id"] for o in v18 if (got := node.store.get(o["id"])) is None
                 or got.body != o]
        assert stale == []
        entries = [node.ledger.entry(i) for i in range(size, node.ledger.size())]
        corrections = [e for e in entries if e.kind == "correction"]
        assert {e.object_id for e in corrections} == changed
        assert {e.partner for e in corrections} == {IMPORTED}
        # the views released to fr before were cut again from the corrected bodies
        live = {(r.object_id, r.version): r.view_bytes
                for r in iter_release_records(node.store.engine, partner="fr")
                if not r.withdrawn}
        recut = {k for k in before if k[0] in changed}
        assert recut, "fr was released some of the corrected attack-patterns"
        assert all(live[k] != before[k] for k in recut)
        views = {r.object_id: r.view for r in iter_release_records(
            node.store.engine, partner="fr") if not r.withdrawn}
        assert all("18.1" in views[oid]["description"] for oid, _ in recut)
        assert all(live[k] == before[k] for k in before if k[0] not in changed)
        # a later catch-up releases nothing twice, and loading "18.1" again changes nothing
        release_pending(node.releaser, ["fr"])
        after = [(r.object_id, r.version) for r in iter_release_records(
            node.store.engine, partner="fr") if not r.withdrawn]
        assert sorted(after) == sorted(live)  # one live view per version, the re-cut one
        assert ingest(node, v18, accept_corrections=True).corrected == 0
    finally:
        node.close()


def test_our_own_objects_are_never_corrected(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "us", "us")
    try:
        ours = {"type": "note", "spec_version": "2.1",
                "id": "note--2f1a9c3e-7bd5-4c8a-9e2c-7a6f1d2b3c4d",
                "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
                "content": "ours", "object_refs": [MITRE]}
        ingest(node, [ours])
        s = ingest(node, [{**ours, "content": "changed in place"}], accept_corrections=True)
        assert s.corrected == 0 and len(s.rejected) == 1
        assert "--accept-corrections" not in s.rejected[0].reason  # not an option here
        got = node.store.get(ours["id"])
        assert got is not None and got.body["content"] == "ours"
    finally:
        node.close()


def test_ingest_cli_names_the_flag_and_accepts_corrections(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    node = Node.init(tmp_path / "us", "us")
    home = str(node.home)
    node.close()
    v17 = objects()
    v18, changed = _corrected(v17, 14)
    first, second = tmp_path / "17.json", tmp_path / "18.json"
    first.write_text(json.dumps({"type": "bundle", "id": "bundle--" + "1" * 8 + "-1111-4111-8111-"
                                 + "1" * 12, "objects": v17}))
    second.write_text(json.dumps({"type": "bundle", "id": "bundle--" + "2" * 8 +
                                  "-2222-4222-8222-" + "2" * 12, "objects": v18}))
    assert run(capsys, "ingest", str(first), "--home", home).code == 0
    refused = run(capsys, "ingest", str(second), "--home", home, "--json")
    assert refused.code == 1
    doc = json.loads(refused.out)
    assert doc["rejected"] == 14 and doc["corrected"] == 0
    assert all("--accept-corrections" in r["reason"] for r in doc["rejections"])
    fixed = run(capsys, "ingest", str(second), "--home", home, "--accept-corrections")
    assert fixed.code == 0, fixed.err
    assert "stored 14 (14 corrections)" in fixed.out
    node = Node.open(Path(home))
    try:
        assert all(node.store.get(oid).body["description"].endswith("(Revised in 18.1.)")  # type: ignore[union-attr]
                   for oid in changed)
    finally:
        node.close()
