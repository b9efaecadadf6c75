"""Issue 14, findings 10 and 11, performed against live nodes.

10: a node truncates its unwitnessed ledger tail (and recomputes its head) after a partner
    fetched a signed checkpoint at the larger size: `log verify` must fail with an alarm.
11: equivocation evidence is the partner's own signed answers, checkable by a third party
    with nothing but the partner's key (`detente log check-evidence`); a single truncated
    answer is asked again and raises no alarm.
"""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.fed_fixtures import indicator, put
from tests.federation.live import Federation, federation, pull, serve
from tests.federation.witnessing.test_ledger_http import _fork, note

from detente.federation.http.client import open_partner_client
from detente.federation.http.signatures import MessageView, sign_response_headers
from detente.federation.witnessing.evidence import check_evidence, exchange_of
from detente.federation.witnessing.witness import witness_partner
from detente.ledger import Evidence
from detente.node import Node
from detente.scenario.live import listening_socket, url_of

pytestmark = pytest.mark.live


@pytest.fixture
def fed(tmp_path: Path) -> Iterator[Federation]:
    with federation(tmp_path) as f:
        put(f.nodes["us"], *[indicator("green") for _ in range(3)])
        yield f


def _db(node: Node) -> str:
    return str(node.settings["store"]).removeprefix("sqlite:///")


def _check(capsys: pytest.CaptureFixture[str], path: Path, key: str) -> tuple[int, str]:
    r = run(capsys, "log", "check-evidence", str(path), "--key", key)
    return r.code, r.out + r.err


