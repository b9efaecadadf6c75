"""Property: observing a batch set-wise is exactly observing its objects one at a time.

Random small worlds (several partners, shared and distinct claims, re-versions, forwards,
echoes flagged by federation and echoes through release records — of claims and of
object ids —, ``derived-from``/``duplicate-of``, shared external reports, our own reports
and sightings, false positives included) are stored identically in two fresh stores; one
engine observes the whole world in one call, the other one object per call.  The
observations, the assertion / claim / topic / reference / link / derivation tables
(surrogate ids and store sequence numbers normalised away), reliabilities (also per
topic), grades, reviews and tiers must be identical.
"""

from __future__ import annotations

import secrets
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import _pg_admin_engine
from tests.trust.trust_helpers import T0, Clock, ts

from detente.release.ids import object_uuid
from detente.release.schema import chunks, releases, views
from detente.release.schema import metadata as release_metadata
from detente.release.views import CODEC_ZLIB, pack
from detente.stix.validate import validate
from detente.store import Provenance
from detente.store.base import LOCAL, StoredObject
from detente.store.engine import writer
from detente.store.sql import open_store
from detente.trust import TrustConfig, TrustEngine
from detente.trust import schema as t
from detente.trust.model import HIGH

PARTNERS = ["p1", "p2", "p3"]
VALUES = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "203.0.113.7"]
ACTORS = ["APT28", "Sandworm Team", "Fancy Bear"]
REFS = ["https://reports.example/a", "https://reports.example/b"]
STEP = 1_000_000  # one second between receipts


@dataclass
class Event:
    origin: str
    body: dict[str, Any]
    flags: dict[str, Any]


@dataclass
class World:
    events: list[Event]
    #: (partner, released view body, release time)
    released: list[tuple[str, dict[str, Any], int]]


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n + 1, version=4)}"


@st.composite
def worlds(draw: st.DrawFn) -> World:
    events: list[Event] = []
    made: list[tuple[str, dict[str, Any]]] = []  # (origin, latest body) of SDOs made
    n = draw(st.integers(1, 16))
    for i in range(n):
        when = T0 + i * STEP
        kind = draw(st.sampled_from(["indicator", "indicator", "indicator", "actor", "local",
                                     "version", "forward", "derived", "sighting"]))
        partner = draw(st.sampled_from(PARTNERS))
        flags = {"echo": True} if draw(st.integers(0, 9)) == 0 else {}
        if kind in ("version", "forward", "derived", "sighting") and not made:
            kind = "indicator"
        if kind in ("indicator", "local"):
            body: dict[str, Any] = {
                "type": "indicator", "spec_version": "2.1", "id": _id("indicator", i),
                "created": ts(when), "modified": ts(when), "pattern_type": "stix",
                "pattern": f"[ipv4-addr:value = '{draw(st.sampled_from(VALUES))}']",
                "valid_from": ts(when)}
            if draw(st.booleans()):
                body["labels"] = [draw(st.sampled_from(["attribution", "scanning", "c2"]))]
            if draw(st.integers(0, 3)) == 0:
                body["valid_until"] = ts(when + draw(st.sampled_from([1, 10**4])) * STEP)
            if draw(st.integers(0, 3)) == 0:
                body["external_references"] = [{"source_name": "report",
                                                 "url": draw(st.sampled_from(REFS))}]
            origin = LOCAL if kind == "local" else partner
            made.append((origin, body))
            events.append(Event(origin, body, {} if origin == LOCAL else flags))
        elif kind == "actor":
            body = {"type": "threat-actor", "spec_version": "2.1", "id": _id("threat-actor", i),
                    "created": ts(when), "modified": ts(when),
                    "name": draw(st.sampled_from(ACTORS))}
            if draw(st.booleans()):
                body["aliases"] = [draw(st.sampled_from(ACTORS))]
            made.append((partner, body))
            events.append(Event(partner, body, flags))
        elif kind in ("version", "forward"):
            k = draw(st.integers(0, len(made) - 1))
            origin, old = made[k]
            body = {**old, "modified": ts(when)}
            if body["type"] == "indicator" and draw(st.booleans()):
                body["pattern"] = f"[ipv4-addr:value = '{draw(st.sampled_from(VALUES))}']"
            if kind == "forward":  # the same object id, sent by another source
                origin = draw(st.sampled_from([p for p in [*PARTNERS, LOCAL] if p != origin]))
            made[k] = (origin, body)
            events.append(Event(origin, body, {} if origin == LOCAL else flags))
        elif kind == "derived":
            src = draw(st.sampled_from(made))[1]["id"]
            dst = draw(st.sampled_from(made))[1]["id"]
            body = {"type": "relationship", "spec_version": "2.1",
                    "id": _id("relationship", i), "created": ts(when), "modified": ts(when),
                    "relationship_type": draw(st.sampled_from(["derived-from", "duplicate-of"])),
                    "source_ref": src, "target_ref": dst}
            events.append(Event(partner, body, {}))
        else:
            body = {"type": "sighting", "spec_version": "2.1", "id": _id("sighting", i),
                    "created": ts(when), "modified": ts(when),
                    "sighting_of_ref": draw(st.sampled_from(made))[1]["id"]}
            if draw(st.booleans()):
                body["x_opencti_negative"] = True
            events.append(Event(LOCAL, body, {}))
    released = []
    ours = [b for origin, b in made if origin == LOCAL]
    for _ in range(draw(st.integers(0, 4))):
        at = T0 + draw(st.integers(-1, n)) * STEP + STEP // 2
        partner = draw(st.sampled_from(PARTNERS))
        if ours and draw(st.booleans()):  # one of our objects, by id
            view = draw(st.sampled_from(ours))
        else:  # a view making a claim a partner may send back
            view = {"type": "indicator", "id": _id("indicator", 10_000 + len(released)),
                    "pattern_type": "stix",
                    "pattern": f"[ipv4-addr:value = '{draw(st.sampled_from(VALUES))}']"}
        released.append((partner, view, at))
    return World(events, released)


