"""HTTP Message Signatures (RFC 9421, Ed25519) between detente nodes.

A node signs each request with its Ed25519 key; the key id is the node's name, which the
receiving node looks up in its partner book.  A request signature covers ``@method``,
``@authority``, ``@path``, ``@query``, and for a body ``content-digest`` (RFC 9530,
sha-256) and ``content-type``; its parameters are ``created``, ``keyid``, ``nonce``, ``alg``
and the tag ``detente-request``.  Verification (``verify_request``):

  (1) exactly one signature labelled ``detente`` and tagged ``detente-request``, algorithm
      ed25519 (a signature under another label is refused here, before any effect: the
      response is signed over the request's ``detente`` signature);
  (2) the key id names a known partner, whose key verifies the signature;
  (3) ``created`` at most ``signature_window_s`` in the past, and at most
      :data:`CLOCK_SKEW_S` in the future (a partner's clock running ahead);
  (4) every required component covered, and the signed authority is this node's;
  (5) the body matches the signed ``content-digest``;
  (6) the nonce was never seen within the window (persisted: survives a restart).

A response is signed the same way (tag ``detente-response``), covering ``@status``,
``content-type``, ``content-digest`` and — RFC 9421 §2.4 — the request's method, authority,
path, query and its ``signature`` (``"signature";req;key="detente"``), so it cannot be
replayed as the answer to another request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from nacl.signing import SigningKey

from detente.errors import NotFoundError
from detente.federation.http.errors import RequestSignatureError
from detente.partners import Partner

__all__ = [
    "LABEL",
    "REQUEST_TAG",
    "RESPONSE_TAG",
    "Fields",
    "MessageView",
    "NodeAuth",
    "ResponseView",
    "Signer",
    "VerifiedRequest",
    "sign_request",
    "sign_response_headers",
    "verify_recorded_response",
    "verify_request",
    "verify_response",
]

LABEL = "detente"
#: how far in the future a signature's ``created`` may be (clocks differ a little)
CLOCK_SKEW_S = 30
REQUEST_TAG = "detente-request"
RESPONSE_TAG = "detente-response"
_REQUEST_COMPONENTS = ("@method", "@authority", "@path", "@query")
_RESPONSE_COMPONENTS = (
    "@status", '"@method";req', '"@authority";req', '"@path";req', '"@query";req',
    f'"signature";req;key="{LABEL}"',
)


class Signer(Protocol):
    """Anything with a node name and its Ed25519 key (a :class:`detente.node.Node`)."""

    @property
    def name(self) -> str: ...

    @property
    def signing_key(self) -> SigningKey: ...


class Fields:
    """Header field lines as the signature library wants them (ordered, writable)."""

    def __init__(self, lines: Iterable[tuple[str, str]] = ()) -> None:
        self.lines = list(lines)

    def items(self) -> list[tuple[str, str]]:
        return list(self.lines)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(n for n, _ in self.lines))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and any(n.lower() == name.lower() for n, _ in self.lines)

    def __setitem__(self, name: str, value: str) -> None:
        del self[name]
        self.lines.append((name, value))

    def __delitem__(self, name: str) -> None:
        self.lines = [(n, v) for n, v in self.lines if n.lower() != name.lower()]

    def get(self, name: str) -> str | None:
        found = [v for n, v in self.lines if n.lower() == name.lower()]
        return ", ".join(found) if found else None


@dataclass
class MessageView:
    """A request: method, absolute URL as sent on the wire, header lines."""

    method: str
    url: str
    headers: Any


@dataclass
class ResponseView:
    status_code: int
    headers: Any
    request: MessageView


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """Who signed a request, and the evidence (kept as provenance of what they pushed)."""

    partner: Partner
    nonce: str
    created: int
    signature_input: str
    signature: str

    @property
    def evidence(self) -> str:
        return f"Signature-Input: {self.signature_input}\nSignature: {self.signature}"


class _PrivateKeys(HTTPSignatureKeyResolver):
    def __init__(self, name: str, key: SigningKey) -> None:
        self.name, self.key = name, Ed25519PrivateKey.from_private_bytes(bytes(key))

    def resolve_private_key(self, key_id: str) -> Ed25519PrivateKey:
        if key_id != self.name:
            raise RequestSignatureError(f"no private key for {key_id!r}")
        return self.key


class _PartnerKeys(HTTPSignatureKeyResolver):
    """Public keys by key id; records the partner found (or the unknown key id)."""

    def __init__(self, lookup: Callable[[str], Partner]) -> None:
        self.lookup = lookup
        self.partner: Partner | None = None
        self.unknown: str | None = None

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        try:
            self.partner = self.lookup(key_id)
        except NotFoundError:
            self.unknown = key_id
            return None
        return Ed25519PublicKey.from_public_bytes(self.partner.public_key)


def _signer(signer: Signer) -> HTTPMessageSigner:
    return HTTPMessageSigner(signature_algorithm=algorithms.ED25519,
                             key_resolver=_PrivateKeys(signer.name, signer.signing_key))


# -- requests -------------------------------------------------------------------------
def sign_request(request: httpx.Request, signer: Signer, *, nonce: str | None = None,
                 created: datetime | None = None, label: str = LABEL) -> httpx.Request:
    """Sign an httpx request in place (adds Content-Digest for a body); returns it.
    (``label`` other than ``detente`` only to show that a node refuses it.)"""
    body = request.read()
    has_body = bool(body) or request.method in {"POST", "PUT", "PATCH"}
    covered = list(_REQUEST_COMPONENTS)
    if has_body:
        covered.append("content-digest")
        if "content-type" in request.headers:
            covered.append("content-type")
    view = MessageView(request.method, str(request.url), request.headers)
    try:
        _signer(signer).sign(
            view, key_id=signer.name, created=created or datetime.now(UTC),
            nonce=nonce or secrets.token_urlsafe(18), label=label, tag=REQUEST_TAG,
            covered_component_ids=covered, body=body if has_body else None,
        )
    except HTTPMessageSignaturesException as exc:
        raise RequestSignatureError(f"cannot sign the request: {exc}") from None
    return request


def _verifier(keys: HTTPSignatureKeyResolver) -> HTTPMessageVerifier:
    verifier = HTTPMessageVerifier(signature_algorithm=algorithms.ED25519, key_resolver=keys)
    verifier.max_clock_skew = timedelta(seconds=CLOCK_SKEW_S)
    return verifier


def _max_age(window_s: int) -> timedelta:
    """The library accepts ``created + max_age >= now - skew``: so that the accepted age
    is exactly ``window_s``, ``max_age`` is the window less the skew."""
    return timedelta(seconds=max(0, window_s - CLOCK_SKEW_S))


def _required(headers: Fields, has_body: bool) -> list[str]:
    required = list(_REQUEST_COMPONENTS)
    if has_body:
        required.append("content-digest")
    if "content-type" in headers:
        required.append("content-type")
    return required


def verify_request(
    message: MessageView,
    body: bytes | None,
    *,
    lookup: Callable[[str], Partner],
    authorities: Sequence[str],
    window_s: int,
    remember_nonce: Callable[[str, str, int], None],
) -> VerifiedRequest:
    """Verify a signed request (steps (1)-(6) above); raises :class:`RequestSignatureError`."""
    headers = Fields(message.headers.items())
    keys = _PartnerKeys(lookup)
    verifier = _verifier(keys)
    has_body = bool(body) or message.method in {"POST", "PUT", "PATCH"}
    try:  # (1)-(4): one tagged signature, known key, fresh, components covered
        (result,) = verifier.verify(
            message, max_age=_max_age(window_s), expect_tag=REQUEST_TAG,
            require_components=_required(headers, has_body),
        )
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise _refusal(keys, exc) from None
    if result.label != LABEL:
        raise RequestSignatureError(f"signature label {result.label[:40]!r} is not {LABEL!r}",
                                    hint=f'sign with the label "{LABEL}" (RFC 9421 §4.1)')
    _check_params(result.parameters)
    authority = result.covered_components.get('"@authority"', "")
    if authority.lower() not in {a.lower() for a in authorities}:
        raise RequestSignatureError(
            f"request was signed for {authority!r}, not for this node",
            hint=f"sign requests to this node's URL ({', '.join(authorities)})")
    if has_body:  # (5) the body is what was signed
        try:
            verifier.verify_body(message, [result], body or b"")
        except HTTPMessageSignaturesException:
            raise RequestSignatureError("request body does not match its signed "
                                        "Content-Digest") from None
    assert keys.partner is not None
    created = int(result.parameters["created"])
    remember_nonce(keys.partner.name, str(result.nonce), created + 2 * window_s)  # (6)
    return VerifiedRequest(keys.partner, str(result.nonce), created,
                           headers.get("signature-input") or "", headers.get("signature") or "")


def _check_params(params: dict[str, int | str]) -> None:
    if params.get("alg") != "ed25519":
        raise RequestSignatureError("signature must carry alg=\"ed25519\"")
    nonce = params.get("nonce")
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128:
        raise RequestSignatureError("signature must carry a nonce of 16-128 characters")


def _refusal(keys: _PartnerKeys, exc: Exception) -> RequestSignatureError:
    if keys.unknown is not None:
        return RequestSignatureError(f"unknown partner {keys.unknown!r}",
                                     hint="the key id must name a partner of this node")
    text = str(exc) or type(exc).__name__
    return RequestSignatureError(f"request signature refused: {text}")


# -- responses ----------------------------------------------------------------------
def sign_response_headers(signer: Signer, request: MessageView, status: int,
                          headers: Sequence[tuple[str, str]], body: bytes) -> list[tuple[str, str]]:
    """The Content-Digest, Signature-Input and Signature lines of a signed response."""
    fields = Fields(headers)
    view = ResponseView(status, fields, request)
    covered = [*_RESPONSE_COMPONENTS, "content-digest"]
    if "content-type" in fields:
        covered.append("content-type")
    _signer(signer).sign(view, key_id=signer.name, created=datetime.now(UTC),
                         nonce=secrets.token_urlsafe(18), label=LABEL, tag=RESPONSE_TAG,
                         covered_component_ids=covered, body=body)
    wanted = {"content-digest", "signature-input", "signature"}
    return [(n, v) for n, v in fields.lines if n.lower() in wanted]


def verify_response(response: httpx.Response, partner: Partner, *, window_s: int = 300) -> None:
    """Check that ``partner`` signed this response to exactly our signed request."""
    request = MessageView(response.request.method, str(response.request.url),
                          response.request.headers)
    view = ResponseView(response.status_code, response.headers, request)
    verifier = _verifier(_PartnerKeys(lambda _k: partner))
    try:
        (result,) = verifier.verify(
            view, max_age=_max_age(window_s), expect_tag=RESPONSE_TAG,
            require_components=[*_RESPONSE_COMPONENTS, "content-digest"], body=response.read(),
        )
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise RequestSignatureError(
            f"response (HTTP {response.status_code}) signature refused: {exc}") from None
    if result.parameters.get("keyid") != partner.name:
        raise RequestSignatureError(
            f"response signed by {result.parameters.get('keyid')!r}, not {partner.name!r}")


class _OneKey(HTTPSignatureKeyResolver):
    def __init__(self, key_id: str, public_key: bytes) -> None:
        self.key_id, self.public_key = key_id, public_key

    def resolve_public_key(self, key_id: str) -> Ed25519PublicKey | None:
        if key_id != self.key_id:
            return None
        return Ed25519PublicKey.from_public_bytes(self.public_key)


#: a recorded answer is evidence: its age does not matter, only who signed it for what
_EVIDENCE_AGE = timedelta(days=365 * 100)


def verify_recorded_response(method: str, url: str,
                             request_headers: Sequence[tuple[str, str]], status: int,
                             headers: Sequence[tuple[str, str]], body: bytes, *,
                             key_id: str, public_key: bytes) -> None:
    """Check, long after the fact, that ``key_id``/``public_key`` signed this answer (status,
    content type, Content-Digest of ``body``) to exactly this request (method, authority,
    path, query and the request's own signature). Raises :class:`RequestSignatureError`."""
    request = MessageView(method, url, Fields(request_headers))
    view = ResponseView(status, Fields(headers), request)
    verifier = _verifier(_OneKey(key_id, public_key))
    try:
        (result,) = verifier.verify(
            view, max_age=_EVIDENCE_AGE, expect_tag=RESPONSE_TAG,
            require_components=[*_RESPONSE_COMPONENTS, "content-digest"], body=body,
        )
    except (HTTPMessageSignaturesException, ValueError, KeyError, TypeError,
            IndexError) as exc:
        raise RequestSignatureError(f"response signature refused: {exc or type(exc).__name__}"
                                    ) from None
    if result.label != LABEL or result.parameters.get("keyid") != key_id:
        raise RequestSignatureError(f"response is not signed by {key_id!r}")


class NodeAuth(httpx.Auth):
    """httpx authentication for node-to-node calls: sign every request, and when
    ``partner`` is given, verify that it signed the response to that request."""

    requires_request_body = True
    requires_response_body = True

    def __init__(self, signer: Signer, partner: Partner | None = None,
                 window_s: int = 300) -> None:
        self.signer, self.partner, self.window_s = signer, partner, window_s

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        sign_request(request, self.signer)
        response = yield request
        if self.partner is not None:
            verify_response(response, self.partner, window_s=self.window_s)

