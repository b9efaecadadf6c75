"""Each page with data and empty; escaping; the trace flow; deconfliction; the CLI."""

from __future__ import annotations

import time
from html import escape
from typing import Any

import pytest
from tests.cli.helpers import run
from tests.web.client import TestClient
from tests.web.world import XSS, csrf_of, find, leaked_views

from detente.node import Node
from detente.web import data, deconf


def test_dashboard_with_data(client: TestClient, node: Node) -> None:
    html = client.get("/").text
    for name in ("fr", "ru", "de"):
        assert f'href="/partners/{name}"' in html
    assert "3 · trusted" in html and "1 · probation" in html
    # recent releases name their objects, the id on hover
    report = find(node, "Raqqa C2 infrastructure")
    assert f'title="{report}">Raqqa C2 infrastructure</a>' in html
    assert "Relay seen by fr" in html  # the inbox
    assert "No alarms" in html


def test_dashboard_empty_explains_what_to_do(empty_client: TestClient) -> None:
    html = empty_client.get("/").text
    assert "No partners yet" in html and "detente partner add" in html
    assert "Nothing received yet" in html and "Nothing released yet" in html


def test_object_page_shows_the_matrix_with_reasons(client: TestClient, node: Node) -> None:
    oid = find(node, "Safe house uplink (France only)")
    html = client.get(f"/objects/{oid}").text
    assert "Who can see this, and why" in html
    rows = {name: html.index(f'<th scope="row"><a href="/partners/{name}">') for name in
            ("fr", "ru", "de")}
    assert "✔ allow" in html[rows["fr"]:] and "✘ deny" in html[rows["ru"]:]
    assert "TLP:AMBER" in html and "to fr" in html
    assert "included: " in html and "verified against the" in html  # release to fr, proved
    assert "&#34;type&#34;: &#34;indicator&#34;" in html or "&quot;type&quot;" in html


def test_unknown_object_is_a_404_page(client: TestClient) -> None:
    r = client.get("/objects/indicator--00000000-0000-4000-8000-000000000000")
    assert r.status_code == 404 and "no object" in r.text and "<html" in r.text


def test_objects_list_and_filter(client: TestClient, empty_client: TestClient) -> None:
    assert "C2 relay 3" in client.get("/objects?type=indicator").text
    assert "No objects match with these filters" in empty_client.get("/objects?type=report").text


def test_partner_page(client: TestClient) -> None:
    html = client.get("/partners/fr").text
    assert "Partner fr" in html and "Sharing in both directions" in html
    assert "<svg" in html and "<title" in html and "<desc" in html  # the chart, labelled
    assert "Relay seen by fr" in html  # received from fr
    assert "Evidence timeline" in html and "Echoes flagged" in html
    assert client.get("/partners/nobody").status_code == 404


def test_ledger_page(client: TestClient, empty_client: TestClient) -> None:
    html = client.get("/ledger").text
    assert "No checkpoint signed yet" in html
    token = csrf_of(html)
    client.post("/ledger/sign", data={"csrf_token": token})
    html = client.get("/ledger").text
    assert "extends the latest signed checkpoint" in html and "detente/us" in html
    assert "never witnessed" in html  # partners' logs not seen yet
    assert "No partners, so no logs to witness" in empty_client.get("/ledger").text


def test_xss_in_object_names_is_escaped_everywhere(client: TestClient, node: Node) -> None:
    oid = find(node, XSS)
    received = find(node, f"Relay seen by fr {XSS}")
    for path in ("/", "/objects", f"/objects/{oid}", f"/objects/{received}", "/partners/fr"):
        html = client.get(path).text
        assert XSS not in html, path
        assert "<script>alert" not in html, path
    assert escape(XSS, quote=False).replace("'", "&#39;") in client.get(f"/objects/{oid}").text


