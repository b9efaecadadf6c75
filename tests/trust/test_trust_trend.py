"""A partner's reliability is kept over time: the analyst UI's trend chart."""

from __future__ import annotations

import base64
from pathlib import Path

from nacl.signing import SigningKey
from tests.trust.trust_helpers import indicator, sighting

from detente.node import Node
from detente.stix.validate import validate
from detente.store import Provenance, Query


def test_reliability_history_follows_confirmations(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "us", "us")
    key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
    node.partners.add("ru", url="http://127.0.0.1:9", public_key=key, tier=1)
    reports = [indicator(f"198.51.100.{i}") for i in range(1, 7)]
    node.store.put_many([validate(r) for r in reports], Provenance(origin="ru"))
    node.trust.observe(list(node.store.iter_all(Query(origins=("ru",)))))
    for i, r in enumerate(reports[:4]):
        before = node.store.last_added()
        node.store.put_many([validate(sighting(r["id"]))], Provenance())
        node.trust.observe(list(node.store.iter_all(Query(added_after=before))))
        assert len(node.trust.reliability_history("ru")) >= i + 1
    history = node.trust.reliability_history("ru")
    means = [p.reliability.mean for p in history]
    assert means == sorted(means), "each confirmation raises the reliability"
    assert history[-1].reliability.mean > history[0].reliability.mean
    assert all(p.reliability.low <= p.reliability.mean <= p.reliability.high for p in history)
    assert [p.time for p in history] == sorted(p.time for p in history)
    node.close()
