"""Private deconfliction between two live nodes: every mode over HTTP equals the plain set
intersection, budgets refuse probing, hostile messages are refused with TAXII errors, and
neither ledger ever records an item."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator, put
from tests.federation.live import Federation, federation

from detente.deconflict import (
    BudgetExceeded,
    Event,
    Item,
    Mode,
    PlaceTimeGrid,
    ProtocolError,
    QueryMessage,
    Requester,
    ResponseMessage,
    RevealMessage,
    conflicts,
    observable,
)
from detente.federation.http.client import PartnerRefusedError
from detente.federation.http.render import ERROR_KEYS
from detente.federation.psi.remote import ItemsSpec, run_query
from detente.federation.psi.routes import _DeconflictService, aborted_sessions
from detente.federation.psi.sets import DEFAULT_MODES, own_set, resolve_handle
from detente.node import Node

pytestmark = pytest.mark.live

STAMP = "2024-04-06T20:03:48.000Z"
FR_IPS = [f"198.51.100.{i}" for i in range(1, 41)]
FR_DOMAINS = [f"c2-{i}.evil.example" for i in range(20)]


def sco(kind: str, value: str) -> dict[str, Any]:
    return {"type": kind, "spec_version": "2.1", "id": f"{kind}--{uuid.uuid4()}",
            "value": value}


def actor(name: str, *aliases: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "threat-actor", "spec_version": "2.1",
                            "id": f"threat-actor--{uuid.uuid4()}", "created": STAMP,
                            "modified": STAMP, "name": name}
    if aliases:
        body["aliases"] = list(aliases)
    return body


def seed_fr(fr: Node) -> None:
    put(fr, *[indicator("amber", pattern=f"[ipv4-addr:value = '{ip}']") for ip in FR_IPS])
    put(fr, *[sco("domain-name", d) for d in FR_DOMAINS])
    put(fr, actor("Islamic State", "ISIS", "Daesh"), actor("Jabhat al-Nusra"))
    # received from a partner: never offered to a third party
    put(fr, sco("domain-name", "shared-by-ru.example"), origin="us")


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path, ("us", "fr")) as f:
        seed_fr(f.nodes["fr"])
        yield f


def ips(values: list[str]) -> tuple[Item, ...]:
    return tuple(i for v in values for i in observable("ipv4-addr", v))


def label(item: Item) -> str:
    return f"{item.kind}:{item.value}"


def test_every_mode_equals_the_plain_intersection(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    theirs = set(own_set(fr, "observables").items)
    assert Item("domain-name", "shared-by-ru.example") not in theirs  # only its own
    rng = random.Random(5)
    for round_ in range(2):
        mine = rng.sample(FR_IPS, 10) + [f"203.0.113.{i}" for i in range(round_ * 7 + 3)]
        spec = ItemsSpec("observables", ips(mine))
        expected = {label(i) for i in set(spec.items) & theirs}
        got = run_query(us, "fr", "intersection", spec)
        assert set(got.matches or ()) == expected and got.count == len(expected)
        assert got.responder_size == len(theirs) and got.sent == len(spec.items)
        assert run_query(us, "fr", "cardinality", spec).count == len(expected)
        pointed = run_query(us, "fr", "pointer", spec)
        assert pointed.count == len(expected) and pointed.matches is None
        assert pointed.pointers and all(p.handle.startswith("h-") for p in pointed.pointers)
        for p in pointed.pointers:  # fresh per session; only fr maps them back
            real = resolve_handle(fr, pointed.session_id, p.handle)
            assert real is not None and real.startswith("obj-")
        mutual = run_query(us, "fr", "mutual", spec)
        assert set(mutual.matches or ()) == expected
    # the responder learned the mutual intersection's size: it is in fr's ledger
    fr_records = records(fr)
    assert any(r["mode"] == "mutual" and r["outcome"] == "completed"
               and r["matches"] == 10 for r in fr_records)


def test_names_and_alignment(fed: Federation) -> None:
    us = fed.nodes["us"]
    spec = ItemsSpec.from_json([{"kind": "threat-actor", "name": "DAESH"},
                                {"kind": "threat-actor", "name": "Wagner"}])
    assert spec.kind == "names"
    assert run_query(us, "fr", "intersection", spec).matches == ("daesh",)
    aligned = ItemsSpec.from_json([actor("islamic  state"), actor("Jabhat al-Nusra"),
                                   actor("Free Syrian Army")], alignment=True)
    assert run_query(us, "fr", "cardinality", aligned).count == 2
    for mode in ("intersection", "pointer", "mutual"):
        with pytest.raises(PartnerRefusedError, match="answered in cardinality only"):
            run_query(us, "fr", mode, aligned)
    with pytest.raises(PartnerRefusedError, match="no names to deconflict against"):
        run_query(fed.nodes["fr"], "us", "intersection", spec)  # us holds no names: 404


def ops(*rows: tuple[str, float, float, float, int, int]) -> list[dict[str, Any]]:
    t0 = datetime(2025, 11, 20, 8, tzinfo=UTC)
    return [{"name": n, "latitude": lat, "longitude": lon, "radius_m": r,
             "start": (t0 + timedelta(hours=a)).isoformat(),
             "end": (t0 + timedelta(hours=b)).isoformat(), "contact": f"desk-{n}"}
            for n, lat, lon, r, a, b in rows]


def test_operations_in_pointer_mode_only(
        fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    theirs = ops(("raqqa-north", 35.97, 39.01, 300, 0, 4), ("deir-ez-zor", 35.33, 40.14, 500,
                                                             10, 12))
    path = tmp_path / "fr-ops.json"
    path.write_bytes(orjson.dumps(theirs))
    r = run(capsys, "deconflict", "load-operations", str(path), "--home", str(fr.home),
            "--json")
    assert r.code == 0, r.err
    handles = {d["name"]: d["handle"] for d in orjson.loads(r.out)}
    ours = ops(("strike-1", 35.972, 39.012, 200, 2, 3),  # near raqqa-north, overlapping
               ("strike-2", 35.33, 40.14, 100, 20, 21),  # same place as deir-ez-zor, later
               ("recon", 36.5, 41.0, 100, 0, 2))
    spec = ItemsSpec.operations_json(ours)
    got = run_query(us, "fr", "pointer", spec)
    assert {p.contact for p in got.pointers or ()} == {"desk-raqqa-north"}
    assert {resolve_handle(fr, got.session_id, p.handle) for p in got.pointers or ()} == {
        handles["raqqa-north"]}
    assert handles["raqqa-north"] not in {p.handle for p in got.pointers or ()}
    again = run_query(us, "fr", "pointer", spec)  # a second session: another handle
    assert {p.handle for p in again.pointers or ()}.isdisjoint(
        {p.handle for p in got.pointers or ()})
    grid = PlaceTimeGrid()  # the conflict the ground truth sees is the one found
    truth = {t["name"] for o in ours for t in theirs if conflicts(
        *(Event(d["latitude"], d["longitude"], d["radius_m"],
                datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"]))
          for d in (o, t)), grid)}
    assert truth == {"raqqa-north"}
    for mode in ("intersection", "mutual", "cardinality"):  # never where and when
        with pytest.raises(PartnerRefusedError, match="operations is answered in pointer only"):
            run_query(us, "fr", mode, spec)
    refused = [r for r in records(fr) if r.get("items") == "operations"
               and r["outcome"] == "refused"]
    assert len(refused) == 3
    mine = tmp_path / "us-ops.json"
    mine.write_bytes(orjson.dumps(ours))
    r = run(capsys, "deconflict", "fr", "--mode", "pointer", "--operations", str(mine),
            "--home", str(us.home))
    assert r.code == 0, r.err
    assert "desk-raqqa-north" in r.out and handles["raqqa-north"] not in r.out


def test_budgets_refuse_probing(fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    r = run(capsys, "deconflict", "budget", "us", "--items", "30", "--queries", "3",
            "--ratio", "0.5", "--home", str(fr.home), "--json")
    assert r.code == 0 and orjson.loads(r.out)["queries_per_day"] == 3
    with pytest.raises(BudgetExceeded) as big:
        run_query(us, "fr", "cardinality", ItemsSpec("observables", ips(FR_IPS)))
    assert big.value.reason == "items_per_query"
    wide = [f"203.0.113.{i}" for i in range(40)]  # 40 > 0.5 × 62 (fr's set)
    fr_ratio = run(capsys, "deconflict", "budget", "us", "--items", "1000", "--home",
                   str(fr.home))
    assert fr_ratio.code == 0
    with pytest.raises(BudgetExceeded) as ratio:
        run_query(us, "fr", "cardinality", ItemsSpec("observables", ips(wide)))
    assert ratio.value.reason == "max_set_ratio"
    small = ItemsSpec("observables", ips(FR_IPS[:5]))
    for _ in range(3):
        assert run_query(us, "fr", "cardinality", small).count == 5
    with pytest.raises(BudgetExceeded) as daily:
        run_query(us, "fr", "cardinality", small)
    assert daily.value.reason == "queries_per_day" and "tomorrow" in (daily.value.hint or "")
    with fed.raw("us", "fr") as client:  # the refusal on the wire: 429, TAXII shape
        query = Requester(small.items, mode="cardinality", partner="fr").start()
        raw = _post(client, "/deconflict/query", query.to_bytes())
    assert raw.status_code == 429 and tuple(raw.json()) == ERROR_KEYS
    assert raw.json()["details"]["reason"] == "queries_per_day"
    refused = [r for r in records(fr) if r["outcome"] == "refused"]
    assert len(refused) == 4  # every refusal is on the responder's record
    assert sum(r["outcome"] == "refused" for r in records(us)) == 3  # run_query's refusals
    put(us, indicator("green"))  # us's own observables, from the CLI
    r = run(capsys, "deconflict", "fr", "--mode", "cardinality", "--observables",
            "--home", str(us.home))
    assert r.code == 1 and "used its 3 queries" in r.err and "tomorrow" in r.err


def _post(client: httpx.Client, path: str, body: bytes, **params: str) -> httpx.Response:
    return client.post(path, content=body, params=params,
                       headers={"Content-Type": "application/octet-stream"})


def test_hostile_messages_are_refused(fed: Federation) -> None:
    fr = fed.nodes["fr"]
    query = Requester(ips(FR_IPS[:3]), mode="intersection", partner="fr").start().to_bytes()
    mutual = Requester(ips(FR_IPS[:3]), mode="mutual", partner="fr")
    mquery = mutual.start()
    with fed.raw("us", "fr") as client:
        cases = [
            (b"garbage", "bad magic"),
            (query[:-7], "truncated"),
            (query + b"\x00", "trailing"),
            (query[:4] + b"\x09" + query[5:], "version 9"),
        ]
        for body, _what in cases:
            r = _post(client, "/deconflict/query", body)
            assert r.status_code == 400 and tuple(r.json()) == ERROR_KEYS, _what
        assert _post(client, "/deconflict/query", query).status_code == 200
        replay = _post(client, "/deconflict/query", query)
        assert replay.status_code == 400 and "already used" in replay.json()["description"]
        r = _post(client, "/deconflict/query", query, items="secrets")
        assert r.status_code == 400 and "unknown item kind" in r.json()["description"]
        # out of order: a reveal where a query belongs, and a reveal nobody waits for
        sid = mquery.session_id.hex()
        reveal_path = f"/deconflict/sessions/{sid}/reveal"
        r = _post(client, reveal_path, mquery.to_bytes())
        assert r.status_code == 400 and "out of order" in r.json()["description"]
        answer = _post(client, "/deconflict/query", mquery.to_bytes())
        reveal = mutual.reveal(ResponseMessage.from_bytes(answer.content)).to_bytes()
        r = _post(client, "/deconflict/query", reveal)
        assert r.status_code == 400 and "expected step 1" in r.json()["description"]
        wrong = f"/deconflict/sessions/{'0' * 32}/reveal"
        assert _post(client, wrong, reveal).status_code == 400
        assert _post(client, reveal_path, reveal).status_code == 200
        again = _post(client, reveal_path, reveal)  # replayed step 3
        assert again.status_code == 400 and "no session is waiting" in again.json()["description"]
    with httpx.Client(base_url=str(fr.settings["url"])) as anon:
        r = anon.post("/deconflict/query", content=query)
        assert r.status_code == 401 and tuple(r.json()) == ERROR_KEYS
    aborted = [r for r in records(fr) if r["outcome"] == "aborted"]
    assert len(aborted) >= 7
    assert QueryMessage.from_bytes(query).count == 3


def records(node: Node) -> list[dict[str, Any]]:
    return [orjson.loads(e.detail or "{}") for _i, e in node.ledger.entries()
            if e.kind == "deconfliction"]


ALLOWED = {"session_id", "role", "partner", "mode", "protocol_version", "at", "local_size",
           "remote_size", "matches", "outcome", "step", "reason", "items"}


def test_ledger_records_never_contain_items(
        fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    mine = [*FR_IPS[:4], "192.0.2.77"]
    items_file = tmp_path / "items.json"
    items_file.write_bytes(orjson.dumps([{"type": "ipv4-addr", "value": v} for v in mine]))
    for mode in ("intersection", "cardinality", "pointer", "mutual"):
        r = run(capsys, "deconflict", "fr", "--mode", mode, "--items", str(items_file),
                "--home", str(us.home), "--json")
        assert r.code == 0, r.err
        doc = orjson.loads(r.out)
        assert doc["count"] == 4 and doc["outcome"] == "completed"
    r = run(capsys, "deconflict", "fr", "--items", str(items_file), "--home", str(us.home))
    assert "4 shared" in r.out and "match: 198.51.100.1" in r.out
    secrets_ = [*mine, *FR_IPS, *FR_DOMAINS, "islamic state", "daesh"]
    for node in (us, fr):
        entries = [e for _i, e in node.ledger.entries() if e.kind == "deconfliction"]
        assert len(entries) >= 5
        for e in entries:
            assert set(orjson.loads(e.detail or "{}")) <= ALLOWED
            assert e.object_id is None and e.view_hash is None
            text = e.canonical.decode()
            assert not any(s in text for s in secrets_), text


def test_a_session_abandoned_after_step_2_is_recorded_aborted(fed: Federation) -> None:
    """Issue 18 §2: a partner that stops after step (2) leaves an ``aborted`` record about
    it (never ``pending`` for good), listed by :func:`aborted_sessions`."""
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    now = [1000.0]
    svc = _DeconflictService(fr, None, None, lambda: now[0], dict(DEFAULT_MODES))
    for mode in ("mutual", "cardinality"):
        req = Requester(ips(FR_IPS[:2]), mode=mode, partner="fr")
        svc.query("us", "observables", None, req.start().to_bytes())
    assert aborted_sessions(fr) == []
    later = datetime.now(UTC) + timedelta(minutes=11)
    assert len(aborted_sessions(fr, "us", now=later)) == 2  # visible before any sweep
    now[0] += 601
    svc.sweep()  # runs on every request; here by hand
    rows = aborted_sessions(fr, "us")
    assert {r["mode"] for r in rows} == {"mutual", "cardinality"}
    assert all(r["outcome"] == "aborted" and r["partner"] == "us" and r["step"] == 2
               and "abandoned" in r["reason"] for r in rows)
    assert aborted_sessions(fr, "ru") == [] and aborted_sessions(us) == []
    with pytest.raises(ProtocolError, match="no session is waiting"):
        svc.reveal("us", req.session_id.hex(), RevealMessage(
            req.session_id, b"", Mode.CARDINALITY).to_bytes())
    # evidence for trust: two abandoned sessions are a pattern, and open a review that caps
    # the partner's tier until fr's operator closes it
    deviations = fr.trust.deviations("us")
    assert len(deviations) == 2
    assert all(d[1].startswith("deconfliction-session:") and "step 2" in d[3]
               for d in deviations)
    (review,) = [r for r in fr.trust.reviews() if r.partner == "us"]
    assert "2 protocol deviations" in review.reason
    assert review.tier_cap <= fr.trust.config.review_max_tier
    assert fr.trust.tier(fr.partners.get("us")) <= review.tier_cap
    assert any(e.kind == "evidence" and e.partner == "us" and "protocol deviation"
               in (e.detail or "") for _i, e in fr.ledger.entries())
    assert fr.trust.deviations("ru") == [] and us.trust.deviations() == []
    # the dashboard's alarms show both sessions and the review they opened
    from detente.web.facts import alarms

    shown = alarms(fr, list(reversed(fr.ledger.entries())))
    aborted = [a for a in shown if a.kind == "deconfliction aborted" and "step 2" in a.text]
    assert len(aborted) == 2 and all("us: " in a.text for a in aborted)
    assert {a.text.split(" session")[0].split(": ")[-1] for a in aborted} == {
        "mutual", "cardinality"}
    assert any("broke off at step 3" in a.text for a in shown)  # the late reveal
    assert [a.kind for a in shown].count("protocol deviations") == 1


def test_one_abandoned_session_is_evidence_but_no_review(fed: Federation) -> None:
    """A network failure can abandon one session: evidence only, the tier stands."""
    fr = fed.nodes["fr"]
    now = [1000.0]
    svc = _DeconflictService(fr, None, None, lambda: now[0], dict(DEFAULT_MODES))
    req = Requester(ips(FR_IPS[:2]), mode="mutual", partner="fr")
    svc.query("us", "observables", None, req.start().to_bytes())
    before = fr.trust.tier(fr.partners.get("us"))
    now[0] += 601
    svc.sweep()
    svc.sweep()  # recording the same session twice counts it once
    assert len(fr.trust.deviations("us")) == 1
    assert [r for r in fr.trust.reviews() if r.partner == "us"] == []
    assert fr.trust.tier(fr.partners.get("us")) == before
