"""Verifiable priority between live nodes (issue 20 §3): `detente claim` commits without
releasing, `claim reveal` proves it to a partner, whose node checks the commitment against
a tree of our log its own witness checked — forged, altered and late claims fail, and the
answer never tells the claimant what the verifier holds."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator, put
from tests.federation.live import Federation, federation

from detente.federation.exchange.claims import CLAIMS_PATH, reveal_claim
from detente.federation.exchange.local import ingest_local
from detente.federation.http.client import PartnerRefusedError
from detente.federation.witnessing.audit import verify_partner_log
from detente.federation.witnessing.witness import witness_partner
from detente.ledger import Entry
from detente.node import Node
from detente.priority import Opening, RevealRefused, commitment
from detente.stix.vocab import TLP_2_0_IDS

pytestmark = pytest.mark.live

ANSWER_KEYS = {"certified", "claim_index", "commitment", "witnessed_size", "witnessed_at"}


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path) as f:
        yield f


def _c2(ip: str, marking: str = "green") -> dict[str, object]:
    return indicator(marking, pattern=f"[ipv4-addr:value = '{ip}']", name=f"C2 {ip}")


def _claim(node: Node, obj: dict[str, object]) -> int:
    put(node, obj, release=False)
    stored = node.store.get(str(obj["id"]))
    assert stored is not None
    record, new = node.claims.claim(stored.id, stored.version, stored.body)
    assert new
    return record.ledger_index


def _witness(fed: Federation, who: str, whose: str) -> None:
    with fed.client(who, whose) as client:
        assert witness_partner(fed.nodes[who], whose, client).ok


def _reveal(fed: Federation, oid: str, to: str = "fr") -> dict[str, object]:
    with fed.client("us", to) as client:
        return reveal_claim(fed.nodes["us"], oid, to, client)


def test_a_claim_commits_without_releasing_and_is_proved_later(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    obj = _c2("198.51.100.77")
    index = _claim(us, obj)
    entry = us.ledger.entry(index)
    assert entry.kind == "claim" and entry.partner is None and entry.object_id is None
    assert "198.51.100.77" not in entry.canonical.decode()
    assert fr.store.get(str(obj["id"])) is None  # nothing released
    _witness(fed, "fr", "us")
    # later France reports the same address itself (another object, its own)
    ingest_local(fr, [("fr-own", validate_ready(_c2("198.51.100.77")))])
    answer = _reveal(fed, str(obj["id"]))
    assert answer["certified"] is True and set(answer) == ANSWER_KEYS
    assert answer["claim_index"] == index
    (v,) = fr.claims.verifications("us")
    assert v.before_ours and v.own_first_at is not None and v.witnessed_size > index
    assert fr.claims.proven("us") == 1
    assert fr.store.get(str(obj["id"])) is not None  # the content came with the reveal
    assert any(e.kind == "priority" and e.partner == "us" for _i, e in fr.ledger.entries())
    assert any(e.kind == "release" and e.partner == "fr" and "claim revealed" in
               (e.detail or "") for _i, e in us.ledger.entries())
    with fed.client("fr", "us") as client:  # and France's log verify accounts for it
        check = verify_partner_log(fr, "us", client)
    assert check.ok and not check.unaccounted and not check.mismatched, check.problems
    # revealing again records nothing twice
    assert _reveal(fed, str(obj["id"]))["certified"] is True
    assert len(fr.claims.verifications("us")) == 1


def test_a_late_claim_is_not_dated_before_the_verifiers_report(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    ingest_local(fr, [("fr-first", validate_ready(_c2("203.0.113.9")))])  # France first
    obj = _c2("203.0.113.9")
    _claim(us, obj)
    answer = _reveal(fed, str(obj["id"]))  # fr has witnessed no tree holding the claim yet
    assert answer["certified"] is False and "witnessed" in str(answer["reason"])
    assert fr.claims.verifications("us") == []
    _witness(fed, "fr", "us")
    answer = _reveal(fed, str(obj["id"]))
    assert answer["certified"] is True  # the commitment is real, and dated by fr's witness
    (v,) = fr.claims.verifications("us")
    assert not v.before_ours and fr.claims.proven("us") == 0


def test_the_answer_does_not_tell_the_claimant_what_the_verifier_holds(
    fed: Federation
) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    ingest_local(fr, [("fr-holds", validate_ready(_c2("192.0.2.10")))])
    held, fresh = _c2("192.0.2.10"), _c2("192.0.2.11")
    _claim(us, held)
    _claim(us, fresh)
    _witness(fed, "fr", "us")
    a, b = _reveal(fed, str(held["id"])), _reveal(fed, str(fresh["id"]))
    assert set(a) == set(b) == ANSWER_KEYS and a["certified"] is b["certified"] is True
    assert a["witnessed_size"] == b["witnessed_size"]
    assert a["witnessed_at"] == b["witnessed_at"]
    # fr's own entries about us say only what the answer said (us reads them in full)
    for _i, e in fr.ledger.entries():
        if e.kind == "priority":
            assert set(orjson.loads(e.detail or "{}")) == {
                "commitment", "claim_index", "witnessed_size", "witnessed_at"}
    # while fr itself knows which one it had reported first
    before = {v.object_id: v.before_ours for v in fr.claims.verifications("us")}
    assert before == {held["id"]: False, fresh["id"]: True}


def test_forged_and_altered_claims_are_refused(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    obj = _c2("198.51.100.200")
    index = _claim(us, obj)
    _witness(fed, "fr", "us")
    record = us.claims.require(str(obj["id"]))
    stored = us.store.get(str(obj["id"]))
    assert stored is not None
    good = Opening(dict(stored.body), record.salt, index, us.ledger.entry(index).canonical)
    altered = dataclasses.replace(good, object={**good.object, "pattern":
                                                "[ipv4-addr:value = '198.51.100.201']"})
    other_salt = dataclasses.replace(good, salt=bytes(32))
    # a claim entry that was never appended, pointing at another leaf of the log
    forged_entry = Entry(kind="claim", time=us.ledger.entry(index).time,
                         detail=f"commitment {commitment(bytes(32), good.object).hex()}")
    forged = Opening(good.object, bytes(32), 0, forged_entry.canonical)
    with fed.client("us", "fr") as client:
        for bad, why in ((altered, "do not open"), (other_salt, "do not open"),
                         (forged, "not leaf 0")):
            with pytest.raises(PartnerRefusedError, match=why):
                client.post_json(CLAIMS_PATH, bad.to_json())
        for junk in ({"object": {}, "salt": "00", "index": 0, "entry": ""},
                     {"object": good.object}, ["not", "an", "opening"]):
            with pytest.raises(PartnerRefusedError):
                client.post_json(CLAIMS_PATH, junk)
        assert client.post_json(CLAIMS_PATH, good.to_json())["certified"] is True
    assert len(fr.claims.verifications("us")) == 1


def test_a_claim_is_revealed_only_as_the_policy_releases_it(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    red = _c2("198.51.100.66", marking="red")
    _claim(us, red)
    _witness(fed, "fr", "us")
    with pytest.raises(RevealRefused, match="does not release"):
        _reveal(fed, str(red["id"]))
    assert fr.claims.verifications("us") == [] and fr.store.get(str(red["id"])) is None


def test_claim_cli(fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    obj = _c2("198.51.100.12")
    put(us, obj, release=False)
    home = str(us.home)
    r = run(capsys, "claim", str(obj["id"]), "--home", home, "--json")
    assert r.code == 0, r.err
    doc = orjson.loads(r.out)
    assert doc["new"] is True and doc["object_id"] == obj["id"]
    r = run(capsys, "claim", str(obj["id"]), "--home", home)
    assert r.code == 0 and "already claimed" in r.out
    _witness(fed, "fr", "us")
    r = run(capsys, "claim", "reveal", str(obj["id"]), "--to", "fr", "--home", home, "--json")
    assert r.code == 0, r.err
    (answer,) = orjson.loads(r.out)
    assert answer["partner"] == "fr" and answer["certified"] is True
    r = run(capsys, "claim", "list", "--home", str(fr.home), "--json")
    assert orjson.loads(r.out)["verified"][0]["object_id"] == obj["id"]
    r = run(capsys, "claim", "list", "--home", home)
    assert "ours" in r.out and str(obj["id"]) in r.out
    # a reveal that is not certified exits 1; usage mistakes exit 2
    late = _c2("198.51.100.13")
    put(us, late, release=False)
    assert run(capsys, "claim", str(late["id"]), "--home", home).code == 0
    r = run(capsys, "claim", "reveal", str(late["id"]), "--to", "fr", "--home", home)
    assert r.code == 1 and "not certified" in r.out
    for args in (("reveal", str(obj["id"])), ("reveal",), ("bogus", "x"), ("nonsense",)):
        r = run(capsys, "claim", *args, "--home", home)
        assert r.code == 2, (args, r.out, r.err)
    r = run(capsys, "claim", f"indicator--{uuid.uuid4()}", "--home", home)
    assert r.code == 1 and "no object" in r.err


def validate_ready(obj: dict[str, object]) -> dict[str, object]:
    """A partner's own report of the same content: its own id and authorship."""
    return {**obj, "id": f"indicator--{uuid.uuid4()}"}


def test_a_claim_held_back_under_tlp_red_is_revealed_once_declassified(
    fed: Federation
) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    held = _c2("198.51.100.90", marking="red")
    _claim(us, held)
    _witness(fed, "fr", "us")
    with pytest.raises(RevealRefused):
        _reveal(fed, str(held["id"]))
    # declassified: a new version, re-marked TLP:GREEN, same content
    put(us, {**held, "modified": "2024-05-01T00:00:00.000Z",
             "object_marking_refs": [TLP_2_0_IDS["green"]]}, release=False)
    assert _reveal(fed, str(held["id"]))["certified"] is True
    (v,) = fr.claims.verifications("us")
    assert v.object_id == held["id"]
    # a version whose content changed no longer opens the claim
    put(us, {**held, "modified": "2024-06-01T00:00:00.000Z", "name": "changed",
             "object_marking_refs": [TLP_2_0_IDS["green"]]}, release=False)
    with pytest.raises(RevealRefused, match=r"content .* changed"):
        _reveal(fed, str(held["id"]))
