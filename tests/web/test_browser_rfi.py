"""The RFI inbox and the credit page in Chromium (Playwright), against a live server: ask,
see the deadline pass, answer a partner's RFI, close ours, follow a credit to its ledger
entry — each page checked with axe-core (see ``test_browser.py``)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.web import test_browser as tb
from tests.web.world import find

from detente.federation.exchange.intake import Intake, Source
from detente.node import Node
from detente.rfi import answer_note, question_note

pytestmark = [pytest.mark.browser, pytest.mark.live]

browser, live, page = tb.browser, tb.live, tb.page
FR_IDENTITY = "identity--0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9"


def _from_fr(node: Node, *objs: dict[str, Any]) -> None:
    with Intake(node, Source.partner(node, "fr")) as intake:
        assert not intake.receive(list(objs)).failures


def test_rfi_inbox(page: Any, live: tuple[str, Node]) -> None:
    base, node = live
    note, rel = question_note(FR_IDENTITY, "Who runs the Amaq media office?",
                              [node.identity_id], deadline="2020-01-01")
    _from_fr(node, rel, note)
    page.goto(f"{base}/rfi")
    page.get_by_role("heading", name="Requests for information", level=1).wait_for()
    asked_of_us = page.get_by_role("table", name="Partners' RFIs to this node")
    row = asked_of_us.get_by_role("row").filter(has_text="Who runs the Amaq media office?")
    assert "OVERDUE" in row.inner_text() and "overdue" in (row.get_attribute("class") or "")
    tb.check(page, "rfi-inbox")
    # answer France's RFI with an object it may see
    uplink = find(node, "Safe house uplink (France only)")
    row.get_by_label("Objects offered (STIX ids, one per line)").fill(uplink)
    row.get_by_label("Answer").fill("Run from Raqqa; see the uplink.")
    row.get_by_role("button", name="Answer fr").click()
    page.get_by_role("status").filter(has_text="Answered").wait_for()
    assert [a.body["object_refs"] for a in node.rfis.get(str(note["id"])).answers] == [
        [note["id"], uplink]]
    # ask France and Germany, with a deadline already past
    page.get_by_role("checkbox", name="fr").check()
    page.get_by_role("checkbox", name="de").check()
    page.get_by_label("Question", exact=True).fill("Who registered amaq-relay.example?")
    page.get_by_label("Marking of the question").select_option("amber+strict")
    page.get_by_label("Deadline (optional").fill("2021-06-30")
    page.get_by_role("button", name="Ask", exact=True).click()
    page.get_by_role("status").filter(has_text="Asked de, fr").wait_for()
    ours = page.get_by_role("table", name="Our RFIs").get_by_role("row").filter(
        has_text="Who registered amaq-relay.example?")
    assert "OVERDUE" in ours.inner_text() and "de, fr" in ours.inner_text()
    tb.check(page, "rfi-asked")
    # France's answer arrives: credited, and the credit links to its ledger entry
    (mine,) = [r for r in node.rfis.all() if r.ours]
    answer, marking = answer_note(FR_IDENTITY, mine.note, node.identity_id, [],
                                  "A reseller in Gaziantep.")
    _from_fr(node, marking, answer)
    page.reload()
    ours.get_by_role("button", name="Close").click()
    page.get_by_role("status").filter(has_text="Closed").wait_for()
    assert "closed" in ours.inner_text() and "OVERDUE" not in ours.inner_text()
    ours.get_by_role("link", name="ledger entry").click()
    page.get_by_role("heading", name="Ledger entry").wait_for()
    assert "rfi-answer" in page.locator("dl.facts").inner_text()
    tb.check(page, "ledger-entry")


def test_credit_page(page: Any, live: tuple[str, Node]) -> None:
    base, _node = live
    page.goto(f"{base}/credit")
    table = page.get_by_role("table", name="Credit per partner")
    for name in ("fr", "ru", "de"):
        assert table.get_by_role("rowheader", name=name).is_visible()
    tb.check(page, "credit")
    tb.no_sideways_scroll(page)


@pytest.mark.parametrize("path", ["/rfi", "/credit"])
def test_narrow_rfi_pages(browser: Any, live: tuple[str, Node], path: str) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 900})
    context.set_default_timeout(tb.TIMEOUT_MS)
    p = context.new_page()
    try:
        tb._log_in(p, live[0])
        p.goto(f"{live[0]}{path}")
        tb.no_sideways_scroll(p)
        tb.check(p, "narrow-" + path.strip("/"))
    finally:
        context.close()
