"""The RFI inbox, the credit page and the ledger entry page: the same operations and data
as ``detente rfi`` and ``detente credit``, behind the session and the CSRF token."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import orjson
import pytest
from tests.cli.helpers import run
from tests.web.client import TestClient
from tests.web.world import XSS, _indicator, csrf_of, find

from detente.errors import DetenteError
from detente.federation.exchange.intake import Intake, Source
from detente.node import Node
from detente.rfi import answer_note, question_note
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import LOCAL, Provenance

FR_IDENTITY = "identity--0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _from_fr(node: Node, *objs: dict[str, Any]) -> None:
    with Intake(node, Source.partner(node, "fr")) as intake:
        result = intake.receive(list(objs))
    assert not result.failures, result.failures


def _their_rfi(node: Node, text: str, deadline: str) -> str:
    note, rel = question_note(FR_IDENTITY, text, [node.identity_id], deadline=deadline)
    _from_fr(node, rel, note)
    return str(note["id"])


def _post(client: TestClient, path: str, data: dict[str, Any]) -> Any:
    token = csrf_of(client.get("/rfi").text)
    return client.post(path, data={**data, "csrf_token": token})


def _flash(client: TestClient) -> str:
    html = client.get("/rfi").text
    found = re.search(r'<div class="(notice|alert)" role="(?:status|alert)"><p>(.*?)</p>',
                      html, re.S)
    assert found, "no flash on the page"
    return found.group(1) + ": " + unescape(found.group(2))


def test_the_inbox_asks_answers_and_closes_like_the_cli(client: TestClient,
                                                        node: Node) -> None:
    theirs = _their_rfi(node, "Who runs the Amaq media office?", "2020-01-01")
    html = client.get("/rfi").text
    row = re.search(rf'<tr id="{theirs}" class="overdue">(.*?)</tr>', html, re.S)
    assert row and "OVERDUE" in row.group(1) and "Who runs the Amaq" in row.group(1)
    # ask: two partners ticked (a repeated field), a deadline, TLP:AMBER+STRICT
    r = _post(client, "/rfi", {"to": ["fr", "de"], "text": f"Relay owner? {XSS}",
                               "marking": "amber+strict", "deadline": "2031-01-31"})
    assert r.status_code == 303 and r.headers["location"] == "/rfi"
    ours = [x for x in node.rfis.all() if x.ours]
    assert len(ours) == 1 and ours[0].deadline == "2031-01-31T00:00:00Z"
    page = client.get("/rfi").text
    assert XSS not in page and "&lt;script&gt;" in page
    asked = re.search(rf'<tr id="{ours[0].note.id}">(.*?)</tr>', page, re.S)
    assert asked and ">fr<" in asked.group(1) and ">de<" in asked.group(1)
    # answer theirs with an object France may see, and text
    uplink = find(node, "Safe house uplink (France only)")
    r = _post(client, f"/rfi/{theirs}/answer", {"with": uplink, "text": "From Raqqa."})
    assert r.status_code == 303
    assert _flash(client).startswith("notice: Answered")
    (answer,) = node.rfis.get(theirs).answers
    assert answer.provenance.origin == LOCAL and answer.body["object_refs"] == [theirs, uplink]
    # an object the policy does not release to France is refused, named
    red = _indicator(node, "Ours alone", "192.0.2.99", [TLP_2_0_IDS["red"]])
    node.store.put_many([validate(red)], Provenance())
    _post(client, f"/rfi/{theirs}/answer", {"with": red["id"]})
    assert _flash(client).startswith("alert: Not done: the release policy does not release")
    # closing: ours only
    _post(client, f"/rfi/{theirs}/close", {})
    assert "only its author closes it" in _flash(client)
    _post(client, f"/rfi/{ours[0].note.id}/close", {})
    assert node.rfis.get(ours[0].note.id).closed
    row2 = re.search(rf'<tr id="{ours[0].note.id}">(.*?)</tr>', client.get("/rfi").text, re.S)
    assert row2 and "closed" in row2.group(1) and "/close" not in row2.group(1)


def test_an_answer_to_our_rfi_is_shown_with_its_credit_and_proof(
        client: TestClient, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    _post(client, "/rfi", {"to": "fr", "text": "Relay owner?"})
    (ours,) = node.rfis.all()
    note, rel = answer_note(FR_IDENTITY, ours.note, node.identity_id, [], "A reseller.")
    _from_fr(node, rel, note)
    html = client.get("/rfi").text
    link = re.search(r'credited: <a href="/ledger/entries/(\d+)">', html)
    assert link and "A reseller." in html
    entry = client.get(f"/ledger/entries/{link.group(1)}")
    assert entry.status_code == 200
    text = _text(entry.text)
    assert "rfi-answer" in text and note["id"] in text and "Not yet covered" in text
    client.post("/ledger/sign", data={"csrf_token": csrf_of(entry.text)})
    text = _text(client.get(f"/ledger/entries/{link.group(1)}").text)
    assert re.search(r"inclusion proof of \d+ hashes verified", text)
    # the credit page: the same figures as `detente credit --json`, each proof linked
    page = client.get("/credit").text
    r = run(capsys, "credit", "--json", "--home", str(node.home))
    assert r.code == 0, r.err
    cli = {line["partner"]: line for line in orjson.loads(r.out)}
    assert cli["fr"]["rfi_answers"] == 1
    for name, line in cli.items():
        cells = re.search(rf'<tr><th scope="row"><a href="/partners/{name}">{name}</a></th>'
                          r'(.*?)</tr>', page, re.S)
        assert cells, name
        figures = re.findall(r'<td class="num">([^<]*)</td>', cells.group(1))
        assert figures == [str(line[k]) for k in ("first_reports", "corroborated",
                                                  "confirmed", "rfi_answers",
                                                  "proven_priority")] + \
            [f"{line['value']:.1f}"]
        for proof in line["proofs"]:
            assert f'href="/ledger/entries/{proof["ledger_index"]}"' in page
    assert f'href="/ledger/entries/{link.group(1)}"' in page


def test_a_private_rfi_from_the_ui_asks_nobody_it_could_not_decide(
        client: TestClient, node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def unreachable(_node: Node, partner: str, mode: str, spec: Any) -> Any:
        asked.append(f"{partner}:{mode}:{len(spec.items)}")
        raise DetenteError(f"{partner} does not answer")

    monkeypatch.setattr("detente.usecases.rfi.run_query", unreachable)
    _post(client, "/rfi", {"to": ["fr", "ru"], "text": "Who?",
                           "observable": "domain-name:Amaq.example", "psi_mode": "pointer"})
    assert asked == ["fr:pointer:1", "ru:pointer:1"]
    flash = _flash(client)
    assert flash.startswith("alert: No partner holds it: nothing was asked")
    assert "undecided, so not asked: fr, ru" in flash
    assert node.rfis.all() == []
    _post(client, "/rfi", {"text": "Who?", "observable": "amaq.example"})
    assert "is not TYPE:VALUE" in _flash(client)


def test_forms_need_the_session_token_and_ask_needs_partners(client: TestClient,
                                                             node: Node) -> None:
    r = client.post("/rfi", data={"to": "fr", "text": "q", "csrf_token": "forged"})
    assert r.status_code == 403 and node.rfis.all() == []
    _post(client, "/rfi", {"text": "q"})
    assert "choose the partners to ask" in _flash(client)
    _post(client, "/rfi", {"to": "nobody", "text": "q"})
    assert "no partner named 'nobody'" in _flash(client)
    _post(client, "/rfi", {"to": "fr", "text": "q", "deadline": "soonish"})
    assert "is not a date" in _flash(client)
    assert node.rfis.all() == []


def test_ledger_entry_pages_refuse_what_is_not_there(client: TestClient, node: Node) -> None:
    for bad in ("999999", "abc", "-1"):
        r = client.get(f"/ledger/entries/{bad}")
        assert r.status_code == 404 and "no ledger entry" in r.text
    last = node.ledger.size() - 1
    assert f'href="/ledger/entries/{last}">{last}</a>' in client.get("/ledger").text


def test_pages_need_a_session(anon: TestClient) -> None:
    for path in ("/rfi", "/credit", "/ledger/entries/0"):
        r = anon.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert anon.post("/rfi", data={"to": "fr", "text": "q"}).status_code == 401


def test_a_partners_private_rfi_says_why_it_reached_us(client: TestClient, node: Node) -> None:
    note, rel = question_note(FR_IDENTITY, "Who registered it?", [node.identity_id])
    note["x_detente_observable"] = "domain-name:amaq-relay.example"
    _from_fr(node, rel, note)
    row = re.search(rf'<tr id="{note["id"]}">(.*?)</tr>', client.get("/rfi").text, re.S)
    assert row and "asked because we hold domain-name:amaq-relay.example" in _text(
        row.group(1))
