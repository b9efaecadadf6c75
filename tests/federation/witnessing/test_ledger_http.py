"""The ledger over HTTP between three live nodes: witnessing, cosignatures, `log verify`,
equivocation caught (forked log database), tampered notes and proofs refused."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator, put
from tests.federation.live import Federation, federation, pull, serve

from detente.federation.http.client import (
    PartnerRefusedError,
    ResponseSignatureError,
    open_partner_client,
)
from detente.federation.http.render import ERROR_KEYS
from detente.federation.witnessing.audit import verify_partner_log
from detente.federation.witnessing.names import node_witness, witness_keys
from detente.federation.witnessing.witness import witness_partner
from detente.ledger import (
    Checkpoint,
    Entry,
    InclusionProofError,
    ProofError,
    SignatureError,
    verify_consistency,
    verify_inclusion,
)
from detente.node import Node
from detente.scenario.live import listening_socket, url_of
from detente.settings import Settings

pytestmark = pytest.mark.live


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path) as f:
        put(f.nodes["us"], *[indicator("green") for _ in range(3)])
        yield f


def note(n: int) -> Entry:
    return Entry(kind="evidence", time="2025-02-02T00:00:00Z", detail=f"local {n}")


def test_witnessing_collects_cosignatures(fed: Federation) -> None:
    us = fed.nodes["us"]
    for name in ("fr", "ru"):
        with fed.client(name, "us") as client:
            result = witness_partner(fed.nodes[name], "us", client)
        assert result.ok and result.cosigned and result.previous_size is None
    with fed.client("fr", "us") as client:
        doc = client.get_json("/ledger/checkpoint")
    cp = Checkpoint.from_note(doc["note"], {"detente/us": us.verify_key})
    assert sorted(doc["witnesses"]) == ["detente/fr", "detente/ru"]
    assert {c.name for c in cp.cosignatures(witness_keys(us))} == {
        "detente/fr", "detente/ru"}
    # the log grows; the next round is a consistency proof from what fr cosigned
    us.ledger.append_many([note(i) for i in range(5)])
    with fed.client("fr", "us") as client:
        again = witness_partner(fed.nodes["fr"], "us", client)
    assert again.ok and again.previous_size == result.size and again.size == result.size + 5
    assert us.ledger.alarms() == [] and fed.nodes["fr"].ledger.alarms() == []


def test_proofs_and_entries_endpoints(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    pull(fr, "us")  # us releases its indicators to fr: a release batch about fr
    us.ledger.append_many([note(i) for i in range(2)])
    with fed.client("fr", "us") as client:
        cp = Checkpoint.from_note(client.get_json("/ledger/checkpoint")["note"],
                                  {"detente/us": us.verify_key})
        page = client.get_json("/ledger/entries", {"limit": 2, "end": cp.size})
        assert page["more"] and page["next"] == 2 and len(page["entries"]) == 2
        rows = client.get_json("/ledger/entries", {"end": cp.size})["entries"]
        mine = [r for r in rows if r["entry"] is not None]
        assert mine and all(orjson.loads(r["entry"])["partner"] == "fr" for r in mine)
        row = mine[0]
        proof = client.get_json("/ledger/proofs/inclusion",
                         {"index": row["index"], "size": cp.size})
        leaf = Entry.from_json(row["entry"].encode()).leaf_hash
        assert base64.b64decode(proof["leaf_hash"]) == leaf
        verify_inclusion(leaf, row["index"], cp.size,
                         [base64.b64decode(p) for p in proof["proof"]], cp.root)
        us.ledger.append_many([note(i) for i in range(3)])
        new = us.ledger.checkpoint()
        cons = client.get_json("/ledger/proofs/consistency",
                        {"old": cp.size, "new": new.size})
        verify_consistency(cp.size, new.size, cp.root, new.root,
                           [base64.b64decode(p) for p in cons["proof"]])
        for path, params in [("/ledger/proofs/inclusion", {"index": 10_000}),
                             ("/ledger/proofs/inclusion", {"index": "-1"}),
                             ("/ledger/proofs/consistency", {"old": 5, "new": 2}),
                             ("/ledger/proofs/consistency", {"old": 1, "new": 10**9}),
                             ("/ledger/entries", {"start": "x"})]:
            with fed.raw("fr", "us") as raw:
                r = raw.get(path, params=params)
            assert r.status_code in (400, 404), (path, params, r.text)
            assert tuple(r.json()) == ERROR_KEYS


def test_log_verify_checks_every_received_release(
        fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    assert pull(fr, "us") >= 3
    with fed.client("fr", "us") as client:
        witness_partner(fr, "us", client)
        us.ledger.append_many([note(1)])
        report = verify_partner_log(fr, "us", client)
        assert report.ok, report.to_json()
        assert report.consistent and report.witnessed_size == report.size - 1
        assert report.root_matches and report.cosigned_by == []  # size 4: not cosigned yet
        witness_partner(fr, "us", client)
        report = verify_partner_log(fr, "us", client)
    assert report.ok and report.cosigned_by == ["detente/fr"]
    assert report.received >= 3 and report.matched == report.received
    assert report.releases_included >= report.received
    # matched == received: the bytes intake stored hash to the view hash us logged, i.e.
    # they are exactly the bytes us served (no canonicalisation needed)
    r = run(capsys, "log", "verify", "--home", str(fr.home), "--partner", "us", "--json")
    assert r.code == 0, r.err
    [doc] = orjson.loads(r.out)
    assert doc["ok"] and doc["matched"] == report.received
    r = run(capsys, "log", "verify", "--home", str(fr.home))
    assert r.code == 0 and "us (detente/us): ok" in r.out and "ru (detente/ru): ok" in r.out


def test_log_verify_reports_a_version_the_partner_never_logged(
        fed: Federation, capsys: pytest.CaptureFixture[str]) -> None:
    fr = fed.nodes["fr"]
    pull(fr, "us")
    put(fr, indicator("green", name="claimed to come from us"), origin="us")
    r = run(capsys, "log", "verify", "--home", str(fr.home), "--partner", "us", "--json")
    [doc] = orjson.loads(r.out)
    assert r.code == 1 and not doc["ok"] and len(doc["unaccounted"]) == 1


def _fork(us: Node, tmp_path: Path, sock_b: object) -> Node:
    """A second copy of us's database, served under the same key (a split view)."""
    src = str(us.settings["store"]).removeprefix("sqlite:///")
    dst = tmp_path / "us-fork.db"
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    settings = Settings({**us.settings, "store": f"sqlite:///{dst}",
                         "url": url_of(sock_b)})  # type: ignore[arg-type]
    return Node(us.home, settings, us.signing_key, us.identity)


