"""The one partner client: signed requests, verified and bounded responses.

One :class:`PartnerClient` talks to one partner node — its TAXII collections (pull,
push), its ledger (witnessing, audit) and its deconfliction endpoints (PSI).  A
:class:`FeedClient` talks to any TAXII 2.1 server (a feed: medallion, OpenCTI, MISP,
another detente node through a client credential) over the same transport — steps (2)
to (4) below — with HTTP Basic or bearer credentials instead of signatures.  Each request:

  (1) is signed afresh (RFC 9421, Ed25519, a new nonce per attempt);
  (2) is sent with a per-request time budget (connect/read timeouts, and a total budget
      checked while the body streams in, so a slow drip cannot hold it open);
  (3) is retried with exponential backoff and jitter on timeouts and 5xx only, a bounded
      number of times and never past the partner's deadline;
  (4) gets its answer checked: status, media type (``application/taxii+json;version=2.1``,
      or ``application/octet-stream`` for PSI), body size (refused as soon as it passes
      ``max_page_bytes``), then the partner's response signature over exactly our request
      — before any byte is parsed.

POSTs are never retried (a PSI query or a cosignature spends or changes state).  Every
failure is a :class:`SyncError` naming the partner and what was wrong — a refusal keeps
the partner's own reason and hint (:class:`PartnerRefusedError`), a spent query budget is
:class:`~detente.deconflict.BudgetExceeded`.
"""

from __future__ import annotations

import base64
import random
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import httpx
import orjson

from detente.deconflict import BudgetExceeded
from detente.errors import DetenteError
from detente.federation.http.media import parse_media
from detente.federation.http.render import TAXII_MEDIA
from detente.federation.http.signatures import Signer, sign_request, verify_response
from detente.node import Node
from detente.partners import Partner

__all__ = [
    "TAXII_MEDIA",
    "DeadlineError",
    "FeedClient",
    "Limits",
    "PageTooLargeError",
    "PartnerClient",
    "PartnerProtocolError",
    "PartnerRefusedError",
    "PartnerUnreachableError",
    "Reply",
    "ResponseSignatureError",
    "SyncError",
    "TaxiiClient",
    "open_partner_client",
    "tls_context",
]

_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class SyncError(DetenteError):
    """A partner (or feed) could not be synced with; the message starts with its name
    (``partner NAME`` or, for a source named ``feed:NAME``, ``feed NAME``)."""

    def __init__(self, partner: str, message: str, *, hint: str | None = None) -> None:
        kind, sep, rest = partner.partition(":")
        super().__init__(f"{kind} {rest}: {message}" if sep else f"partner {partner}: "
                         f"{message}", hint=hint)
        self.partner = partner


class PartnerUnreachableError(SyncError):
    """No usable answer: connection refused, timeouts or 5xx after every retry."""


class DeadlineError(PartnerUnreachableError):
    """The partner's total time budget for this run is spent."""


class PartnerRefusedError(SyncError):
    """The partner answered with a 4xx (it does not know us, or refused the request);
    ``status`` and ``code`` are its HTTP status and TAXII ``error_code``."""

    def __init__(self, partner: str, message: str, *, hint: str | None = None,
                 status: int = 0, code: str = "error", reply: Reply | None = None) -> None:
        super().__init__(partner, message, hint=hint)
        self.status, self.code = status, code
        #: the refusal itself when the partner signed it for our request (evidence)
        self.reply = reply


class PartnerProtocolError(SyncError):
    """The partner's answer is not TAXII 2.1: media type, JSON, envelope, paging."""


class PageTooLargeError(PartnerProtocolError):
    """A response body larger than ``max_page_bytes``."""


class ResponseSignatureError(SyncError):
    """The response is not signed by the partner's key for our request."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on one partner's sync or push run (all of them hold at once)."""

    page_size: int = 1000
    max_page_bytes: int = 64 * 1024 * 1024
    max_pages: int = 100_000
    request_timeout_s: float = 60.0
    deadline_s: float = 1800.0
    retries: int = 4
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    signature_window_s: int = 300
    #: record each page's evidence for earned trust (tiers are refreshed once per run);
    #: off only to measure the federation path alone
    trust: bool = True


