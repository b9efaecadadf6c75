"""The UI in Debian's Chromium (Playwright) against a live uvicorn server on 127.0.0.1.

Screenshots go to ``test-artifacts/web/``; every page is checked with axe-core and must have
no serious or critical violation.  In CI (``CI=true``) a missing Chromium fails the run; on a
developer machine these tests are skipped with the reason.
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"Debian's Chromium is not installed at {CHROMIUM} (apt install chromium)"
        if _in_ci():
            pytest.fail(f"browser tests must run in CI: {reason}")
        pytest.skip(reason)
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
    """Screenshot the page and run axe-core on it: no serious or critical violation."""
    from axe_playwright_python.sync_playwright import Axe

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    violations = Axe().run(page).response["violations"]
    (ARTIFACTS / f"{name}.axe.json").write_text(json.dumps(violations, indent=1))
    bad = [v for v in violations if v.get("impact") in ("serious", "critical")]
    assert not bad, "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — "
                              f"{[n['target'] for n in v['nodes'][:3]]}" for v in bad)


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
