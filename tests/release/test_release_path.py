"""The release path on both backends: policy → view → ledger entry → what TAXII serves."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from nacl.signing import SigningKey
from tests.store.helpers import indicator

from detente.ledger import InclusionProofError, verify_inclusion, verify_release
from detente.ledger.hashing import leaf_hash
from detente.node import Node
from detente.policy import releasability_marking
from detente.release import read_releases, view_hash
from detente.release.proofs import prove_release
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


@pytest.fixture
def node(tmp_path: Path, store_url: str) -> Iterator[Node]:
    n = Node.init(tmp_path / "us", "us", store_url=store_url, communities="coalition")
    n.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                   communities=frozenset({"coalition"}), tier=3)
    n.partners.add("ru", url="http://127.0.0.1:9002", public_key=_key(), tier=1)
    yield n
    n.close()


def _served(node: Node, partner: str) -> dict[str, dict[str, object]]:
    node.releaser.catch_up(partner)
    page = read_releases(node.store.engine, partner, Query(versions=("all",)))
    return {v.id: orjson.loads(v.view) for v in page.views}


def _put(node: Node, *objs: dict[str, object], origin: str = "local") -> None:
    node.store.put_many([validate(o) for o in objs], Provenance(origin=origin))


def test_tlp_and_releasability_decide_who_receives(node: Node) -> None:
    rel = releasability_marking(releasable_to=["fr"], created_by_ref=node.identity_id)
    clear = indicator(object_marking_refs=[TLP_2_0_IDS["clear"]])
    green = indicator(object_marking_refs=[TLP_2_0_IDS["green"]])
    amber_fr = indicator(object_marking_refs=[TLP_2_0_IDS["amber"], rel["id"]])
    red = indicator(object_marking_refs=[TLP_2_0_IDS["red"]])
    unmarked = indicator()
    _put(node, rel, clear, green, amber_fr, red, unmarked)
    fr, ru = _served(node, "fr"), _served(node, "ru")
    assert {clear["id"], green["id"], amber_fr["id"]} <= set(fr)
    assert red["id"] not in fr and unmarked["id"] not in fr
    assert set(ru) == {clear["id"]}
    # the releasability marking travels only with a view that references it
    assert rel["id"] in fr and rel["id"] not in ru


def test_tier_redaction_and_reevaluation(node: Node) -> None:
    rel = releasability_marking(releasable_to=["coalition", "ru"], min_tier=1,
                                redact_below_tier={3: ["description"]},
                                created_by_ref=node.identity_id)
    obj = indicator(description="source: a named human asset",
                    object_marking_refs=[TLP_2_0_IDS["amber"], rel["id"]])
    _put(node, rel, obj)
    ru = _served(node, "ru")
    assert "description" not in ru[obj["id"]]
    assert "description" in _served(node, "fr")[obj["id"]]
    # Russia earns tier 3: its view is replaced with the fuller one, served as new
    node.partners.update("ru", base_tier=3)
    run = node.releaser.reevaluate("ru")
    assert run.replaced == 1
    assert _served(node, "ru")[obj["id"]]["description"] == "source: a named human asset"
    # and back down: tier 0 is below min_tier, the view is withdrawn
    node.partners.update("ru", base_tier=0)
    run = node.releaser.reevaluate("ru")
    assert run.withdrawn == 1
    assert obj["id"] not in _served(node, "ru")


def test_every_release_has_a_ledger_entry_with_the_view_hash(node: Node) -> None:
    objs = [indicator(object_marking_refs=[TLP_2_0_IDS["green"]]) for _ in range(5)]
    _put(node, *objs)
    node.releaser.catch_up("fr")
    page = read_releases(node.store.engine, "fr", Query(versions=("all",)))
    assert len(page.views) == 5
    ledger = node.ledger
    size, root = ledger.size(), ledger.root()
    assert size == 1, "one catch-up chunk: one release batch in the log"
    for v in page.views:
        assert v.ledger_index is not None
        proof = prove_release(node.store.engine, ledger, v.date_added, v.ledger_index, size)
        entry = proof.release
        assert entry.kind == "release" and entry.partner == "fr"
        assert entry.object_id == v.id and entry.view_hash == view_hash(v.view)
        verify_release(proof, root)
        # (1) release entry in its batch, (2) batch entry in the log, by hand
        verify_inclusion(leaf_hash(entry.canonical), proof.position, 5,
                         list(proof.batch_path), bytes.fromhex(proof.batch.batch_root or ""))
        verify_inclusion(leaf_hash(proof.batch.canonical), v.ledger_index, size,
                         list(proof.log_path), root)
        forged = dataclasses.replace(proof, position=(proof.position + 1) % 5)
        with pytest.raises(InclusionProofError):
            verify_release(forged, root)
    assert hashlib.sha256(page.views[0].view).hexdigest() == view_hash(page.views[0].view)


def test_received_material_never_goes_back_to_its_source(node: Node) -> None:
    theirs = indicator(object_marking_refs=[TLP_2_0_IDS["clear"]])
    _put(node, theirs, origin="fr")
    assert theirs["id"] not in _served(node, "fr")
    [(_, decision)] = [(p, d) for p, d in node.releaser.matrix(theirs["id"]) if p.name == "fr"]
    assert not decision.allowed and "never sent back" in decision.reasons[0]


def test_onward_denied_material_is_not_re_released(node: Node) -> None:
    rel = releasability_marking(releasable_to=["us", "coalition"], onward="denied")
    theirs = indicator(object_marking_refs=[TLP_2_0_IDS["green"], rel["id"]])
    _put(node, rel, origin="fr")
    _put(node, theirs, origin="fr")
    node.partners.add("de", url="http://127.0.0.1:9003", public_key=_key(),
                      communities=frozenset({"coalition"}), tier=4)
    assert theirs["id"] not in _served(node, "de")


def test_catch_up_is_incremental_and_idempotent(node: Node) -> None:
    _put(node, indicator(object_marking_refs=[TLP_2_0_IDS["clear"]]))
    first = node.releaser.catch_up("fr")
    again = node.releaser.catch_up("fr")
    assert first.released >= 1 and again.evaluated == 0
    _put(node, indicator(object_marking_refs=[TLP_2_0_IDS["clear"]]))
    assert node.releaser.catch_up("fr").released == 1


def test_views_are_deterministic(node: Node) -> None:
    obj = indicator(object_marking_refs=[TLP_2_0_IDS["clear"]])
    _put(node, obj)
    node.releaser.catch_up("fr")
    before = read_releases(node.store.engine, "fr", Query(ids=(obj["id"],))).views[0].view
    node.partners.update("fr", base_tier=3)  # no change in effective policy
    run = node.releaser.reevaluate("fr")
    assert run.replaced == 0 and run.withdrawn == 0
    after = read_releases(node.store.engine, "fr", Query(ids=(obj["id"],))).views[0].view
    assert before == after


def test_removed_partner_loses_its_collection(node: Node) -> None:
    _put(node, indicator(object_marking_refs=[TLP_2_0_IDS["clear"]]))
    assert _served(node, "ru")
    node.partners.remove("ru")
    node.releaser.forget_partner("ru")
    page = read_releases(node.store.engine, "ru", Query(versions=("all",)))
    assert page.views == []


def test_views_carry_a_fingerprint_recorded_in_the_ledger(node: Node) -> None:
    from detente.release import iter_release_records

    obj = indicator(labels=["isis", "c2", "syria", "financing"],
                    object_marking_refs=[TLP_2_0_IDS["green"]])
    _put(node, obj)
    fr, ru = _served(node, "fr"), _served(node, "ru")
    assert obj["id"] in fr and obj["id"] not in ru
    node.partners.add("de", url="http://127.0.0.1:9003", public_key=_key(),
                      communities=frozenset({"coalition"}), tier=2)
    de = _served(node, "de")
    # same intelligence for both partners: only the order of unordered lists may differ
    assert sorted(fr[obj["id"]]["labels"]) == sorted(de[obj["id"]]["labels"])
    records = [r for r in iter_release_records(node.store.engine) if r.object_id == obj["id"]]
    assert {r.partner for r in records} == {"fr", "de"}
    size = node.ledger.size()
    for r in records:
        assert r.fingerprint_id and r.embed_record
        assert r.ledger_index is not None
        # the ledger binds the fingerprinted bytes: the release entry holds their hash
        proof = prove_release(node.store.engine, node.ledger, r.released_at, r.ledger_index,
                              size)
        assert proof.release.view_hash == view_hash(r.view_bytes) == r.view_hash


def test_serving_derives_no_embed_record_and_tracing_gets_it_all_the_same(
        node: Node) -> None:
    """A page served derives the views' bytes alone (no embed record); the records read
    afterwards, through the same cache, carry the full record, the same bytes."""
    from detente.release import iter_release_records

    obj = indicator(labels=["isis", "c2", "syria", "financing"],
                    object_marking_refs=[TLP_2_0_IDS["green"]])
    _put(node, obj)
    node.releaser.catch_up("fr")
    source = node.releaser.views
    source._cache.clear()  # what the release derived: served again from scratch
    page = read_releases(node.store.engine, "fr", Query(ids=(obj["id"],)), source)
    (view,) = page.views
    assert view.fingerprint_id is not None
    cached = source._cache[next(k for k in source._cache if k[1] == "fr")]
    assert cached.embed_record is None and cached.lacks_record()
    (record,) = [r for r in iter_release_records(node.store.engine, partner="fr")
                 if r.object_id == obj["id"]]
    assert record.embed_record and record.view_bytes == view.view
    assert record.fingerprint_id == view.fingerprint_id
    served = read_releases(node.store.engine, "fr", Query(ids=(obj["id"],)), source)
    assert served.views[0].view == view.view


def test_concurrent_catch_ups_release_each_version_once(node: Node) -> None:
    import threading

    from detente.release import iter_release_records

    _put(node, *[indicator(object_marking_refs=[TLP_2_0_IDS["clear"]]) for _ in range(1200)])
    errors: list[BaseException] = []

    def go() -> None:
        try:
            node.releaser.catch_up("fr")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    node.releaser.catch_up("fr")
    keys = [(r.object_id, r.version) for r in iter_release_records(
        node.store.engine, partner="fr", include_withdrawn=False)]
    assert len(keys) == len(set(keys))
    assert len({k for k in keys if k[0].startswith("indicator--")}) == 1200


def test_reevaluation_keeps_the_markings_views_need(node: Node) -> None:
    rel = releasability_marking(releasable_to=["ru"], min_tier=1,
                                created_by_ref=node.identity_id)
    obj = indicator(object_marking_refs=[TLP_2_0_IDS["amber"], rel["id"]])
    _put(node, rel, obj)
    assert {obj["id"], rel["id"]} <= set(_served(node, "ru"))
    node.partners.update("ru", base_tier=2)
    node.releaser.reevaluate("ru")
    assert {obj["id"], rel["id"]} <= set(_served(node, "ru")), "support marking kept"


def test_released_versions_by_id_answers_a_whole_page_at_once(node: Node) -> None:
    """Echo detection's question, by id: every released (id, version) of those ids and
    nothing else — ids never released and versions never released are absent — for
    more ids than one statement's parameter list used to take."""
    from detente.release import released_versions

    objs = [indicator(object_marking_refs=[TLP_2_0_IDS["clear"]]) for _ in range(450)]
    _put(node, *objs)
    later = dict(objs[0], modified="2031-01-01T00:00:00.000Z")
    node.releaser.catch_up("fr")
    _put(node, later)  # stored after the release: not released yet
    expected = {(o["id"], validate(o).version) for o in objs}
    unknown = [f"indicator--{k:08x}-0000-4000-8000-000000000000" for k in range(300)]
    assert released_versions(node.store.engine, [o["id"] for o in objs] + unknown) == expected
    assert released_versions(node.store.engine, unknown) == set()
    assert released_versions(node.store.engine, []) == set()
    node.releaser.catch_up("fr")
    assert (later["id"], validate(later).version) in released_versions(
        node.store.engine, [later["id"]])
