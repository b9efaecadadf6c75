"""The intake path: provenance, ledger receipts in the same transaction, hooks, refusals."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from tests.federation.fed_fixtures import ROOT, TAXII, indicator, signed_client

from detente.federation.exchange.intake import receive
from detente.store import Query


def test_push_keeps_provenance_and_a_receipt_per_stored_version(nodes: Any) -> None:
    us, others = nodes
    objs = [indicator() for _ in range(3)]
    size = us.ledger.size()
    with signed_client(us, others["fr"]) as fr:
        r = fr.post(f"{ROOT}/collections/inbox/objects/",
                    content=orjson.dumps({"objects": [*objs, objs[0]]}),
                    headers={"Content-Type": TAXII})
    assert r.json()["success_count"] == 4  # the duplicate succeeds, stored once
    stored = us.store.list(Query(origins=("fr",), versions=("all",))).objects
    assert [o.id for o in stored] == [o["id"] for o in objs]
    for o in stored:
        assert o.provenance.received_at is not None
        assert o.provenance.signature is not None
        assert 'keyid="fr"' in o.provenance.signature
    entries = [us.ledger.entry(i) for i in range(size, us.ledger.size())]
    assert [(e.kind, e.partner, e.object_id) for e in entries] == [
        ("receipt", "fr", o["id"]) for o in objs]
    assert entries[0].view_hash == hashlib.sha256(stored[0].raw).hexdigest()


def test_receive_gives_trust_exactly_what_it_stored(nodes: Any) -> None:
    us, _ = nodes
    a = indicator()
    result = receive(us, "ru", [a, {"bad": 1}], None)
    assert (len(result.successes), len(result.failures)) == (1, 1)
    assert [r.object.id for r in result.stored] == [a["id"]]
    assert result.new == 1 and result.rejected == 1
    assert us.trust.summary("ru").counts.assertions == 1  # evidence, on the push route too
    again = receive(us, "ru", [a], None)
    assert again.duplicates == 1 and again.stored == []
    assert us.trust.summary("ru").counts.assertions == 1  # nothing new: no new evidence


def test_receive_refuses_a_removed_partner(nodes: Any) -> None:
    from detente.errors import NotFoundError

    us, _ = nodes
    us.partners.remove("ru")
    with pytest.raises(NotFoundError):
        receive(us, "ru", [indicator()], None)


def test_version_conflict_is_a_failure_not_an_error(nodes: Any) -> None:
    us, _ = nodes
    a = indicator()
    receive(us, "fr", [a], None)
    result = receive(us, "fr", [dict(a, name="changed")], None)
    assert result.failures and "version conflict" in (result.failures[0].message or "")