def test_split_view_is_caught_by_gossip_and_raises_the_alarm(
        fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr, ru = fed.nodes["us"], fed.nodes["fr"], fed.nodes["ru"]
    for name in ("fr", "ru"):  # both witness the shared history first
        with fed.client(name, "us") as client:
            assert witness_partner(fed.nodes[name], "us", client).ok
    sock_b = listening_socket()
    fork = _fork(us, tmp_path, sock_b)
    served_b = serve(fork, sock_b)
    try:
        us.ledger.append_many([note(i) for i in range(2)])  # branch A, shown to fr
        fork.ledger.append_many([note(i + 100) for i in range(2)])  # branch B, shown to ru
        with fed.client("fr", "us") as client:
            assert witness_partner(fr, "us", client).ok
        with open_partner_client(ru, "us", url=url_of(sock_b)) as ru_view:
            assert witness_partner(ru, "us", ru_view).ok  # each branch is consistent alone
        assert fr.ledger.alarms() == [] and ru.ledger.alarms() == []
        with fed.client("fr", "ru") as client:  # gossip: ru's view of us reaches fr
            result = witness_partner(fr, "ru", client)
        assert result.cosigned and len(result.equivocations) == 1
        [alarm] = fr.ledger.alarms()
        assert alarm.origin == "detente/us" and alarm.kind == "conflicting-root"
        a = Checkpoint.from_note(alarm.first_note, {"detente/us": us.verify_key})
        b = Checkpoint.from_note(alarm.second_note, {"detente/us": us.verify_key})
        assert a.size == b.size and a.root != b.root  # conclusive: two signed roots
        r = run(capsys, "log", "status", "--home", str(fr.home))
        assert "1 equivocation alarm" in r.out and "detente/us" in r.out
    finally:
        served_b.stop()
        fork.close()


def test_a_rewritten_history_shown_later_is_inconsistent(
        fed: Federation, tmp_path: Path) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    sock_b = listening_socket()
    fork = _fork(us, tmp_path, sock_b)
    served_b = serve(fork, sock_b)
    try:
        us.ledger.append_many([note(i) for i in range(3)])
        with fed.client("fr", "us") as client:
            assert witness_partner(fr, "us", client).ok
        fork.ledger.append_many([note(i + 100) for i in range(5)])  # larger, different
        with open_partner_client(fr, "us", url=url_of(sock_b)) as client:
            result = witness_partner(fr, "us", client)
        assert not result.cosigned and len(result.equivocations) == 1
        [alarm] = fr.ledger.alarms()
        assert alarm.kind == "inconsistent"
        # the witness kept its old view: it never cosigned the rewritten one
        last = node_witness(fr).last_seen("detente/us")
        assert last is not None and last.size == us.ledger.size()
    finally:
        served_b.stop()
        fork.close()


def test_tampered_notes_and_cosignatures_are_refused(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    with fed.raw("fr", "us") as client:
        cp = Checkpoint.from_note(client.get("/ledger/checkpoint").json()["note"],
                                  {"detente/us": us.verify_key})
        forged = Checkpoint.sign(cp.origin, cp.size, hashlib.sha256(b"x").digest(),
                                 fr.signing_key, "detente/us")
        for body in [b"not json", b'{"nope": 1}', orjson.dumps({"note": "garbage"}),
                     orjson.dumps({"note": forged.to_note()}),  # not signed by us
                     orjson.dumps({"note": cp.to_note()})]:  # no cosignature by fr
            r = client.post("/ledger/cosignatures", content=body,
                            headers={"Content-Type": "application/json"})
            assert r.status_code == 400, r.text
            assert tuple(r.json()) == ERROR_KEYS
        assert "no cosignature" in r.json()["description"]
        # a cosignature by fr presented as ru's is not ru's
        with fed.raw("ru", "us") as ru_client:
            cosig = node_witness(fr).observe(cp)
            r = ru_client.post("/ledger/cosignatures",
                               content=orjson.dumps({"note": cp.with_cosignature(cosig)
                                                     .to_note()}),
                               headers={"Content-Type": "application/json"})
            assert r.status_code == 400
    # fr's view of us: the checkpoint note must be signed by us's key
    with pytest.raises(SignatureError):
        Checkpoint.from_note(forged.to_note(), {"detente/us": us.verify_key})


def test_unsigned_and_client_requests_are_refused(fed: Federation) -> None:
    us = fed.nodes["us"]
    with httpx.Client(base_url=str(us.settings["url"])) as anon:
        r = anon.get("/ledger/checkpoint")
        assert r.status_code == 401 and tuple(r.json()) == ERROR_KEYS
    _client, secret = us.partners.add_client("fr-taxii", "fr")
    with httpx.Client(base_url=str(us.settings["url"]),
                      auth=httpx.BasicAuth(_client.user, secret)) as basic:
        r = basic.get("/ledger/checkpoint")
        assert r.status_code == 403 and "partner nodes only" in r.json()["description"]


class _Tamper(httpx.BaseTransport):
    """Rewrites one proof element in a (signed) answer: the response signature breaks."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        response.close()
        if b'"proof"' in body:
            doc = orjson.loads(body)
            if doc["proof"]:
                doc["proof"][0] = base64.b64encode(b"\x00" * 32).decode()
            body = orjson.dumps(doc)
        return httpx.Response(response.status_code, headers=response.headers, content=body,
                              request=request)

    def close(self) -> None:
        self.inner.close()


def test_tampered_proofs_are_refused(fed: Federation) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    pull(fr, "us")
    with open_partner_client(fr, "us") as base, \
            open_partner_client(fr, "us", transport=_Tamper()) as client:
        with pytest.raises(ResponseSignatureError, match="signature refused"):
            verify_partner_log(fr, "us", client)
        with pytest.raises(PartnerRefusedError, match="larger than the log"):
            base.get_json("/ledger/proofs/inclusion", {"index": 0, "size": 10**6})
    # a proof element that is not a hash, or a proof that does not verify, names the step
    from detente.ledger.wire import decode_proof

    with pytest.raises(ProofError, match="not a 32-byte hash"):
        decode_proof([base64.b64encode(b"short").decode()], "proof")
    with pytest.raises(ProofError, match="not base64"):
        decode_proof(["***"], "proof")
    cp = us.ledger.checkpoint()
    with pytest.raises(InclusionProofError):
        verify_inclusion(us.ledger.leaf_hash(0), 0, cp.size, [b"\x00" * 32] * 3, cp.root)


def test_a_partner_reads_its_own_release_batches_only(fed: Federation) -> None:
    """Releases are logged one batch leaf per commit; the partner fetches the release
    entries under its own batches and checks them against the batch root.  Anyone else's
    batch, or a leaf that is no batch, answers exactly like a leaf past the end."""
    from detente.ledger import BATCH_KIND, wire

    us, fr = fed.nodes["us"], fed.nodes["fr"]
    pull(fr, "us")
    us.releaser.catch_up("ru")
    us.ledger.append_many([note(1)])
    batches = {i: e for i, e in us.ledger.entries() if e.kind == BATCH_KIND}
    mine = next(i for i, e in batches.items() if e.partner == "fr")
    theirs = next(i for i, e in batches.items() if e.partner == "ru")
    plain = us.ledger.size() - 1
    with fed.client("fr", "us") as client:
        doc = client.get_json("/ledger/batch", {"index": mine})
        got = wire.read_batch(doc, mine, batches[mine], "batch")
        assert got and all(e.kind == "release" and e.partner == "fr" for e in got)
        # a batch whose entries were reordered or cut no longer makes its root
        for forged in ({**doc, "entries": doc["entries"][::-1]},
                       {**doc, "entries": doc["entries"][:-1]}):
            if forged["entries"] != doc["entries"]:
                with pytest.raises(ProofError):
                    wire.read_batch(forged, mine, batches[mine], "batch")
    answers = []
    for index in (theirs, plain, 10**6):
        with fed.raw("fr", "us") as raw:
            r = raw.get("/ledger/batch", params={"index": index})
        assert r.status_code == 404 and tuple(r.json()) == ERROR_KEYS
        answers.append(r.json()["title"])
    assert len(set(answers)) == 1, "another's batch must look like no batch at all"
