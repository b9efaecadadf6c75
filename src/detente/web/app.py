"""The analyst UI's routes: ``web_routes(node)`` for the node's server, ``create_web_app``
for running the UI alone (tests).

Every page goes through :func:`_endpoint`: (1) the session cookie must name a live
session, else GET redirects to the login page and anything else is refused; (2) the form,
if any, is read within size limits; (3) a POST must carry the session's CSRF token;
(4) the handler runs in a worker thread (the store is synchronous) and any
:class:`DetenteError` becomes an HTML error page with its status.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from detente.errors import DetenteError, ForbiddenError
from detente.federation.http.throttle import (
    PASSWORD_CHECKS,
    PasswordCheckBusy,
    TooManyFailures,
)
from detente.node import Node
from detente.web import actions, finder, pages
from detente.web.context import HERE, SECURITY_HEADERS, Ctx, FormInput, Upload, WebState
from detente.web.sessions import SESSION_TTL, TooManyAttempts, tokens_match

__all__ = ["SESSION_COOKIE", "create_web_app", "web_routes"]

SESSION_COOKIE = "detente_session"
LOGIN_COOKIE = "detente_login"
MAX_BODY = 40 * 2**20
#: form fields per request (the RFI form has one checkbox per partner)
MAX_FIELDS = 400
Handler = Callable[[Ctx], Response]
Endpoint = Callable[[Request], Awaitable[Response]]


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _safe_next(value: str | None) -> str:
    """Only a local path: never an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _error(ctx: Ctx, exc: DetenteError, status: int | None = None) -> Response:
    code = status or (exc.http_status if 400 <= exc.http_status < 600 else 500)
    return ctx.render("error.html", status=code, error=exc)


async def _read_form(request: Request) -> FormInput:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise ForbiddenError(f"request body larger than {MAX_BODY // 2**20} MiB")
    try:
        form = await request.form(max_files=2, max_fields=MAX_FIELDS,
                                  max_part_size=16 * 2**20)
    except MultiPartException as exc:
        raise ForbiddenError(f"unreadable form: {exc.message}") from None
    out: FormInput = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            out[key] = Upload(value.filename or "", await value.read(MAX_BODY + 1))
        elif isinstance(out.get(key), str):  # a repeated field (checkboxes): one per line
            out[key] = f"{out[key]}\n{value}"
        else:
            out[key] = value
    await form.close()
    return out


def _unauthenticated(request: Request) -> Response:
    if request.method == "GET" and not request.url.path.endswith("/status"):
        target = quote(request.url.path, safe="/")
        return RedirectResponse(f"/login?next={target}", status_code=303,
                                headers=SECURITY_HEADERS)
    return JSONResponse({"error": "log in first"}, status_code=401, headers=SECURITY_HEADERS)


def _run(ctx: Ctx, handler: Handler) -> Response:
    if ctx.request.method == "POST" and not tokens_match(
            (ctx.form or {}).get("csrf_token"), ctx.session.csrf if ctx.session else None):
        return _error(ctx, ForbiddenError(
            "this form did not come from this session (CSRF token missing or wrong)",
            hint="reload the page and submit again"), 403)
    try:
        return handler(ctx)
    except DetenteError as exc:
        return _error(ctx, exc)


def _endpoint(state: WebState, handler: Handler) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(state.sessions.lookup, cookie)
        if session is None:
            return _unauthenticated(request)
        ctx = Ctx(request, state, session)
        if request.method == "POST":
            try:
                ctx.form = await _read_form(request)
            except DetenteError as exc:
                return await run_in_threadpool(_error, ctx, exc, 400)
        return await run_in_threadpool(_run, ctx, handler)

    return endpoint


# -- login and logout ---------------------------------------------------------------------

def _login_page(ctx: Ctx, nonce: str, *, error: str | None = None, status: int = 200,
                next_path: str | None = None, user: str = "") -> Response:
    token = ctx.state.sessions.login_token(nonce) or ""
    target = next_path if next_path is not None else ctx.request.query_params.get("next")
    response = ctx.render("login.html", status=status, login_csrf=token, error=error,
                          next=_safe_next(target), user=user)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=1800, httponly=True, samesite="strict",
                        secure=_secure(ctx.request), path="/login")
    return response


def _reserve_login(ctx: Ctx, user: str, client: str) -> tuple[int, int]:
    """Count this attempt against the operator name and the client address *before* the
    password is hashed (in the database: every worker sees it), or refuse it."""
    users, clients = ctx.state.user_limiter, ctx.state.client_limiter
    try:
        users.check(user)
        clients.check(client)
        user_window = users.reserve(user)
        try:
            return user_window, clients.reserve(client)
        except TooManyFailures:
            users.release(user, user_window)
            raise
    except TooManyFailures:
        raise TooManyAttempts("too many failed logins; try again later",
                              hint=f"wait about {users.window_s} s") from None