@dataclass(frozen=True, slots=True)
class Reply:
    """A checked answer: status, headers, body and the signature evidence it carried."""

    partner: str
    status: int
    headers: httpx.Headers
    body: bytes
    #: the request this answers, as sent (signed): a signed answer is bound to it
    request: httpx.Request | None = None

    @property
    def evidence(self) -> str:
        """The response's Signature-Input and Signature (kept as provenance)."""
        return (f"Signature-Input: {self.headers.get('signature-input', '')}\n"
                f"Signature: {self.headers.get('signature', '')}")

    def json(self) -> dict[str, Any]:
        try:
            value = orjson.loads(self.body)
        except orjson.JSONDecodeError as exc:
            raise PartnerProtocolError(self.partner, f"answered with malformed JSON ({exc})",
                                       hint="the partner's TAXII server is faulty") from None
        if not isinstance(value, dict):
            raise PartnerProtocolError(self.partner, "answered with JSON that is not an object")
        return value


class _Retry(Exception):
    """An attempt that may be retried (timeout or 5xx), with what went wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TaxiiClient:
    """Bounded, retrying, media-checked requests to one TAXII server (steps (2)-(4));
    subclasses say how a request is authenticated and how an answer is verified."""

    def __init__(self, name: str, base_url: str, limits: Limits | None = None, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._name, self.base_url = name, base_url
        self.limits = limits or Limits()
        self.sleep = sleep
        self.deadline = time.monotonic() + self.limits.deadline_s
        timeout = httpx.Timeout(self.limits.request_timeout_s)
        self.http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                 headers={"Accept": TAXII_MEDIA},
                                 verify=True if transport is not None else _tls_for(base_url))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def name(self) -> str:
        return self._name

    def url(self, path: str) -> str:
        """A URL under the server's base URL (which may have a path: a reverse proxy)."""
        return urljoin(self.base_url.rstrip("/") + "/", path.lstrip("/"))

    def _authorize(self, request: httpx.Request) -> None:
        """(1) Authenticate one attempt (nothing by default)."""

    def _verify(self, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        """Verify an answer before it is parsed (nothing by default)."""

    # -- requests ---------------------------------------------------------------------
    def get(self, url: str, params: Mapping[str, str] | None = None) -> Reply:
        return self._request("GET", url, params=params)

    def post(self, url: str, body: bytes) -> Reply:
        return self._request("POST", url, content=body)

    def get_json(self, path: str, params: Mapping[str, object] | None = None
                 ) -> dict[str, Any]:
        """GET a JSON document (ledger endpoints) under the partner's URL."""
        return self.get_reply(path, params).json()

    def get_reply(self, path: str, params: Mapping[str, object] | None = None) -> Reply:
        """GET under the partner's URL, keeping the signed answer (evidence)."""
        return self._request("GET", self.url(path), params=_strings(params))

    def post_json(self, path: str, doc: object) -> dict[str, Any]:
        return self._request("POST", self.url(path), content=orjson.dumps(doc),
                             content_type="application/json").json()

    def post_bytes(self, path: str, body: bytes,
                   params: Mapping[str, object] | None = None) -> bytes:
        """POST a binary message (PSI) and return the binary answer."""
        return self._request("POST", self.url(path), params=_strings(params), content=body,
                             content_type=_OCTETS, expect=_OCTETS).body

    def _request(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                 content: bytes | None = None, content_type: str = TAXII_MEDIA,
                 expect: str = TAXII_MEDIA) -> Reply:
        """(3) retry timeouts and 5xx with backoff and jitter, within the deadline (GET
        only: a POST is sent once)."""
        attempt = 0
        while True:
            self._check_deadline()
            try:
                return self._attempt(method, url, params, content, content_type, expect)
            except _Retry as exc:
                attempt += 1
                if attempt > self.limits.retries or method != "GET":
                    raise PartnerUnreachableError(
                        self.name, f"{exc.reason} ({attempt} attempts)",
                        hint="the partner's node is down or overloaded; the next sync "
                             "resumes where this one stopped") from None
                self._backoff(attempt)

    def _backoff(self, attempt: int) -> None:
        base = min(self.limits.backoff_max_s, self.limits.backoff_s * 2 ** (attempt - 1))
        delay = base * (0.5 + random.random() / 2)  # "equal jitter"
        self.sleep(max(0.0, min(delay, self.deadline - time.monotonic())))

    def _check_deadline(self) -> None:
        if time.monotonic() >= self.deadline:
            raise DeadlineError(self.name, f"time budget of {self.limits.deadline_s:g} s "
                                "for this run is spent",
                                hint="the next sync resumes where this one stopped")

    def _attempt(self, method: str, url: str, params: Mapping[str, str] | None,
                 content: bytes | None, content_type: str, expect: str) -> Reply:
        headers = {"Content-Type": content_type} if content is not None else {}
        if expect != TAXII_MEDIA:
            headers["Accept"] = f"{expect}, {TAXII_MEDIA}"
        try:
            request = self.http.build_request(method, url, params=params, content=content,
                                              headers=headers)
        except httpx.InvalidURL as exc:
            raise PartnerProtocolError(self.name, f"cannot request {url!r}: {exc}") from None
        self._authorize(request)                                              # (1)
        budget = min(self.limits.request_timeout_s, self.deadline - time.monotonic())
        try:                                                                   # (2)
            response = self.http.send(request, stream=True)
            try:
                body = self._read(response, time.monotonic() + max(budget, 0.0))
            finally:
                response.close()
        except httpx.TimeoutException:
            raise _Retry(f"{method} {request.url.path} timed out") from None
        except httpx.HTTPError as exc:
            raise PartnerUnreachableError(
                self.name, f"{method} {request.url} failed: {type(exc).__name__}: {exc}",
                hint=f"is the server running at {self.base_url}?") from None
        return self._check(request, response, body, expect)                   # (4)

    def _read(self, response: httpx.Response, until: float) -> bytes:
        limit = self.limits.max_page_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise self._too_large(size)
            if time.monotonic() > until:
                raise httpx.ReadTimeout("the response did not complete in time")
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int) -> PageTooLargeError:
        return PageTooLargeError(
            self.name, f"response of more than {self.limits.max_page_bytes} bytes refused "
            f"(at least {size} bytes)", hint="ask the partner for smaller pages, or raise "
            "max_page_bytes")

    # -- (4) checking an answer -------------------------------------------------------------
    def _check(self, request: httpx.Request, response: httpx.Response, body: bytes,
               expect: str) -> Reply:
        status = response.status_code
        if status in _RETRY_STATUSES:
            raise _Retry(f"{request.method} {request.url.path} answered HTTP {status}")
        if status >= 300:
            raise self._refusal(request, status, body, self._signed(request, response, body))
        media, params = parse_media(response.headers.get("content-type", ""))
        wanted, _ = parse_media(expect)
        if media != wanted or (media == "application/taxii+json"
                               and params.get("version", "2.1") != "2.1"):
            raise PartnerProtocolError(
                self.name, f"answered with media type "
                f"{response.headers.get('content-type') or 'none'!r}, not {expect}")
        self._verify(request, response, body)
        return Reply(self.name, status, response.headers, body, request)

    def _signed(self, request: httpx.Request, response: httpx.Response, body: bytes
                ) -> Reply | None:
        """A refusal as a :class:`Reply` if the partner signed it for our request."""
        try:
            self._verify(request, response, body)
        except ResponseSignatureError:
            return None
        return Reply(self.name, response.status_code, response.headers, body, request)


    def _refusal(self, request: httpx.Request, status: int, body: bytes,
                 signed: Reply | None = None) -> DetenteError:
        """The partner's refusal with its own reason (its TAXII error message, bounded)."""
        doc = _error_doc(body)
        text = _text(doc.get("description")) or _text(doc.get("title")) or \
            "no TAXII error message"
        details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
        assert isinstance(details, dict)
        hint = _text(details.get("hint"))
        if status == 429 and _text(details.get("reason")):
            return BudgetExceeded(f"partner {self.name} refused the query: {text}",
                                  reason=str(_text(details.get("reason"))), hint=hint)
        return PartnerRefusedError(
            self.name, f"{request.method} {request.url.path} answered HTTP {status}: {text}",
            hint=hint, status=status, code=_text(doc.get("error_code")) or "error",
            reply=signed)


