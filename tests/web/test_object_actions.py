"""The object page's relationships, sightings, correlation and fingerprint column, and
acting from it: sighting, false positive, confirm, refute — CSRF-protected and logged."""

from __future__ import annotations

import logging
import re
import uuid
from html import unescape

import pytest
from tests.cli.helpers import run
from tests.web.client import TestClient
from tests.web.conftest import login
from tests.web.world import csrf_of, find

from detente.node import Node
from detente.store import Query
from detente.web.app import create_web_app

UPLINK = "Safe house uplink (France only)"


def _text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)))


def _section(html: str, heading_id: str) -> str:
    start = html.index(f'id="{heading_id}"')
    end = html.find("<section", start)
    return _text(html[start:end if end > 0 else None])


def _sightings_of(node: Node, object_id: str) -> list[dict[str, object]]:
    return [o.body for o in node.store.iter_all(Query(types=("sighting",)))
            if o.body.get("sighting_of_ref") == object_id]


def test_relationships_are_listed_both_ways_with_names(client: TestClient,
                                                       node: Node) -> None:
    uplink, actor = find(node, UPLINK), find(node, "Amaq media office")
    out = _section(client.get(f"/objects/{uplink}").text, "rel-h")
    assert "this → other indicates Amaq media office threat-actor us" in out
    back = _section(client.get(f"/objects/{actor}").text, "rel-h")
    assert f"other → this indicates {UPLINK} indicator us" in back
    assert "No relationship names this object" in _section(
        client.get(f"/objects/{find(node, 'C2 relay 1')}").text, "rel-h")


def test_correlation_lists_every_other_report_of_the_observable_with_who(
        client: TestClient, node: Node) -> None:
    uplink = find(node, UPLINK)
    html = client.get(f"/objects/{uplink}").text
    corr = _section(html, "corr-h")
    assert "Observables: ipv4-addr 198.51.100.7" in corr
    # Russia's report and our own (a /32 is the same address), not unrelated ones
    assert "Uplink reported by ru indicator ru" in corr
    assert "Uplink watch (ours) indicator us" in corr
    assert "C2 relay" not in corr and "Public scanner" not in corr
    # and from Russia's side: ours is listed (the uplink itself was never observed by trust,
    # so only the ingested one shows)
    ru = find(node, "Uplink reported by ru")
    assert "Uplink watch (ours) indicator us" in _section(
        client.get(f"/objects/{ru}").text, "corr-h")
    # a report carrying no observable says so
    actor = find(node, "Amaq media office")
    assert "carries no observable" in _section(client.get(f"/objects/{actor}").text,
                                               "corr-h")


def test_matrix_says_whether_each_view_is_fingerprinted_and_why(client: TestClient,
                                                               node: Node) -> None:
    uplink = _section(client.get(f"/objects/{find(node, UPLINK)}").text, "matrix-h")
    assert "fingerprinted TLP:AMBER: fingerprinted for each partner" in uplink
    assert "nothing released, so nothing to fingerprint" in uplink  # ru and de are denied
    public = _section(client.get(f"/objects/{find(node, 'Public scanner')}").text,
                      "matrix-h")
    assert "unmodified TLP:CLEAR: released unmodified (public content)" in public
    assert "fingerprinted" not in public.replace("unmodified", "")


def _post(client: TestClient, path: str, data: dict[str, str]) -> str:
    object_path = path.rsplit("/", 1)[0]
    token = csrf_of(client.get(object_path).text)
    r = client.post(path, data={"csrf_token": token, **data})
    assert r.status_code == 303 and r.headers["location"] == object_path, r.text
    return client.get(object_path).text


def test_sighting_from_the_ui_is_stored_confirms_and_is_logged(
        client: TestClient, node: Node, caplog: pytest.LogCaptureFixture) -> None:
    ru = find(node, "Uplink reported by ru")
    with caplog.at_level(logging.INFO, logger="detente.web.actions"):
        html = _post(client, f"/objects/{ru}/sighting",
                     {"count": "4", "first_seen": "2025-11-05T10:00", "last_seen":
                      "2025-11-06T11:30:15", "tlp": "red", "note": "proxy logs",
                      "false_positive": "0"})
    assert "Recorded our sighting sighting--" in html and "(count 4)" in html
    [body] = _sightings_of(node, ru)
    assert body["count"] == 4 and body["where_sighted_refs"] == [node.identity_id]
    assert body["first_seen"] == "2025-11-05T10:00:00.000000Z"
    assert body["last_seen"] == "2025-11-06T11:30:15.000000Z"
    assert body["description"] == "proxy logs" and "labels" not in body
    sights = _section(html, "sight-h")
    assert "✔ seen proxy logs us 4 2025-11-05 10:00:00 UTC 2025-11-06 11:30:15 UTC" in sights
    assert [h.kind for h in node.trust.history("ru") if h.object_id == ru][:1] == ["confirmed"]
    assert any("operator alice recorded sighting" in r.getMessage() for r in caplog.records)
    # the flash is shown once
    assert "Recorded our sighting" not in client.get(f"/objects/{ru}").text


def test_false_positive_refutes(client: TestClient, node: Node) -> None:
    ru = find(node, "Uplink reported by ru")
    html = _post(client, f"/objects/{ru}/sighting", {"count": "1", "false_positive": "1"})
    assert "Recorded our false positive" in html
    [body] = _sightings_of(node, ru)
    assert body["labels"] == ["false-positive"] and body["x_false_positive"] is True
    assert "✘ false positive" in _section(html, "sight-h")
    assert "refuted" in [h.kind for h in node.trust.history("ru") if h.object_id == ru]