def _engine_for(url: str, world: World) -> tuple[TrustEngine, list[StoredObject]]:
    store = open_store(url, create=True)
    release_metadata.create_all(writer(store.engine))
    with writer(store.engine).begin() as conn:
        for k, (partner, view, at) in enumerate(world.released):
            # the release layout at rest: one chunk holding the class view, its row, the
            # release row naming it (the trust index reads class views, not served bytes)
            raw = orjson.dumps(view)
            sizes, data = pack([raw])
            conn.execute(chunks.insert().values(id=k, codec=CODEC_ZLIB, sizes=sizes,
                                                data=data))
            conn.execute(views.insert().values(
                id=k, uuid=object_uuid(view["id"], view["type"]), version="v",
                type=view["type"], spec_version="2.1", chunk=k, slot=0, digest=raw[:8],
                marked=False, removed=""))
            conn.execute(releases.insert().values(
                seq=at + k, partner=partner, view=k, view_hash=b"x" * 32, batch=None,
                withdrawn=False))
    stored = []
    for i, ev in enumerate(world.events):
        prov = Provenance(origin=ev.origin, received_at=T0 + i * STEP, flags=ev.flags)
        store.put_many([validate(ev.body)], prov)
        obj = store.get(ev.body["id"], ev.body["modified"])
        if obj is not None and obj.provenance.origin == ev.origin:
            stored.append(obj)
    engine = TrustEngine(store.engine, store, config=TrustConfig(clock=Clock(T0 + 3600 * STEP)))
    engine.create()
    return engine, stored


