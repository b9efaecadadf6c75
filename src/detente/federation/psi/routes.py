"""Private deconfliction over HTTP: the responder side of the PSI protocol.

Signed partner requests only. Bodies are PSI messages as bytes (``application/octet-stream``,
see :mod:`detente.deconflict.messages`); refusals are TAXII error messages.

* ``POST /deconflict/query?items=K[&grid=G]`` — body: step (1) ``QueryMessage``; answer:
  step (2) ``ResponseMessage``. ``K`` is ``observables``, ``names``, ``operations`` or
  ``alignment``; the modes each kind is offered in are this node's policy
  (:data:`~detente.federation.psi.sets.DEFAULT_MODES`: operations in pointer mode
  only, alignment in cardinality only); ``G`` the place-and-time grid (``r8:d500:b3600:s0``).
* ``POST /deconflict/sessions/{session id hex}/reveal`` — every mode but intersection; body:
  step (3) ``RevealMessage``; answer: step (4) ``OpeningMessage``.

Per request: (1) parse and validate the message (malformed, truncated, wrong type or step,
wrong session → 400; a mode the kind is not offered in → 400, recorded as refused);
(2) check the partner's budget and claim the session id (429 with the limit named; a
replayed session id → 400); (3) answer over this node's own items of that kind; (4) record
the session — mode, sizes, counts, outcome, never items — in the ledger as a
``deconfliction`` entry about that partner, refused and aborted ones included. A session the
partner leaves after step (2) is recorded ``aborted`` once it expires (checked on every
request, :func:`aborted_sessions` also counts expired pending ones), never left pending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from detente.deconflict import (
    Budgets,
    Mode,
    OpeningMessage,
    Outcome,
    ProtocolError,
    QueryMessage,
    Responder,
    ResponseMessage,
    RevealMessage,
    Role,
    SessionRecord,
    SqlBudgetBook,
    WrongModeError,
    parse_message,
)
from detente.errors import NotFoundError, ValidationError
from detente.federation.http.auth import read_body
from detente.federation.http.endpoint import partner_endpoint
from detente.federation.psi.budgets import BudgetTable
from detente.federation.psi.sets import (
    DEFAULT_MODES,
    KINDS,
    SESSION_HANDLE_KEY_FILE,
    own_set,
    parse_grid,
)
from detente.ledger import Entry
from detente.node import Node
from detente.store.engine import writer

__all__ = ["PSI_MEDIA", "aborted_sessions", "deconflict_routes", "session_entry"]

PSI_MEDIA = "application/octet-stream"
_PENDING_TTL_S = 600.0
_MAX_PENDING = 256
_MAX_REASON = 400


def session_entry(record: SessionRecord, kind: str) -> Entry:
    """The ledger entry of one session: the record (never items) and the item kind."""
    doc = record.to_dict()
    doc["items"] = kind
    if doc.get("reason"):
        doc["reason"] = str(doc["reason"])[:_MAX_REASON]
    detail = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()
    return Entry(kind="deconfliction", time=record.at, partner=record.partner, detail=detail)


def _hostile_entry(partner: str, kind: str, step: int, reason: str,
                   outcome: str = "aborted") -> Entry:
    """A message too broken to name its session: still recorded (probing shows)."""
    doc = {"role": "responder", "partner": partner, "items": kind, "outcome": outcome,
           "step": step, "reason": reason[:_MAX_REASON]}
    return Entry(kind="deconfliction", time=datetime.now(UTC), partner=partner,
                 detail=orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode())


@dataclass
class _Waiting:
    responder: Responder
    partner: str
    kind: str
    expires: float


def aborted_sessions(node: Node, partner: str | None = None, *,
                     now: datetime | None = None) -> list[dict[str, Any]]:
    """Deconfliction sessions that ended ``aborted`` (oldest first), per this node's ledger,
    counting a session still ``pending`` after the reveal deadline as aborted too (e.g. the
    server stopped before it could record it). Each: the last record, as in the ledger."""
    now = now or datetime.now(UTC)
    last: dict[str, dict[str, Any]] = {}
    for _i, e in node.ledger.entries():
        if e.kind != "deconfliction" or (partner is not None and e.partner != partner):
            continue
        doc = orjson.loads(e.detail or "{}")
        if isinstance(doc, dict) and doc.get("session_id"):
            last[str(doc["session_id"])] = doc
    out = []
    for doc in last.values():
        stale = doc.get("outcome") == Outcome.PENDING.value and (
            now - datetime.fromisoformat(str(doc["at"]))).total_seconds() > _PENDING_TTL_S
        if stale:
            doc = {**doc, "outcome": Outcome.ABORTED.value,
                   "reason": "abandoned by the partner after step 2 (expired)"}
        if doc.get("outcome") == Outcome.ABORTED.value:
            out.append(doc)
    return out


class _DeconflictService:
    def __init__(self, node: Node, budgets: Budgets | None, contact: str | None,
                 clock: Callable[[], float], modes: dict[str, frozenset[Mode]]) -> None:
        self.node = node
        self.modes = modes
        self.fixed_budgets = budgets
        self.table = BudgetTable(node.store.engine)
        self.book = SqlBudgetBook(writer(node.store.engine))
        self.contact = contact
        self.clock = clock
        self.waiting: dict[bytes, _Waiting] = {}
        self.lock = threading.Lock()

    def _record(self, kind: str) -> Callable[[SessionRecord], None]:
        def record(rec: SessionRecord) -> None:
            self.node.ledger.append(session_entry(rec, kind))
            if rec.outcome is Outcome.ABORTED and rec.role is Role.RESPONDER:
                # a crafted message, a broken reveal, or a session left after step (2):
                # the partner deviated (evidence; repeated, a review that caps its tier)
                self.node.trust.deviation(
                    rec.partner, f"deconfliction-session:{rec.session_id}",
                    f"{kind} deconfliction aborted at step {rec.step}: "
                    f"{rec.reason or 'no reason given'}")

        return record

    def _parse(self, partner: str, kind: str, body: bytes, want: type[Any], step: int) -> Any:
        """(1) One valid message of the expected type, or a recorded refusal."""
        try:
            msg = parse_message(body)
            if not isinstance(msg, want):
                raise ProtocolError(f"out of order: expected step {step} ({want.__name__}), "
                                    f"got step {msg.STEP} ({type(msg).__name__})")
        except ProtocolError as exc:
            self.node.ledger.append(_hostile_entry(partner, kind, step, exc.message))
            raise
        return msg

    def query(self, partner: str, kind: str, grid_text: str | None, body: bytes) -> bytes:
        if kind not in KINDS:
            raise ValidationError(f"unknown item kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
        grid = parse_grid(grid_text) if kind == "operations" else None
        self.sweep()
        query: QueryMessage = self._parse(partner, kind, body, QueryMessage, 1)  # (1)
        offered = self.modes.get(kind, frozenset())
        if query.mode not in offered:
            names = ", ".join(sorted(m.value for m in offered)) or "no mode"
            self.node.ledger.append(_hostile_entry(partner, kind, 1, f"{query.mode} mode is "
                                                   f"not offered for {kind}", "refused"))
            raise WrongModeError(f"{kind} is answered in {names} only, not {query.mode}")
        mine = own_set(self.node, kind, grid=grid, contact=self.contact)
        if not mine.items:  # the PSI core cannot blind an empty set: say so plainly
            self.node.ledger.append(_hostile_entry(partner, kind, 1, "empty set", "refused"))
            raise NotFoundError(f"this node has no {kind} to deconflict against")
        budgets = self.fixed_budgets or self.table.budgets()
        responder = Responder(mine.items, book=self.book, budgets=budgets,
                              pointers=mine.pointers, modes=offered,
                              handle_key=self.node.secret_file(SESSION_HANDLE_KEY_FILE),
                              on_record=self._record(kind))
        response: ResponseMessage = responder.answer(query, partner=partner)  # (2)-(4)
        if query.mode is not Mode.INTERSECTION:
            self._park(query.session_id, _Waiting(responder, partner, kind,
                                                  self.clock() + _PENDING_TTL_S))
        return response.to_bytes()

    def sweep(self) -> None:
        """Record every expired waiting session as aborted (the partner left after step 2)."""
        with self.lock:
            now = self.clock()
            gone = [(s, self.waiting.pop(s)) for s, w in list(self.waiting.items())
                    if w.expires < now]
        for sid, w in gone:
            w.responder.abandon(sid)

    def _park(self, session_id: bytes, waiting: _Waiting) -> None:
        with self.lock:
            evicted = None
            if len(self.waiting) >= _MAX_PENDING:
                oldest = min(self.waiting, key=lambda s: self.waiting[s].expires)
                evicted = (oldest, self.waiting.pop(oldest))
            self.waiting[session_id] = waiting
        if evicted is not None:
            evicted[1].responder.abandon(evicted[0], reason="evicted: too many open sessions")

    def reveal(self, partner: str, sid_hex: str, body: bytes) -> bytes:
        self.sweep()
        reveal: RevealMessage = self._parse(partner, "reveal", body, RevealMessage, 3)  # (1)
        if reveal.session_id.hex() != sid_hex.lower():
            raise ProtocolError("the reveal's session id does not match the URL")
        with self.lock:
            waiting = self.waiting.get(reveal.session_id)
            if waiting is None or waiting.partner != partner or waiting.expires < self.clock():
                waiting = None
            else:
                del self.waiting[reveal.session_id]
        if waiting is None:
            self.node.ledger.append(_hostile_entry(partner, "reveal", 3, "no session waits"))
            raise ProtocolError("no session is waiting for this reveal "
                                "(unknown, already concluded, or expired)")
        opening: OpeningMessage
        _result, opening = waiting.responder.conclude(reveal, partner=partner)  # (3)-(4)
        return opening.to_bytes()


def _bytes_response(body: bytes) -> Response:
    return Response(body, media_type=PSI_MEDIA)


def deconflict_routes(node: Node, *, budgets: Budgets | None = None,
                      contact: str | None = None,
                      clock: Callable[[], float] = time.monotonic,
                      modes: dict[str, frozenset[Mode]] | None = None) -> list[BaseRoute]:
    """The ``/deconflict/…`` routes of ``node``. ``budgets`` fixes the budgets (default:
    the ``deconflict_budgets`` table, read per query); ``contact`` is the pointer-mode
    contact channel for items without their own (default: the node identity's
    ``contact_information``, else the node URL); ``modes`` the modes each item kind is
    offered in (default :data:`DEFAULT_MODES`)."""
    svc = _DeconflictService(node, budgets, contact, clock, dict(modes or DEFAULT_MODES))
    limit = int(node.settings["max_request_bytes"])

    async def query(request: Request, partner: str) -> Response:
        kind = request.query_params.get("items", "observables")
        grid = request.query_params.get("grid")
        body = await read_body(request, limit)
        return _bytes_response(await run_in_threadpool(svc.query, partner, kind, grid, body))

    async def reveal(request: Request, partner: str) -> Response:
        body = await read_body(request, limit)
        sid = request.path_params["sid"]
        return _bytes_response(await run_in_threadpool(svc.reveal, partner, sid, body))

    return [
        Route("/deconflict/query", partner_endpoint(query, taxii_accept=False),
              methods=["POST"]),
        Route("/deconflict/sessions/{sid}/reveal",
              partner_endpoint(reveal, taxii_accept=False), methods=["POST"]),
    ]
