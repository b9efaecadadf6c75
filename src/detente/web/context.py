"""What a page handler is given: the request, the UI's shared state, the session, the form."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from detente.federation.http.throttle import FailureLimiter
from detente.node import Node
from detente.web.data import Missing
from detente.web.facts import fmt_micros, fmt_stix, fmt_time
from detente.web.operators import OperatorBook
from detente.web.sessions import Session, SessionBook
from detente.web.tracejobs import TraceJobs

__all__ = ["SECURITY_HEADERS", "Ctx", "Flash", "Flashes", "Upload", "WebState", "make_env"]

HERE = Path(__file__).parent

#: no inline script or style, nothing from elsewhere, no framing
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
        "object-src 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class Upload:
    filename: str
    data: bytes


FormInput = dict[str, "str | Upload"]


def make_env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.tests["missing"] = lambda value: isinstance(value, Missing)
    env.filters["micros"] = fmt_micros
    env.filters["stixtime"] = fmt_stix
    env.filters["when"] = fmt_time
    return env


@dataclass(frozen=True, slots=True)
class Flash:
    ok: bool
    text: str


class Flashes:
    """One message per session, shown by the next page of that session, then gone."""

    def __init__(self, limit: int = 1000) -> None:
        self._items: OrderedDict[str, Flash] = OrderedDict()
        self._lock = Lock()
        self._limit = limit

    def put(self, session_key: str, flash: Flash) -> None:
        with self._lock:
            self._items[session_key] = flash
            self._items.move_to_end(session_key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def pop(self, session_key: str) -> Flash | None:
        with self._lock:
            return self._items.pop(session_key, None)


@dataclass
class WebState:
    node: Node
    env: jinja2.Environment
    sessions: SessionBook
    operators: OperatorBook
    traces: TraceJobs
    #: failed logins per operator name and per client address, in the database (every
    #: worker counts the same attempts), counted before the password is hashed
    user_limiter: FailureLimiter
    client_limiter: FailureLimiter
    #: the outcome of an action, shown once by the session's next page
    flashes: Flashes = field(default_factory=Flashes)

    @classmethod
    def for_node(cls, node: Node) -> WebState:
        engine = node.store.engine
        return cls(node, make_env(), SessionBook(engine, node.secret_file("web-session.key")),
                   OperatorBook(engine), TraceJobs(node),
                   FailureLimiter(engine, scope="web-user", max_failures=5, window_s=60),
                   FailureLimiter(engine, scope="web-client", max_failures=30, window_s=60))


@dataclass
class Ctx:
    request: Request
    state: WebState
    session: Session | None
    form: FormInput | None = None

    @property
    def node(self) -> Node:
        return self.state.node

    @property
    def operator(self) -> str:
        return self.session.operator if self.session else ""

    def text(self, name: str, limit: int = 16 * 2**20) -> str:
        value = self.form.get(name) if self.form else None
        return value[:limit] if isinstance(value, str) else ""

    def render(self, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = self.state.env.get_template(template).render(
            csrf=self.session.csrf if self.session else "", operator=self.operator,
            path=self.request.url.path, node_name=self.node.name, **values)
        return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
