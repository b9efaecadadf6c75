"""The UI in Debian's Chromium (Playwright) against a live uvicorn server on 127.0.0.1.

Screenshots go to ``test-artifacts/web/``; every page is checked with axe-core (its script
comes from the installed ``axe-playwright-python`` package: no network) and must have no
violation at all, whatever its impact.  A missing Chromium fails them with the command that
installs it (``make test`` installs it itself when run as root); only an explicit
``DETENTE_SKIP_BROWSER=1`` outside CI skips them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.web.world import OPERATOR, PASSWORD, build_node, find, leaked_views

from detente.node import Node
from detente.web.app import create_web_app

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
TIMEOUT_MS = 20_000


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def chromium_verdict(path: Path, env: dict[str, str]) -> tuple[str, str] | None:
    """None when Chromium is there; else ("fail" or "skip", the reason with the command)."""
    if path.exists():
        return None
    reason = (f"Debian's Chromium is not installed at {path}: run 'sudo make browser' "
              "(apt-get install chromium), or 'make test' as root, which installs it")
    in_ci = env.get("CI", "").lower() in {"1", "true", "yes"}
    if env.get("DETENTE_SKIP_BROWSER") == "1" and not in_ci:
        return "skip", f"{reason} (skipped: DETENTE_SKIP_BROWSER=1)"
    return "fail", reason + ("" if not in_ci else "; browser tests must run in CI")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    verdict = chromium_verdict(CHROMIUM, dict(os.environ))
    if verdict is not None:
        (pytest.skip if verdict[0] == "skip" else pytest.fail)(verdict[1])
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True,
                               timeout=60_000)
        yield b
        b.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Node]]:
    import uvicorn

    node = build_node(tmp_path_factory.mktemp("web") / "us")
    server = uvicorn.Server(uvicorn.Config(create_web_app(node), host="127.0.0.1", port=0,
                                           log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", node
    server.should_exit = True
    thread.join(10)
    node.close()


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/")
    assert "/login" in page.url
    page.get_by_label("Operator name").fill(OPERATOR)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Password").press("Enter")
    page.get_by_role("heading", name="Dashboard", level=1).wait_for()


@pytest.fixture(scope="module")
def page(browser: Any, live: tuple[str, Node]) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    _log_in(p, live[0])
    yield p
    context.close()


def check(page: Any, name: str) -> None:
    """Screenshot the page and run axe-core on it: no violation of any impact."""
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    violations = Axe().run(page).response["violations"]
    (ARTIFACTS / f"{name}.axe.json").write_text(json.dumps(violations, indent=1))
    assert not violations, "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — "
                                      f"{[n['target'] for n in v['nodes'][:3]]}"
                                      for v in violations)


def no_sideways_scroll(page: Any) -> None:
    """The page is no wider than the window (nothing overflows to the right)."""
    width = page.evaluate("document.documentElement.clientWidth")
    wide = page.evaluate("""() => { const w = document.documentElement.clientWidth;
        return [...document.querySelectorAll('body *')]
          .filter(e => e.getBoundingClientRect().right > w + 1)
          .slice(0, 5).map(e => e.tagName + ' ' + (e.textContent || '').slice(0, 40)); }""")
    assert page.evaluate("document.documentElement.scrollWidth") <= width, wide


def test_login_page_and_wrong_password(browser: Any, live: tuple[str, Node]) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    try:
        p.goto(f"{live[0]}/ledger")
        assert "/login" in p.url
        check(p, "login")
        p.get_by_label("Operator name").fill(OPERATOR)
        p.get_by_label("Password").fill("not the password")
        p.get_by_role("button", name="Log in").click()
        p.get_by_text("Wrong operator name or password").wait_for()
        p.get_by_label("Password").fill(PASSWORD)
        p.get_by_role("button", name="Log in").click()
        p.get_by_role("heading", name="Ledger", level=1).wait_for()  # back where we were
    finally:
        context.close()


def test_dashboard(page: Any, live: tuple[str, Node]) -> None:
    page.goto(f"{live[0]}/")
    for name in ("fr", "ru", "de"):
        assert page.get_by_role("link", name=name, exact=True).first.is_visible()
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Skip to content"  # the first stop of the keyboard
    check(page, "dashboard")


def test_object_matrix(page: Any, live: tuple[str, Node]) -> None:
    base, node = live
    page.goto(f"{base}/objects/{find(node, 'Safe house uplink (France only)')}")
    matrix = page.get_by_role("table", name="The release policy's decision for each partner")
    fr = matrix.get_by_role("row").filter(has=page.get_by_role("rowheader", name="fr"))
    ru = matrix.get_by_role("row").filter(has=page.get_by_role("rowheader", name="ru"))
    assert "allow" in fr.inner_text() and "deny" in ru.inner_text()
    assert page.get_by_text("included:").first.is_visible()
    check(page, "object-matrix")


def test_partner_page(page: Any, live: tuple[str, Node]) -> None:
    page.goto(f"{live[0]}/partners/fr")
    page.get_by_role("heading", name="Partner fr").wait_for()
    assert page.get_by_role("img", name="Sharing with fr, last 14 days").is_visible()
    check(page, "partner-fr")


def test_trace_upload_names_the_leaker(page: Any, live: tuple[str, Node],
                                       tmp_path: Path) -> None:
    base, node = live
    leak = tmp_path / "found-on-a-forum.json"
    leak.write_bytes(leaked_views(node, "de"))
    page.goto(f"{base}/trace")
    check(page, "trace-form")
    page.get_by_label("Leaked file").set_input_files(str(leak))
    page.get_by_role("button", name="Trace").click()
    page.get_by_text("Leaked by de").wait_for(timeout=60_000)
    suspects = page.get_by_role("table", name="Every recipient ranked by score")
    assert "ACCUSED" in suspects.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name="de")).inner_text()
    check(page, "trace-result")


def test_ledger_verification(page: Any, live: tuple[str, Node]) -> None:
    page.goto(f"{live[0]}/ledger")
    page.get_by_role("button", name="Sign a checkpoint now").click()
    page.get_by_text("Signed a checkpoint of size").wait_for()
    assert page.get_by_text("extends the latest signed checkpoint").is_visible()
    check(page, "ledger")


@pytest.mark.parametrize("path", ["/objects", "/deconfliction"])
def test_other_pages_are_accessible(page: Any, live: tuple[str, Node], path: str) -> None:
    page.goto(f"{live[0]}{path}")
    check(page, path.strip("/"))


def test_object_page_relations_and_correlation(page: Any, live: tuple[str, Node]) -> None:
    base, node = live
    page.goto(f"{base}/objects/{find(node, 'Safe house uplink (France only)')}")
    rels = page.get_by_role("table", name="Relationships from and to this object")
    assert "Amaq media office" in rels.inner_text()
    corr = page.get_by_role("table", name="Other reports sharing an observable")
    row = corr.get_by_role("row").filter(has_text="Uplink reported by ru")
    assert "ru" in row.inner_text() and "ipv4-addr 198.51.100.7" in row.inner_text()
    matrix = page.get_by_role("table", name="The release policy's decision for each partner")
    fr = matrix.get_by_role("row").filter(has=page.get_by_role("rowheader", name="fr"))
    assert "fingerprinted" in fr.inner_text() and "TLP:AMBER" in fr.inner_text()
    no_sideways_scroll(page)
    check(page, "object-related")


def test_act_from_the_object_page(page: Any, live: tuple[str, Node]) -> None:
    base, node = live
    target = find(node, "Uplink reported by ru")
    page.goto(f"{base}/objects/{target}")
    page.get_by_label("Times seen").fill("3")
    page.get_by_label("Last seen (UTC, empty: now)").fill("2025-11-06T09:30:00")
    page.get_by_label("Note (optional, travels with the sighting)").fill("proxy logs")
    page.get_by_role("button", name="Seen in our network").click()
    page.get_by_role("status").filter(has_text="Recorded our sighting").wait_for()
    sightings = page.get_by_role("table", name="Sightings of this object")
    assert "proxy logs" in sightings.inner_text() and "2025-11-06 09:30:00 UTC" in \
        sightings.inner_text()
    check(page, "object-sighting-recorded")
    page.get_by_label("Reason (required, recorded in the ledger)").fill("sinkholed in October")
    page.get_by_role("button", name="Refute").click()
    page.get_by_role("status").filter(has_text="Refuted; reports judged from: ru").wait_for()
    check(page, "object-refuted")
    page.get_by_role("button", name="False positive").click()
    page.get_by_role("status").filter(has_text="Recorded our false positive").wait_for()
    assert "false positive" in page.get_by_role(
        "table", name="Sightings of this object").inner_text()


def test_wide_pages_fit_a_laptop(page: Any, live: tuple[str, Node]) -> None:
    base, node = live
    for path in ("/ledger", "/", "/partners/ru", f"/objects/{find(node, 'Public scanner')}"):
        page.goto(f"{base}{path}")
        no_sideways_scroll(page)


def test_partner_figures_are_explained(page: Any, live: tuple[str, Node]) -> None:
    page.goto(f"{live[0]}/partners/fr")
    facts = page.locator("dl.facts").inner_text()
    assert "operator's starting tier (3 · trusted)" in facts
    assert "too little evidence to judge" in facts  # grade F: nothing weighed yet
    assert "awaiting a verdict" in facts and "not weighed" in facts
    assert "Credit" in facts


@pytest.mark.parametrize("path", ["/", "/ledger", "/partners/fr", "/objects", "/trace"])
def test_narrow_screen_never_scrolls_sideways(browser: Any, live: tuple[str, Node],
                                              path: str) -> None:
    context = browser.new_context(viewport={"width": 420, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    p = context.new_page()
    try:
        _log_in(p, live[0])
        p.goto(f"{live[0]}{path}")
        no_sideways_scroll(p)
        check(p, "narrow-" + (path.strip("/").replace("/", "-") or "dashboard"))
    finally:
        context.close()
def test_search_box_and_object_paging(page: Any, live: tuple[str, Node]) -> None:
    base, node = live
    page.goto(f"{base}/")
    page.get_by_role("searchbox", name="Search objects").fill("198.51.100.7")
    page.get_by_role("searchbox", name="Search objects").press("Enter")
    page.get_by_role("heading", name="Search results", level=1).wait_for()
    results = page.get_by_role("table")
    link = results.get_by_role("link", name="Safe house uplink (France only)")
    oid = find(node, "Safe house uplink (France only)")
    assert link.get_attribute("title") == oid and oid in results.inner_text()
    check(page, "search-results")
    page.goto(f"{base}/objects?per_page=10")
    first = page.locator("code.oid").all_inner_texts()
    page.get_by_role("link", name="Next page →").click()
    page.get_by_text("Page 2").wait_for()
    second = page.locator("code.oid").all_inner_texts()
    assert len(first) == len(second) == 10 and not set(first) & set(second)
    page.get_by_label("Type").select_option("threat-actor")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Amaq media office").wait_for()
    assert "type=threat-actor" in page.url
    check(page, "objects-filtered")