class PartnerClient(TaxiiClient):
    """Signed, verified, bounded requests to one partner node."""

    def __init__(self, signer: Signer, partner: Partner, limits: Limits | None = None, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(partner.name, partner.url, limits, transport=transport, sleep=sleep)
        self.signer, self.partner = signer, partner

    def _authorize(self, request: httpx.Request) -> None:
        sign_request(request, self.signer)

    def _verify(self, request: httpx.Request, response: httpx.Response, body: bytes) -> None:
        copy = httpx.Response(response.status_code, headers=response.headers, content=body,
                              request=request)
        try:
            verify_response(copy, self.partner, window_s=self.limits.signature_window_s)
        except (DetenteError, ValueError, KeyError, TypeError, IndexError) as exc:
            text = exc.message if isinstance(exc, DetenteError) else \
                f"signature refused: malformed signature fields ({type(exc).__name__})"
            raise ResponseSignatureError(
                self.name, f"response to {request.method} {request.url.path} refused: "
                f"{text}", hint="the answer may be forged or replayed, or the "
                "partner changed its key (see 'detente partner rotate-key')") from None


class FeedClient(TaxiiClient):
    """Plain TAXII 2.1 requests to a feed: HTTP Basic (``user``, ``password``) or bearer
    (``token``) credentials or none, the same bounds, retries and media checks as a
    partner's, and no signature (a feed's answers are taken as it sends them; what they
    hold still goes through the intake path's rules)."""

    def __init__(self, name: str, url: str, limits: Limits | None = None, *,
                 user: str | None = None, password: str | None = None,
                 token: str | None = None, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(name, url, limits, transport=transport, sleep=sleep)
        self._authorization: str | None = None
        if token is not None:
            self._authorization = f"Bearer {token}"
        elif user is not None:
            raw = f"{user}:{password or ''}".encode()
            self._authorization = f"Basic {base64.b64encode(raw).decode()}"

    def _authorize(self, request: httpx.Request) -> None:
        if self._authorization is not None:
            request.headers["Authorization"] = self._authorization


_OCTETS = "application/octet-stream"


@cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of every client of this process: httpx's default (the system's
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set, else certifi's CAs), built once.  Building
    it reads the whole CA bundle — some 60 ms, more than a small sync; a sync opens two
    clients per partner (the pull, then witnessing) and ``--watch`` does so every round."""
    return httpx.create_ssl_context()


def _tls_for(base_url: str) -> ssl.SSLContext:
    """The TLS context of a client of ``base_url``: :func:`tls_context` for ``https``.
    For plain ``http`` a context that trusts no CA at all, built in microseconds where
    loading the CA bundle takes 25-50 ms of a sync's CPU: such a client never opens TLS
    (it asks only its own origin and follows no redirect), and if it ever did, no
    certificate would verify — the handshake fails, closed."""
    if urlsplit(base_url).scheme.lower() == "http":
        return _trusts_nothing()
    return tls_context()


@cache
def _trusts_nothing() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # verifies certificates, knows no CA


def _error_doc(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    """A string from a partner's error message, bounded (never trusted further)."""
    return value[:500] if isinstance(value, str) and value else None


def _strings(params: Mapping[str, object] | None) -> dict[str, str] | None:
    return None if params is None else {k: str(v) for k, v in params.items()}


def open_partner_client(node: Node, partner: str, *, timeout_s: float = 60.0,
                        url: str | None = None,
                        transport: httpx.BaseTransport | None = None) -> PartnerClient:
    """The client for a known partner (``url``: another address of the same node)."""
    known = node.partners.get(partner)
    if url is not None:
        known = replace(known, url=url)
    return PartnerClient(node, known, Limits(request_timeout_s=timeout_s),
                         transport=transport)