def test_a_rolled_back_tail_fails_log_verify_with_an_alarm(
        fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    pull(fr, "us")
    snapshot = tmp_path / "us-before-tail.db"  # us's database before its last 5 entries
    with sqlite3.connect(_db(us)) as live, sqlite3.connect(snapshot) as copy:
        live.backup(copy)
    size = us.ledger.size()
    us.ledger.append_many([note(i) for i in range(5)])
    r = run(capsys, "log", "verify", "--home", str(fr.home), "--partner", "us", "--json")
    assert r.code == 0, r.out  # fr fetched (and now remembers) the checkpoint at size + 5
    [doc] = orjson.loads(r.out)
    assert doc["size"] == size + 5 and doc["witnessed_size"] is None
    # the attack: truncate the last 5 entries and put back the head they had (restore the
    # database as it was: same entries, same head, same signed checkpoints up to `size`)
    with sqlite3.connect(snapshot) as copy, sqlite3.connect(_db(us)) as live:
        copy.backup(live)
    assert us.ledger.size() == size
    r = run(capsys, "log", "verify", "--home", str(fr.home), "--partner", "us", "--json")
    assert r.code == 1, r.out
    [doc] = orjson.loads(r.out)
    assert not doc["ok"] and doc["consistent"] is False and len(doc["equivocations"]) == 1
    [alarm] = fr.ledger.alarms()
    assert alarm.kind == "rollback" and alarm.origin == "detente/us"
    r = run(capsys, "log", "status", "--home", str(fr.home))
    assert "1 equivocation alarm" in r.out and "rollback" in r.out
    # the evidence convinces a third party: us signed size + 5, then signed "no such tree"
    path = tmp_path / "rollback.json"
    r = run(capsys, "log", "evidence", str(alarm.id), "--home", str(fr.home),
            "--output", str(path))
    assert r.code == 0, r.err
    code, text = _check(capsys, path, us.public_key_b64)
    assert code == 0 and "EVIDENCE HOLDS" in text and "rolled its log back" in text
    assert _check(capsys, path, fr.public_key_b64)[0] == 1  # not fr's doing


def _rewritten_history(fed: Federation, tmp_path: Path) -> tuple[Node, object]:
    """us shows fr one history, then (through a fork served elsewhere) a longer,
    different one: the "inconsistent" kind, with us's signed proof that fails."""
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    sock_b = listening_socket()
    fork = _fork(us, tmp_path, sock_b)
    served_b = serve(fork, sock_b)
    us.ledger.append_many([note(i) for i in range(3)])
    with fed.client("fr", "us") as client:
        assert witness_partner(fr, "us", client).ok
    fork.ledger.append_many([note(i + 100) for i in range(5)])
    with open_partner_client(fr, "us", url=url_of(sock_b)) as client:
        result = witness_partner(fr, "us", client)
    assert not result.cosigned and len(result.equivocations) == 1
    return fork, served_b


def test_split_view_evidence_convinces_a_third_party_and_tampering_does_not(
        fed: Federation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    fork, served_b = _rewritten_history(fed, tmp_path)
    try:
        [alarm] = fr.ledger.alarms()
        assert alarm.kind == "inconsistent"
        evidence = alarm.evidence()
        assert evidence.response is not None and evidence.response.status == 200
        path = tmp_path / "evidence.json"
        path.write_bytes(evidence.to_json())
        code, text = _check(capsys, path, us.public_key_b64)
        assert code == 0 and "EVIDENCE HOLDS" in text and "does not verify" in text, text

        def refused(ev: Evidence, key: str = us.public_key_b64) -> str:
            bad = tmp_path / "bad.json"
            bad.write_bytes(ev.to_json())
            code, text = _check(capsys, bad, key)
            assert code == 1 and "does NOT hold" in text, text
            return text

        # an edited note: its signature no longer holds
        first_lines = evidence.second_note.split("\n")
        edited = "\n".join([first_lines[0], str(int(first_lines[1]) + 1), *first_lines[2:]])
        assert "not signed by this key" in refused(
            replace(evidence, second_note=edited))
        # a swapped key: fr's key convicts nobody of us's notes
        assert "not signed by this key" in refused(evidence, fr.public_key_b64)
        # an edited signed answer: the Content-Digest no longer matches
        assert evidence.response is not None
        doc = orjson.loads(evidence.response.body)
        doc["proof"] = doc["proof"][:-1]
        forged = replace(evidence, response=replace(evidence.response,
                                                    body=orjson.dumps(doc)))
        assert "answer is not signed" in refused(forged)
        # a proof that does verify: us's genuine answer between two consistent checkpoints
        old = us.ledger.checkpoint()
        us.ledger.append_many([note(50)])
        new = us.ledger.checkpoint()
        with fed.client("fr", "us") as client:
            reply = client.get_reply("/ledger/proofs/consistency",
                                     {"old": old.size, "new": new.size})
        honest = Evidence("detente/us", "inconsistent", "now", "claimed", old.to_note(),
                          new.to_note(), exchange_of(reply))
        assert "the proof verifies" in refused(honest)
        # a conflicting-root claim over two different sizes
        assert "same size" in refused(replace(evidence, kind="conflicting-root"))
        # the pure check agrees, with the key alone
        from detente.federation.witnessing.evidence import read_key

        assert check_evidence(evidence, read_key(us.public_key_b64)[1]).holds
    finally:
        served_b.stop()
        fork.close()


class _TruncateOnce(httpx.BaseTransport):
    """The partner's first consistency answer is truncated (one proof hash dropped) and,
    with ``resign``, signed again by the partner as if its server had sent it that way:
    a transient fault, not equivocation. Later answers pass untouched."""

    def __init__(self, partner: Node, *, resign: bool) -> None:
        self.inner, self.partner, self.resign = httpx.HTTPTransport(), partner, resign
        self.consistency_requests = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        body = response.read()
        response.close()
        if request.url.path.endswith("/ledger/proofs/consistency"):
            self.consistency_requests += 1
            if self.consistency_requests == 1:
                doc = orjson.loads(body)
                doc["proof"] = doc["proof"][:-1]
                body = orjson.dumps(doc)
                if self.resign:
                    return self._signed(request, response, body)
        return httpx.Response(response.status_code, headers=response.headers, content=body,
                              request=request)

    def _signed(self, request: httpx.Request, response: httpx.Response,
                body: bytes) -> httpx.Response:
        dropped = {"content-digest", "signature-input", "signature", "content-length"}
        base = [(k, v) for k, v in response.headers.items() if k.lower() not in dropped]
        lines = sign_response_headers(self.partner,
                                      MessageView(request.method, str(request.url),
                                                  request.headers),
                                      response.status_code, base, body)
        headers = [*base, *[(k, v) for k, v in lines if k.lower() != "content-type"]]
        return httpx.Response(response.status_code, headers=headers, content=body,
                              request=request)

    def close(self) -> None:
        self.inner.close()


@pytest.mark.parametrize("resign", [True, False], ids=["signed-truncated", "cut-in-transit"])
def test_a_single_truncated_answer_is_retried_and_raises_no_alarm(
        fed: Federation, resign: bool) -> None:
    us, fr = fed.nodes["us"], fed.nodes["fr"]
    us.ledger.append_many([note(i) for i in range(3)])
    with fed.client("fr", "us") as client:
        assert witness_partner(fr, "us", client).ok
    us.ledger.append_many([note(i) for i in range(6)])  # 3 -> 9: a proof of 3 hashes
    transport = _TruncateOnce(us, resign=resign)
    with open_partner_client(fr, "us", transport=transport) as client:
        result = witness_partner(fr, "us", client)
    assert result.ok and result.cosigned, result.to_json()
    assert transport.consistency_requests == 2  # asked again, once
    assert fr.ledger.alarms() == []


def test_evidence_files_are_read_as_hostile_input(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = base64.b64encode(b"\x01" * 32).decode()
    for content in [b"not json", b"[]", b'{"format": "other"}',
                    orjson.dumps({"format": "detente-evidence/v1", "kind": "bogus"}),
                    orjson.dumps({"format": "detente-evidence/v1", "kind": "inconsistent",
                                  "origin": "detente/us", "detected_at": "x", "detail": "",
                                  "first": "", "second": "",
                                  "response": {"status": 200, "body": "***"}})]:
        path = tmp_path / "e.json"
        path.write_bytes(content)
        r = run(capsys, "log", "check-evidence", str(path), "--key", key)
        assert r.code == 1 and "Traceback" not in r.err, (content, r.err)
    r = run(capsys, "log", "check-evidence", str(path), "--key", "short")
    assert r.code in (1, 2) and "Traceback" not in r.err
