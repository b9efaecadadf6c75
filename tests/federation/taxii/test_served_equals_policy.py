"""Property: what TAXII serves a partner is exactly what the policy allows it.

Random partners (tiers, communities), releasability markings, TLP markings, objects with
several versions and random provenance.  For every partner, paging its whole ``releases``
collection over TAXII gives exactly the stored versions ``Releaser.decide`` allows, each
with the decision's view (fingerprinted as the release path does), no stripped field
present — plus only the marking definitions those views reference.

While a partner is only partly caught up (the releaser stopped after a random number of
chunks of random size, as the background worker may be at any moment), what it can fetch
is a subset of that — never a version the policy denies, never another view — and once
:func:`release_pending` has run it is all of it.
"""

from __future__ import annotations

import base64
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from tests.federation.fed_fixtures import ROOT, client_for

from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.policy import releasability_marking
from detente.release import release_pending
from detente.stix.timestamps import normalise
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

NAMES = ("fr", "ru", "de")
COMMUNITIES = ("coalition", "eu")
TLPS = ("amber", "clear", "green", "amber", "amber+strict", "red", None)

partner_st = st.fixed_dictionaries({
    "tier": st.integers(0, 4),
    "communities": st.frozensets(st.sampled_from(COMMUNITIES)),
})
marking_st = st.fixed_dictionaries({
    "to": st.lists(st.sampled_from(NAMES + COMMUNITIES), min_size=1, max_size=3, unique=True),
    "min_tier": st.none() | st.integers(0, 4),
    "redact": st.sampled_from((True, True, False)),
})
object_st = st.fixed_dictionaries({
    "tlp": st.sampled_from(TLPS),
    "marking": st.integers(0, 3) | st.none(),
    "origin": st.sampled_from(("local", "local", *NAMES)),
    "versions": st.integers(1, 2),
    "description": st.sampled_from((True, True, False)),
})


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _seed(node: Node, partners: list[dict[str, Any]], markings: list[dict[str, Any]],
          objects: list[dict[str, Any]]) -> None:
    for name, p in zip(NAMES, partners, strict=False):
        node.partners.add(name, url="http://127.0.0.1:9", public_key=_key(),
                          communities=p["communities"], tier=p["tier"])
    known = {p.name for p in node.partners.all()}
    defs = []
    for m in markings:
        to = [t for t in m["to"] if t in known or t in COMMUNITIES] or ["coalition"]
        defs.append(releasability_marking(
            releasable_to=to, min_tier=m["min_tier"],
            redact_below_tier={3: ["description"]} if m["redact"] else None,
            created_by_ref=node.identity_id))
    if defs:
        node.store.put_many([validate(d) for d in defs], Provenance())
    for i, o in enumerate(objects):
        refs = [TLP_2_0_IDS[o["tlp"]]] if o["tlp"] else []
        if o["marking"] is not None and defs:
            refs.append(defs[o["marking"] % len(defs)]["id"])
        origin = o["origin"] if o["origin"] == "local" or o["origin"] in known else "local"
        for v in range(o.get("versions", [])):
            body = _indicator(i, v, refs, o["description"])
            node.store.put_many([validate(body)], Provenance(origin=origin))


def _indicator(i: int, v: int, refs: list[str], description: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1",
        "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
        "created": "2024-01-01T00:00:00.000Z", "modified": f"2024-01-0{v + 1}T00:00:00.000Z",
        "name": f"object {i} v{v}", "pattern": "[ipv4-addr:value = '198.51.100.7']",
        "pattern_type": "stix", "valid_from": "2024-01-01T00:00:00Z",
    }
    if refs:
        body["object_marking_refs"] = refs
    if description:
        body["description"] = "a named human source"
    return body


def _served(client: httpx.Client) -> list[bytes]:
    """Every object of the releases collection, paged 7 at a time, as raw JSON."""
    out: list[bytes] = []
    params: dict[str, Any] = {"match[version]": "all", "limit": 7}
    while True:
        r = client.get(f"{ROOT}/collections/releases/objects/", params=params)
        assert r.status_code == 200, r.text
        env = r.json()
        out += [orjson.dumps(o) for o in env.get("objects", [])]
        if not env["more"]:
            return out
        params = {**params, "next": env["next"]}


