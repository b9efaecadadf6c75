"""The Objects page: search, filters and paging (the store's search, see tests/store)."""

from __future__ import annotations

import re
from unittest.mock import patch

from tests.web.client import TestClient
from tests.web.world import XSS

from detente.node import Node
from detente.store import Find, Query
from detente.web import finder

ROW_ID = re.compile(r'<code class="oid">([^<]+)</code>')


def _ids(html: str) -> list[str]:
    return ROW_ID.findall(html)


def test_pages_differ_and_cover_everything(client: TestClient, node: Node) -> None:
    first = client.get("/objects?per_page=10")
    second = client.get("/objects?per_page=10&page=2")
    assert first.status_code == second.status_code == 200
    a, b = _ids(first.text), _ids(second.text)
    assert len(a) == 10 and len(b) == 10 and not set(a) & set(b)
    assert 'href="/objects?per_page=10&amp;page=2"' in first.text  # next
    assert 'rel="prev"' in second.text
    seen, page = [], 1
    while True:
        html = client.get(f"/objects?per_page=10&page={page}").text
        seen += _ids(html)
        if 'rel="next"' not in html:
            break
        page += 1
    assert len(seen) == len(set(seen)) == len(node.store.find(Find(limit=1000)).hits)


def test_search_by_value_and_name_shows_name_with_id(client: TestClient) -> None:
    html = client.get("/objects?q=198.51.100.7").text
    assert "Safe house uplink (France only)" in html
    # and our own watch on 198.51.100.7/32 (the same address, normalised) and ru's report
    assert "Uplink watch (ours)" in html and "Uplink reported by ru" in html
    assert len(_ids(html)) == 3
    assert all(f'title="{oid}"' in html for oid in _ids(html)) and "Search results" in html
    html = client.get("/objects?q=raqqa+beaconing&type=indicator&per_page=10").text
    assert len(_ids(html)) == 10 and 'rel="next"' in html
    assert "No objects match" in client.get("/objects?q=nothing.example").text


def test_filters(client: TestClient) -> None:
    fr = client.get("/objects?origin=fr").text
    assert len(_ids(fr)) == 1 and "Relay seen by fr" in fr
    amber = client.get("/objects?marking=amber").text
    assert "Safe house uplink" in amber and "C2 relay" not in amber
    actors = client.get("/objects?type=threat-actor").text
    assert _ids(actors) and "Amaq media office" in actors and "C2 relay" not in actors
    assert "No objects match with these filters" in client.get(
        "/objects?type=report&origin=ru").text


def test_credibility_filter_uses_trust_grades(client: TestClient, node: Node) -> None:
    node.trust.observe(list(node.store.iter_all(Query())))
    grades = node.trust.credibility_of(o.id for o in node.store.iter_all(Query()))
    assert grades, "the world grades at least one object"
    level = str(next(iter(grades.values())))
    want = {oid for oid, c in grades.items() if str(c) == level}
    html = client.get(f"/objects?credibility={level}&per_page=500").text
    assert set(_ids(html)) == want and "Credibility was checked" not in html
    # graded a chunk of candidates at a time: the same objects, in the same order
    with patch.object(finder, "CHUNK", 2):
        assert _ids(client.get(f"/objects?credibility={level}&per_page=500").text) == \
            _ids(html)
    # pages of the filtered list: each object once, in order
    pages = [_ids(client.get(f"/objects?credibility={level}&per_page=10&page={n}").text)
             for n in range(1, len(want) // 10 + 2)]
    assert [oid for page in pages for oid in page] == _ids(html)


def test_credibility_scan_is_bounded_and_says_so(client: TestClient, node: Node) -> None:
    """At most SCAN candidates are graded per request; the page says when it stopped."""
    node.trust.observe(list(node.store.iter_all(Query())))
    listed = _ids(client.get("/objects?per_page=500").text)
    grades = node.trust.credibility_of(listed)
    k = max(i for i, oid in enumerate(listed) if oid in grades)  # the oldest graded
    level = str(grades[listed[k]])
    with patch.object(finder, "SCAN", k), patch.object(finder, "CHUNK", 3):
        html = client.get(f"/objects?credibility={level}&per_page=500").text
    assert "Credibility was checked for the first" in html
    assert listed[k] not in _ids(html)  # beyond the scan: not reached, and said so
    assert set(_ids(html)) == {o for o in listed[:k] if str(grades.get(o)) == level}


def test_bad_input_is_a_clear_400(client: TestClient) -> None:
    for query, text in (("page=0", "not a page number"), ("page=x", "not a page number"),
                        ("marking=purple", "unknown marking filter"),
                        ("credibility=9", "unknown credibility filter"),
                        ("q=%21%21%21", "nothing to search for"),
                        ("per_page=100000", "not between")):
        r = client.get(f"/objects?{query}")
        assert r.status_code == 400 and text in r.text, query


def test_search_output_is_escaped(client: TestClient) -> None:
    html = client.get("/objects?q=%3Cscript%3E").text
    assert "<script>alert" not in html
    assert XSS not in html


def test_nav_has_a_labelled_search_box(client: TestClient) -> None:
    html = client.get("/").text
    assert 'role="search"' in html and '<label for="nav-q"' in html and 'id="nav-q"' in html


def test_search_needs_login(anon: TestClient) -> None:
    r = anon.get("/objects?q=198.51.100.7")
    assert r.status_code in (302, 303) and "/login" in r.headers["location"]
