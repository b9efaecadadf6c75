"""The node-to-node TAXII client: signed requests, verified and bounded responses.

One :class:`PartnerClient` talks to one partner.  Each request:

  (1) is signed afresh (RFC 9421, Ed25519, a new nonce per attempt);
  (2) is sent with a per-request time budget (connect/read timeouts, and a total budget
      checked while the body streams in, so a slow drip cannot hold it open);
  (3) is retried with exponential backoff and jitter on timeouts and 5xx only, a bounded
      number of times and never past the partner's deadline;
  (4) gets its answer checked: status, media type ``application/taxii+json;version=2.1``,
      body size (refused as soon as it passes ``max_page_bytes``), then the partner's
      response signature over exactly our request — before any byte is parsed.

Every failure is a :class:`SyncError` naming the partner and what was wrong.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx
import orjson

from detente.errors import DetenteError
from detente.federation.http.media import parse_media
from detente.federation.http.signatures import Signer, sign_request, verify_response
from detente.partners import Partner

__all__ = [
    "TAXII_MEDIA",
    "DeadlineError",
    "Limits",
    "PageTooLargeError",
    "PartnerClient",
    "PartnerProtocolError",
    "PartnerRefusedError",
    "PartnerUnreachableError",
    "Reply",
    "ResponseSignatureError",
    "SyncError",
]

TAXII_MEDIA = "application/taxii+json;version=2.1"
_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class SyncError(DetenteError):
    """A partner could not be synced with; the message starts with the partner's name."""

    def __init__(self, partner: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(f"partner {partner}: {message}", hint=hint)
        self.partner = partner


class PartnerUnreachableError(SyncError):
    """No usable answer: connection refused, timeouts or 5xx after every retry."""


class DeadlineError(PartnerUnreachableError):
    """The partner's total time budget for this run is spent."""


class PartnerRefusedError(SyncError):
    """The partner answered with a 4xx (it does not know us, or refused the request)."""


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


class PartnerClient:
    """Signed, verified, bounded requests to one partner node."""

    def __init__(self, signer: Signer, partner: Partner, limits: Limits | None = None, *,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.signer, self.partner = signer, partner
        self.limits = limits or Limits()
        self.sleep = sleep
        self.deadline = time.monotonic() + self.limits.deadline_s
        timeout = httpx.Timeout(self.limits.request_timeout_s)
        self.http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False,
                                 headers={"Accept": TAXII_MEDIA})

    def __enter__(self) -> PartnerClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    @property
    def name(self) -> str:
        return self.partner.name

    def url(self, path: str) -> str:
        """A URL under the partner's base URL (which may have a path: a reverse proxy)."""
        return urljoin(self.partner.url.rstrip("/") + "/", path.lstrip("/"))

    # -- requests ---------------------------------------------------------------------
    def get(self, url: str, params: Mapping[str, str] | None = None) -> Reply:
        return self._request("GET", url, params=params)

    def post(self, url: str, body: bytes) -> Reply:
        return self._request("POST", url, content=body)

    def _request(self, method: str, url: str, *, params: Mapping[str, str] | None = None,
                 content: bytes | None = None) -> Reply:
        """(3) retry timeouts and 5xx with backoff and jitter, within the deadline."""
        attempt = 0
        while True:
            self._check_deadline()
            try:
                return self._attempt(method, url, params, content)
            except _Retry as exc:
                attempt += 1
                if attempt > self.limits.retries:
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
                 content: bytes | None) -> Reply:
        headers = {"Content-Type": TAXII_MEDIA} if content is not None else {}
        try:
            request = self.http.build_request(method, url, params=params, content=content,
                                              headers=headers)
        except httpx.InvalidURL as exc:
            raise PartnerProtocolError(self.name, f"cannot request {url!r}: {exc}") from None
        sign_request(request, self.signer)                                    # (1)
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
                hint=f"is the partner's node running at {self.partner.url}?") from None
        return self._check(request, response, body)                           # (4)

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
    def _check(self, request: httpx.Request, response: httpx.Response, body: bytes) -> Reply:
        status = response.status_code
        if status in _RETRY_STATUSES:
            raise _Retry(f"{request.method} {request.url.path} answered HTTP {status}")
        if status >= 300:
            raise PartnerRefusedError(self.name, f"{request.method} {request.url.path} "
                                      f"answered HTTP {status}: {_title(body)}")
        media, params = parse_media(response.headers.get("content-type", ""))
        if media != "application/taxii+json" or params.get("version", "2.1") != "2.1":
            raise PartnerProtocolError(
                self.name, f"answered with media type "
                f"{response.headers.get('content-type') or 'none'!r}, not {TAXII_MEDIA}")
        self._verify(request, response, body)
        return Reply(self.name, status, response.headers, body)

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


def _title(body: bytes) -> str:
    """The title of a TAXII error message, if the body is one (for the error text only)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "no TAXII error message"
    if isinstance(value, dict) and isinstance(value.get("title"), str):
        return str(value["title"])[:200]
    return "no TAXII error message"