def _attempt(ctx: Ctx, form: FormInput) -> Response:
    nonce = ctx.request.cookies.get(LOGIN_COOKIE)
    fresh = ctx.state.sessions.login_nonce()
    target = _safe_next(str(form.get("next", "")))
    if not tokens_match(form.get("csrf_token"), ctx.state.sessions.login_token(nonce)):
        return _login_page(ctx, fresh, error="The login form expired or did not come from "
                           "this page. Please try again.", status=403, next_path=target)
    user = str(form.get("name", ""))[:64].strip()
    password = str(form.get("password", ""))[:1024]
    client = ctx.request.client.host if ctx.request.client else "unknown"
    try:
        windows = _reserve_login(ctx, user, client)
    except TooManyAttempts as exc:
        return _login_page(ctx, fresh, error=str(exc), status=429, next_path=target,
                           user=user)
    try:
        verified = bool(user) and PASSWORD_CHECKS.run(ctx.state.operators.verify, user, password)
    except TooManyFailures as exc:
        if isinstance(exc, PasswordCheckBusy):  # never queued: not an attempt
            ctx.state.user_limiter.release(user, windows[0])
            ctx.state.client_limiter.release(client, windows[1])
        return _login_page(ctx, fresh, error=str(exc), status=429, next_path=target,
                           user=user)
    if not verified:
        return _login_page(ctx, fresh, error="Wrong operator name or password.", status=401,
                           next_path=target, user=user)  # the attempts stay counted
    ctx.state.user_limiter.release(user, windows[0])
    ctx.state.client_limiter.release(client, windows[1])
    cookie, _session = ctx.state.sessions.open(user)
    response = RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_TTL, httponly=True,
                        samesite="strict", secure=_secure(ctx.request), path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/login")
    return response


def _login_endpoint(state: WebState) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        ctx = Ctx(request, state, None)
        if request.method == "GET":
            session = await run_in_threadpool(
                state.sessions.lookup, request.cookies.get(SESSION_COOKIE))
            if session is not None:
                return RedirectResponse("/", status_code=303, headers=SECURITY_HEADERS)
            return await run_in_threadpool(_login_page, ctx, state.sessions.login_nonce())
        try:
            form = await _read_form(request)
        except DetenteError as exc:
            return await run_in_threadpool(_error, ctx, exc, 400)
        return await run_in_threadpool(_attempt, ctx, form)

    return endpoint


def _logout(ctx: Ctx) -> Response:
    ctx.state.sessions.close(ctx.request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303, headers=SECURITY_HEADERS)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- assembly -----------------------------------------------------------------------------

def web_routes(node: Node, state: WebState | None = None) -> list[BaseRoute]:
    """The UI's routes, to be mounted at ``/`` next to TAXII's ``/taxii2/``."""
    st = state or WebState.for_node(node)

    def page(handler: Handler, *methods: str) -> dict[str, Any]:
        return {"endpoint": _endpoint(st, handler), "methods": list(methods or ("GET",))}

    return [
        Route("/login", _login_endpoint(st), methods=["GET", "POST"], name="login"),
        Route("/logout", **page(_logout, "POST"), name="logout"),
        Route("/", **page(pages.dashboard), name="dashboard"),
        Route("/objects", **page(finder.objects_list), name="objects"),
        Route("/objects/{object_id}", **page(pages.object_detail), name="object"),
        Route("/objects/{object_id}/sighting", **page(actions.sighting, "POST"),
              name="object_sighting"),
        Route("/objects/{object_id}/verdict", **page(actions.verdict, "POST"),
              name="object_verdict"),
        Route("/partners/{name}", **page(pages.partner), name="partner"),
        Route("/deconfliction", **page(pages.deconfliction, "GET", "POST"),
              name="deconfliction"),
        Route("/trace", **page(pages.trace_form), name="trace"),
        Route("/trace", **page(pages.trace_submit, "POST"), name="trace_submit"),
        Route("/trace/jobs/{job_id}", **page(pages.trace_job), name="trace_job"),
        Route("/trace/jobs/{job_id}/status", **page(pages.trace_status), name="trace_status"),
        Route("/rfi", **page(pages.rfis), name="rfi"),
        Route("/rfi", **page(actions.rfi_ask, "POST"), name="rfi_ask"),
        Route("/rfi/{rfi_id}/answer", **page(actions.rfi_answer, "POST"), name="rfi_answer"),
        Route("/rfi/{rfi_id}/close", **page(actions.rfi_close, "POST"), name="rfi_close"),
        Route("/credit", **page(pages.credit), name="credit"),
        Route("/ledger", **page(pages.ledger), name="ledger"),
        Route("/ledger/entries/{index}", **page(pages.ledger_entry), name="ledger_entry"),
        Route("/ledger/sign", **page(pages.ledger_checkpoint, "POST"),
              name="ledger_sign"),
        Mount("/static", app=StaticFiles(directory=HERE / "static"), name="static"),
    ]


def create_web_app(node: Node) -> Starlette:
    """The UI on its own (the node's server mounts :func:`web_routes` instead)."""
    state = WebState.for_node(node)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        yield
        state.traces.shutdown()

    app = Starlette(routes=web_routes(node, state), lifespan=lifespan)
    app.state.web = state
    return app