def _tables(engine: TrustEngine, seqs: dict[int, int]) -> dict[str, Any]:
    """Every trust table, with surrogate ids replaced by (partner, object id)."""
    with engine.engine.connect() as conn:
        rows = conn.execute(sa.select(t.assertions)).all()
        who = {r.id: (r.partner, r.object_id) for r in rows}
        out: dict[str, Any] = {"assertions": sorted(
            (r.partner, r.object_id, r.version, r.type, r.time, seqs[r.seq], r.importance,
             r.echo, r.echo_reason, r.revoked, r.valid_until, r.outcome, r.outcome_at,
             r.outcome_why) for r in rows)}
        out["claims"] = sorted((*who[r.assertion_id], r.key, r.claim, r.echo)
                               for r in conn.execute(sa.select(t.claims)))
        out["topics"] = sorted((*who[r[0]], r[1]) for r in conn.execute(sa.select(t.topics)))
        out["extrefs"] = sorted((*who[r[0]], r[1]) for r in conn.execute(sa.select(t.extrefs)))
        out["links"] = sorted((who[r.first], who[r.later], r.independent, r.reason)
                              for r in conn.execute(sa.select(t.links)))
        out["derived"] = sorted(tuple(r) for r in conn.execute(sa.select(t.derived)))
        out["reviews"] = sorted((r.partner, r.object_id, r.reason, r.tier_cap, r.closed_at)
                                for r in conn.execute(sa.select(t.reviews)))
    return out


def _answers(engine: TrustEngine, object_ids: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    engine.refresh()
    for p in PARTNERS:
        out[f"rel {p}"] = engine.reliability(p)
        for topic in (HIGH, "type:indicator", "type:threat-actor"):
            out[f"rel {p} {topic}"] = engine.reliability(p, topic)
        out[f"grade {p}"] = engine.source_grade(p)
        with engine.engine.connect() as conn:
            out[f"tier {p}"] = conn.execute(sa.select(t.tiers.c.tier).where(
                t.tiers.c.partner == p)).scalar()
        out[f"credit {p}"] = engine.credit(p)
    for oid in object_ids:
        try:
            g = engine.grade(oid)
        except Exception as exc:  # not gradable: the same on both sides
            out[f"grade {oid}"] = type(exc).__name__
        else:
            out[f"grade {oid}"] = (g.partner, g.credibility, g.confidence, g.reasons,
                                   g.source_grade)
    return out


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to 1e-9 (a backend may sum the same terms in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-9, abs=1e-12)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(_close(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return bool(a == b)


def _check(world: World, fresh: Callable[[], str]) -> None:
    batch, objs = _engine_for(fresh(), world)
    single, objs1 = _engine_for(fresh(), world)
    assert [(o.id, o.version, o.provenance.origin) for o in objs] == \
        [(o.id, o.version, o.provenance.origin) for o in objs1]
    seen_batch = batch.observe(objs)
    seen_single = [x for o in objs1 for x in single.observe([o])]
    assert seen_batch == seen_single
    rank = {o.date_added: i for i, o in enumerate(objs)}
    rank1 = {o.date_added: i for i, o in enumerate(objs1)}
    assert _tables(batch, rank) == _tables(single, rank1)
    ids = sorted({o.id for o in objs})
    got, want = _answers(batch, ids), _answers(single, ids)
    assert got.keys() == want.keys()
    for key in got:
        assert _close(got[key], want[key]), (key, got[key], want[key])
    batch.store.close()
    single.store.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_urls(request: pytest.FixtureRequest) -> Iterator[Callable[[], str]]:
    """Makes a fresh, empty store URL on each call (two per example)."""
    if request.param == "sqlite":
        with tempfile.TemporaryDirectory() as d:
            count = iter(range(10**9))
            yield lambda: f"sqlite:///{Path(d) / f's{next(count)}.db'}"
        return
    server = str(request.getfixturevalue("pg_server"))
    admin = _pg_admin_engine()
    names: list[str] = []

    def make() -> str:
        name = "detente_tb_" + secrets.token_hex(6)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        names.append(name)
        return f"{server.rsplit('/', 1)[0]}/{name}"

    yield make
    with admin.connect() as conn:
        for name in names:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(worlds())
def test_batch_observe_equals_one_at_a_time(fresh_urls: Callable[[], str],
                                            world: World) -> None:
    _check(world, fresh_urls)