def _expected(node: Node, partner: str) -> dict[tuple[str, str], tuple[bytes, tuple[str, ...]]]:
    p = node.partners.get(partner)
    out = {}
    for obj in node.store.iter_all(Query(versions=("all",))):
        decision = node.releaser.decide(obj, p)
        if not decision.allowed:
            continue
        assert decision.view is not None
        view: dict[str, Any] = dict(decision.view)
        if node.releaser.embedder is not None:
            view = node.releaser.embedder(view, partner, f"{obj.id}|{obj.version}")[0]
        out[(obj.id, obj.version)] = (orjson.dumps(view), decision.removed)
    return out


def _key_of(view: dict[str, Any]) -> tuple[str, str]:
    version = view.get("modified") or view.get("created")
    return view["id"], normalise(version) if version else ""


def _check_partner(node: Node, partner: str, secret: str, *, complete: bool = True) -> int:
    """Served ⊆ allowed (each view exactly the policy's); == allowed when ``complete``.
    Returns how many versions were served."""
    with client_for(create_app(node), httpx.BasicAuth(partner + "-c", secret)) as client:
        served = _served(client)
    expected = _expected(node, partner)
    by_key = {_key_of(orjson.loads(b)): b for b in served}
    assert len(by_key) == len(served), "a version was served twice"
    referenced = {r for b in served for r in orjson.loads(b).get("object_marking_refs", [])}
    for key, raw in by_key.items():
        if key in expected:
            view, removed = expected[key]
            assert raw == view
            top = {path for path in removed if path.isidentifier()}
            assert not top & set(orjson.loads(raw))
        else:  # only marking definitions a served view needs travel without a decision
            assert key[0].startswith("marking-definition--") and key[0] in referenced
    missing = set(expected) - set(by_key)
    if complete:
        assert not missing, f"allowed but not served to {partner}: {missing}"
    return len(by_key)


def _part_way(node: Node, partner: str, chunks: int, size: int) -> None:
    """Catch ``partner`` up by ``chunks`` chunks of ``size`` versions: the worker's own
    step (``catch_up_from``), stopped part-way as a killed or busy worker would be."""
    cursor = node.releaser.cursors().get(partner)
    for _ in range(chunks):
        step = node.releaser.catch_up_from(partner, cursor, limit=size)
        if step.done:
            return
        cursor = step.cursor


_PARTS = dict(partners=st.lists(partner_st, min_size=1, max_size=3),
              markings=st.lists(marking_st, min_size=1, max_size=3),
              objects=st.lists(object_st, min_size=1, max_size=8),
              part=st.lists(st.tuples(st.integers(0, 3), st.integers(1, 4)), min_size=3,
                            max_size=3))


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**_PARTS)
def test_served_set_equals_policy(partners: list[dict[str, Any]],
                                  markings: list[dict[str, Any]],
                                  objects: list[dict[str, Any]],
                                  part: list[tuple[int, int]]) -> None:
    _served_equals_policy(None, partners, markings, objects, part)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(**_PARTS)
def test_served_set_equals_policy_on_postgresql(pg_server: str,
                                                partners: list[dict[str, Any]],
                                                markings: list[dict[str, Any]],
                                                objects: list[dict[str, Any]],
                                                part: list[tuple[int, int]]) -> None:
    """The same on PostgreSQL, whose release queries are written apart (release.serve,
    release.path._held): a fresh database per example."""
    name = "detente_t_" + uuid.uuid4().hex[:12]
    admin = sa.create_engine(pg_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        _served_equals_policy(f"{pg_server.rsplit('/', 1)[0]}/{name}", partners, markings,
                              objects, part)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _served_equals_policy(store_url: str | None, partners: list[dict[str, Any]],
                          markings: list[dict[str, Any]], objects: list[dict[str, Any]],
                          part: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.init(Path(tmp) / "us", "us", url="http://testserver",
                         communities="coalition", store_url=store_url)
        try:
            _seed(node, partners, markings, objects)
            secrets = {}
            for p, (chunks, size) in zip(node.partners.all(), part, strict=False):
                _, secrets[p.name] = node.partners.add_client(p.name + "-c", p.name)
                # (1) part-way: never more than the policy allows
                _part_way(node, p.name, chunks, size)
                _check_partner(node, p.name, secrets[p.name], complete=False)
            # (2) caught up by the worker's function: exactly what the policy allows
            release_pending(node.releaser)
            for name, secret in secrets.items():
                _check_partner(node, name, secret)
        finally:
            node.close()