def _wait(client: TestClient, location: str, limit: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = client.get(f"{location}/status").json()
        if status["done"]:
            return status  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError("trace did not finish")


def test_trace_upload_names_the_leaker(client: TestClient, node: Node) -> None:
    token = csrf_of(client.get("/trace").text)
    r = client.post("/trace", data={"csrf_token": token, "format": ""},
                    files={"artifact": ("leak.json", leaked_views(node, "de"), "text/plain")})
    assert r.status_code == 303
    page = r.headers["location"]
    assert _wait(client, page)["state"] == "done"
    html = client.get(page).text
    assert "Leaked by de" in html and "ACCUSED" in html
    assert "verified (" in html and "FAILED" not in html


def test_a_trace_finishing_while_its_page_is_built_renders(
    client: TestClient, node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker may finish between the page reading the job and rendering it: the page
    shows one consistent state (it crashed with "'None' has no attribute 'report'")."""
    from detente.usecases.trace import trace_artifact
    from detente.web import pages
    from detente.web.tracejobs import TraceJobs

    held: list[Any] = []
    monkeypatch.setattr(TraceJobs, "_run", lambda self, job, data, fmt: held.append(job))
    real_names = pages.facts.names_of

    def finish_meanwhile(*args: Any, **kwargs: Any) -> Any:
        for job in held:  # the worker completes right now
            job.outcome = trace_artifact(node, leaked_views(node, "de"))
            job.state, job.stage = "done", "finished"
        return real_names(*args, **kwargs)

    monkeypatch.setattr(pages.facts, "names_of", finish_meanwhile)
    token = csrf_of(client.get("/trace").text)
    r = client.post("/trace", data={"csrf_token": token, "format": "",
                                    "pasted": leaked_views(node, "de").decode()})
    first = client.get(r.headers["location"])
    assert first.status_code == 200 and "Tracing" in first.text  # the state it read
    again = client.get(r.headers["location"])
    assert again.status_code == 200 and "Leaked by de" in again.text


def test_trace_paste_and_errors(client: TestClient, node: Node, empty_client: TestClient) -> None:
    token = csrf_of(client.get("/trace").text)
    r = client.post("/trace", data={"csrf_token": token, "format": "",
                                    "pasted": leaked_views(node, "fr").decode()})
    _wait(client, r.headers["location"])
    assert "Leaked by fr" in client.get(r.headers["location"]).text
    r = client.post("/trace", data={"csrf_token": token, "format": ""})
    assert r.status_code == 400 and "no artifact given" in r.text
    r = client.post("/trace", data={"csrf_token": token, "format": "exe", "pasted": "x"})
    assert r.status_code == 400
    # a job belongs to the operator's session: another node's client cannot see it
    assert empty_client.get(r.headers.get("location", "/trace/jobs/x")).status_code in (
        404, 405)


def test_deconfliction_refuses_bad_items(client: TestClient) -> None:
    token = csrf_of(client.get("/deconfliction").text)
    r = client.post("/deconfliction", data={"csrf_token": token, "partner": "fr",
                                            "mode": "intersection", "kind": "ipv4-addr",
                                            "items": "10.0.0.1\nnot an address"})
    assert r.status_code == 400 and "line 2" in r.text


def test_deconfliction_result_renders(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    class Outcome:
        sent, responder_size, count, ledger_index = 2, 40, 1, 7
        matches, pointers = ("198.51.100.7",), None

    def fake_run(node: Node, partner: str, mode: str, spec: Any) -> Outcome:
        seen.append((partner, mode, spec.kind, len(spec.items)))
        return Outcome()

    monkeypatch.setattr(data, "deconflict_runner", lambda: fake_run)
    token = csrf_of(client.get("/deconfliction").text)
    r = client.post("/deconfliction", data={"csrf_token": token, "partner": "fr",
                                            "mode": "intersection", "kind": "ipv4-addr",
                                            "items": "198.51.100.7\n10.1.1.1"})
    assert r.status_code == 200, r.text
    assert seen == [("fr", "intersection", "observables", 2)]
    assert "<strong>1</strong> of the 2 sent" in r.text and "198.51.100.7" in r.text
    assert "entry #7" in r.text


def test_deconfliction_empty(empty_client: TestClient) -> None:
    assert "No partners to ask yet" in empty_client.get("/deconfliction").text


def test_encode_items_dedupes_and_expands() -> None:
    items = deconf.encode_items("ipv4-addr", "10.0.0.0/30\n10.0.0.1\n\n")
    assert len(items) == 4


def test_operator_cli(node: Node, capsys: pytest.CaptureFixture[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    home = str(node.home)
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    r = run(capsys, "operator", "add", "bob", "--home", home, "--password-stdin")
    assert r.code == 0, r.err
    assert "bob" in run(capsys, "operator", "list", "--home", home).out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    r = run(capsys, "operator", "add", "carol", "--home", home, "--password-stdin")
    assert r.code != 0 and "at least" in r.err
    monkeypatch.setattr("sys.stdin", io.StringIO("a long enough secret\n"))
    r = run(capsys, "operator", "add", "bob", "--home", home, "--password-stdin")
    assert r.code != 0 and "already exists" in r.err
    assert run(capsys, "operator", "remove", "bob", "--home", home).code == 0
    assert run(capsys, "operator", "remove", "bob", "--home", home).code != 0


def test_ledger_shows_the_cosignatures_partners_handed_back(client: TestClient,
                                                           node: Node) -> None:
    import base64

    from nacl.signing import SigningKey

    from detente.federation.witnessing.cosignatures import CosignatureBook
    from detente.ledger import Cosignature

    key, forger = SigningKey.generate(), SigningKey.generate()
    node.partners.add("nl", url="https://nl.example", tier=1,
                      public_key=base64.b64encode(bytes(key.verify_key)).decode())
    cp = node.ledger.checkpoint()
    book = CosignatureBook(node.store.engine)
    book.add(cp, Cosignature.create(cp, key, "detente/nl", timestamp=10))
    book.add(cp, Cosignature.create(cp, forger, "detente/de", timestamp=10))  # not de's key
    html = client.get("/ledger").text
    row = html[html.index(f'<td class="num">{cp.size}</td>'):]
    row = row[:row.index("</tr>")]
    assert "detente/nl" in row and "no cosignature yet" not in row
    assert "detente/de" not in row.split("signed note")[0] and "1 unknown key" in row


def test_empty_trend_says_what_it_needs_without_template_text(client: TestClient) -> None:
    html = client.get("/partners/de").text
    assert "This page calls" not in html
    assert "No reliability trend yet</strong>: it needs two refreshes of its evidence" in html


def test_times_and_versions_are_readable(client: TestClient, node: Node) -> None:
    html = client.get(f"/objects/{find(node, 'Safe house uplink (France only)')}").text
    assert "000000000Z</" not in html and "2025-11-05 00:00:00 UTC" in html
    assert 'title="2025-11-05T00:00:00.000000000Z"' in html  # the exact value on hover


def test_deconfliction_coalition_run_renders(client: TestClient,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from typing import ClassVar

    from detente.deconflict.coalition import ContactPointer, new_run

    seen: list[Any] = []

    class Outcome:
        spec = new_run("us", ["fr"], 2, "observables")
        matched = ("198.51.100.7",)
        pointers: ClassVar[dict[str, tuple[ContactPointer, ...]]] = {
            "198.51.100.7": (ContactPointer("fr", "h-1", "desk@fr"),)}
        ledger_index, seconds = 9, 1.0

    def fake_run(node: Node, partners: list[str], threshold: int, spec: Any,
                 mode: str, reconstructor: str | None) -> Outcome:
        seen.append((partners, threshold, spec.kind, len(spec.items), mode, reconstructor))
        return Outcome()

    monkeypatch.setattr(deconf, "coalition_runner", lambda: fake_run)
    token = csrf_of(client.get("/deconfliction").text)
    form = {"csrf_token": token, "form": "coalition", "with-fr": "on", "threshold": "2",
            "kind": "ipv4-addr", "items": "198.51.100.7\n10.1.1.1", "pointer": "on"}
    r = client.post("/deconfliction", data=form)
    assert r.status_code == 200, r.text
    assert seen == [(["fr"], 2, "observables", 2, "pointer", None)]
    assert "<strong>1</strong> of your 2 items" in r.text and "desk@fr" in r.text
    assert 'name="reconstructor"' in r.text and "(a participant: threshold 2)" in r.text
    r = client.post("/deconfliction", data={**form, "threshold": "3"})
    assert r.status_code == 400 and "threshold must be a number from 2 to 2" in r.text
    r = client.post("/deconfliction", data={k: v for k, v in form.items() if k != "with-fr"})
    assert r.status_code == 400 and "choose at least one partner" in r.text
    # threshold 3 fails closed without a reconstructor holding no items
    three = {**form, "with-ru": "on", "threshold": "3"}
    r = client.post("/deconfliction", data=three)
    assert r.status_code == 400 and "needs a reconstructor that holds no items" in r.text
    assert "--reconstructor NODE" in r.text
    r = client.post("/deconfliction", data={**three, "reconstructor": "fr"})
    assert r.status_code == 400 and "fr holds items in this run" in r.text
    assert len(seen) == 1  # neither was run
    r = client.post("/deconfliction", data={**form, "reconstructor": "ru"})
    assert r.status_code == 200 and seen[-1][-1] == "ru"
