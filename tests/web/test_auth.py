"""Login, sessions, CSRF and rate limiting of the web UI."""

from __future__ import annotations

import pytest
from tests.web.client import TestClient
from tests.web.conftest import login
from tests.web.world import OPERATOR, PASSWORD, csrf_of

from detente.federation.http.throttle import FailureLimiter, TooManyFailures
from detente.node import Node
from detente.web.app import SESSION_COOKIE, create_web_app
from detente.web.operators import OperatorBook

PAGES = ["/", "/objects", "/objects/indicator--00000000-0000-4000-8000-000000000000",
         "/partners/fr", "/deconfliction", "/trace", "/trace/jobs/abc", "/ledger"]
POSTS = ["/logout", "/deconfliction", "/trace", "/ledger/sign"]


@pytest.mark.parametrize("path", PAGES)
def test_every_page_redirects_to_login_without_a_session(anon: TestClient, path: str) -> None:
    r = anon.get(path)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", POSTS)
def test_posts_without_a_session_are_refused(anon: TestClient, path: str) -> None:
    assert anon.post(path, data={"csrf_token": "x"}).status_code == 401


def test_status_endpoint_answers_401_not_a_redirect(anon: TestClient) -> None:
    assert anon.get("/trace/jobs/abc/status").status_code == 401


def test_login_sets_a_strict_httponly_session_cookie(anon: TestClient) -> None:
    r = login(anon, next_path="/ledger")
    assert r.status_code == 303 and r.headers["location"] == "/ledger"
    cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Max-Age=" in cookie
    assert anon.get("/").status_code == 200


@pytest.mark.parametrize(("name", "password"), [(OPERATOR, "wrong password!"),
                                                ("mallory", PASSWORD), ("", "")])
def test_wrong_credentials_are_refused(anon: TestClient, name: str, password: str) -> None:
    r = login(anon, name, password)
    assert r.status_code == 401
    assert "Wrong operator name or password" in r.text
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    assert anon.get("/").status_code == 303


def test_login_without_or_with_a_wrong_csrf_token_is_refused(anon: TestClient) -> None:
    anon.get("/login")
    r = anon.post("/login", data={"name": OPERATOR, "password": PASSWORD})
    assert r.status_code == 403
    r = anon.post("/login", data={"name": OPERATOR, "password": PASSWORD, "csrf_token": "x"})
    assert r.status_code == 403
    assert anon.get("/").status_code == 303


def test_failed_logins_are_rate_limited_per_user(anon: TestClient) -> None:
    for _ in range(5):
        assert login(anon, OPERATOR, "not the password").status_code == 401
    r = login(anon)  # even the right password waits now
    assert r.status_code == 429 and "too many failed logins" in r.text


def test_limiter_forgets_after_the_window(node: Node) -> None:
    now = [0.0]
    limiter = FailureLimiter(node.store.engine, scope="test", max_failures=2, window_s=60,
                             clock=lambda: now[0])
    limiter.reserve("k")
    limiter.reserve("k")
    with pytest.raises(TooManyFailures, match="too many"):
        limiter.check("k")
    with pytest.raises(TooManyFailures, match="too many"):
        limiter.reserve("k")
    now[0] = 61.0
    limiter.check("k")
    limiter.reserve("k")


def test_a_login_is_counted_before_the_password_is_hashed(anon: TestClient, node: Node,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    """The attempt is in the database while argon2 runs (every worker sees it), and a
    success gives it back."""
    limiter = FailureLimiter(node.store.engine, scope="web-user", max_failures=5)
    seen: list[int] = []
    real = OperatorBook.verify

    def verify(self: OperatorBook, name: str, password: str) -> bool:
        seen.append(limiter.failures(name))
        return real(self, name, password)

    monkeypatch.setattr(OperatorBook, "verify", verify)
    assert login(anon, OPERATOR, "not the password").status_code == 401
    assert seen == [1] and limiter.failures(OPERATOR) == 1
    anon.cookies.clear()
    assert login(anon).status_code == 303
    assert seen == [1, 2] and limiter.failures(OPERATOR) == 1


def test_open_redirects_are_refused(anon: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        anon.cookies.clear()
        page = anon.get("/login")
        r = anon.post("/login", data={"name": OPERATOR, "password": PASSWORD, "next": target,
                                      "csrf_token": csrf_of(page.text)})
        assert r.headers["location"] == "/"


@pytest.mark.parametrize("token", [None, "", "wrong"])
def test_post_without_the_session_csrf_token_is_403(client: TestClient, node: Node,
                                                    token: str | None) -> None:
    size_before = node.ledger.latest_checkpoint()
    data = {} if token is None else {"csrf_token": token}
    r = client.post("/ledger/sign", data=data)
    assert r.status_code == 403 and "CSRF" in r.text
    assert node.ledger.latest_checkpoint() == size_before


def test_post_with_the_csrf_token_works(client: TestClient, node: Node) -> None:
    token = csrf_of(client.get("/ledger").text)
    r = client.post("/ledger/sign", data={"csrf_token": token})
    assert r.status_code == 303
    cp = node.ledger.latest_checkpoint()
    assert cp is not None and r.headers["location"] == f"/ledger?signed={cp.size}"
    assert f"Signed a checkpoint of size {cp.size}" in client.get(r.headers["location"]).text


def test_logout_ends_the_session_for_good(client: TestClient, node: Node) -> None:
    cookie = client.cookies[SESSION_COOKIE]
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    with TestClient(create_web_app(node), follow_redirects=False) as other:
        other.cookies.set(SESSION_COOKIE, cookie)
        assert other.get("/").status_code == 303  # a copied cookie died with the session


def test_forged_and_tampered_cookies_are_refused(anon: TestClient) -> None:
    login(anon)
    real = anon.cookies[SESSION_COOKIE]
    sid, _, mac = real.rpartition(".")
    flipped = "B" if sid[-1] == "A" else "A"  # always a different last character
    for forged in (f"{sid}.{'0' * len(mac)}", f"{sid[:-1]}{flipped}.{mac}", "garbage", ""):
        assert forged != real
        anon.cookies.set(SESSION_COOKIE, forged)
        assert anon.get("/").status_code == 303


def test_removing_an_operator_ends_its_sessions(client: TestClient, node: Node) -> None:
    from detente.web.sessions import SessionBook

    OperatorBook(node.store.engine).remove(OPERATOR)
    SessionBook(node.store.engine, node.secret_file("web-session.key")).close_all(OPERATOR)
    assert client.get("/").status_code == 303


def test_pages_carry_security_headers(client: TestClient) -> None:
    r = client.get("/")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"


def test_passwords_are_argon2id_hashed(node: Node) -> None:
    import sqlalchemy as sa

    with node.store.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash FROM web_operators")).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_routes_mount_in_the_node_server_next_to_taxii(node: Node) -> None:
    from detente.federation.taxii.server import create_app
    from detente.web.app import web_routes

    with TestClient(create_app(node, extra_routes=web_routes(node)),
                    follow_redirects=False) as c:
        assert c.get("/").headers["location"] == "/login?next=/"
        assert login(c).status_code == 303
        assert c.get("/ledger").status_code == 200
        assert c.get("/taxii2/").status_code == 401  # TAXII keeps its own authentication