def test_ui_and_cli_record_the_same_sighting(client: TestClient, node: Node,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ru = find(node, "Uplink reported by ru")
    _post(client, f"/objects/{ru}/sighting", {"count": "2", "last_seen": "2025-11-06T08:00",
                                              "tlp": "amber"})
    r = run(capsys, "evidence", "sighting", ru, "--count", "2", "--last-seen",
            "2025-11-06T08:00Z", "--home", str(node.home))
    assert r.code == 0, r.err
    ui, cli = _sightings_of(node, ru)
    volatile = {"id", "created", "modified"}
    assert {k: v for k, v in ui.items() if k not in volatile} == \
        {k: v for k, v in cli.items() if k not in volatile}


def test_bad_sightings_are_refused_with_the_reason(client: TestClient, node: Node) -> None:
    ru = find(node, "Uplink reported by ru")
    for data, reason in (({"count": "many"}, "count must be a whole number"),
                         ({"count": "-1"}, "count must be 0 to"),
                         ({"first_seen": "2025-11-07T00:00", "last_seen": "2025-11-06T00:00"},
                          "first seen is after last seen"),
                         ({"last_seen": "yesterday"}, "is not a date and time"),
                         ({"tlp": "purple"}, "unknown TLP level")):
        html = _post(client, f"/objects/{ru}/sighting", data)
        assert "Not recorded: " in html and reason in _text(html), data
    assert _sightings_of(node, ru) == []
    rel = next(o.id for o in node.store.iter_all(Query(types=("relationship",))))
    html = _post(client, f"/objects/{rel}/sighting", {"count": "1"})
    assert "relationship objects cannot be sighted" in html


def test_confirm_and_refute_record_the_operator_in_the_ledger(client: TestClient,
                                                              node: Node) -> None:
    ru = find(node, "Uplink reported by ru")
    html = _post(client, f"/objects/{ru}/verdict", {"verdict": "refute",
                                                    "why": "sinkholed since October"})
    assert "Refuted; reports judged from: ru" in _text(html)
    size = node.ledger.size()
    details = [e.detail or "" for _, e in node.ledger.entries(max(0, size - 20), size)]
    assert any("sinkholed since October (operator alice, web UI)" in d for d in details)
    html = _post(client, f"/objects/{ru}/verdict", {"verdict": "confirm", "why": " "})
    assert "Not recorded: a reason is required" in html
    actor = find(node, "Amaq media office")
    html = _post(client, f"/objects/{actor}/verdict", {"verdict": "sure", "why": "x"})
    assert "unknown verdict" in html


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_actions_without_the_session_token_are_refused(client: TestClient, node: Node,
                                                       token: str | None) -> None:
    ru = find(node, "Uplink reported by ru")
    before = node.ledger.size()
    for path, data in ((f"/objects/{ru}/sighting", {"count": "1"}),
                       (f"/objects/{ru}/verdict", {"verdict": "refute", "why": "x"})):
        form = data if token is None else {**data, "csrf_token": token}
        r = client.post(path, data=form)
        assert r.status_code == 403 and "CSRF token missing or wrong" in r.text
    assert _sightings_of(node, ru) == [] and node.ledger.size() == before


def test_another_sessions_token_is_refused_and_login_is_required(node: Node) -> None:
    ru = find(node, "Uplink reported by ru")
    with TestClient(create_web_app(node), follow_redirects=False) as a, \
            TestClient(create_web_app(node), follow_redirects=False) as b, \
            TestClient(create_web_app(node), follow_redirects=False) as anon:
        login(a)
        login(b)
        theirs = csrf_of(b.get(f"/objects/{ru}").text)
        r = a.post(f"/objects/{ru}/sighting", data={"csrf_token": theirs, "count": "1"})
        assert r.status_code == 403
        r = anon.post(f"/objects/{ru}/sighting", data={"csrf_token": theirs, "count": "1"})
        assert r.status_code == 401
    assert _sightings_of(node, ru) == []


def test_opinions_are_shown_and_a_verdict_sends_ours_to_the_source(
        client: TestClient, node: Node) -> None:
    """France's opinion about Russia's report arrives by intake and is shown with its
    reason; our refutation from the UI becomes our opinion, for Russia (the source) and
    those we released the report to."""
    from detente.federation.exchange.intake import Intake, Source
    from detente.opinions import opinion_object

    ru = find(node, "Uplink reported by ru")
    assert "No opinion about this object" in _section(client.get(f"/objects/{ru}").text,
                                                      "opinion-h")
    fr = node.partners.get("fr").identity_id or f"identity--{uuid.uuid4()}"
    theirs, rel = opinion_object(fr, ru, "strongly-disagree",
                                 "a sinkhole since May", [node.identity_id])
    with Intake(node, Source.partner(node, "fr")) as intake:
        assert not intake.receive([rel, theirs]).failures
    html = _post(client, f"/objects/{ru}/verdict", {"verdict": "refute",
                                                    "why": "sinkholed since October"})
    # Russia (the source) and the partners we had released it to; their copies withdrawn
    assert ("Our opinion (strongly-disagree) goes to de, fr, ru. Withdrawn from de, fr: a "
            "report we refuted is never relayed bare.") in _text(html)
    said = _section(html, "opinion-h")
    assert "Fr disputes, we dispute" in said
    assert "a sinkhole since May" in said and "sinkholed since October" in said
    assert f"detente evidence adopt {theirs['id']}" in said
    assert node.trust.opinion_record("fr") == (1, 0, 0)  # France called it right
