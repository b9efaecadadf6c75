"""Who is asking: a partner node (signed request), a client acting for a partner, or the
local operator.  Fails closed: no or bad credentials → 401 with ``WWW-Authenticate``.

``authenticate(request)`` is reusable by every endpoint mounted next to TAXII (UI, ledger,
deconfliction): it needs only ``request.app.state.federation``, a :class:`Gate` that
:func:`detente.federation.taxii.server.create_app` installs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from detente.errors import AuthError, ForbiddenError
from detente.federation.http.errors import RequestSignatureError, TooLargeError
from detente.federation.http.nonces import NonceCache
from detente.federation.http.signatures import MessageView, VerifiedRequest, verify_request
from detente.federation.http.throttle import (
    PASSWORD_CHECKS,
    FailureLimiter,
    PasswordCheckBusy,
)
from detente.node import Node
from detente.partners import Client

__all__ = ["Gate", "Kind", "Principal", "authenticate", "default_authorities", "read_body",
           "request_view"]

_CREDENTIAL_TTL_S = 30.0
_CACHE_MAX = 1024


class Kind(StrEnum):
    PARTNER = "partner"      # a partner node, by HTTP Message Signature
    CLIENT = "client"        # a TAXII client credential acting as one partner
    OPERATOR = "operator"    # a TAXII client credential of the local operator


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Kind
    #: the partner whose rights apply (None for the operator)
    partner: str | None
    #: the client credential used (None for a signed node request)
    client: str | None = None
    #: the verified signature of a node request
    signed: VerifiedRequest | None = None

    @property
    def requester(self) -> str:
        """Identity that tokens and status resources are bound to."""
        return f"partner:{self.partner}" if self.partner is not None else "operator"

    @property
    def is_operator(self) -> bool:
        return self.kind is Kind.OPERATOR

    def require_partner(self) -> str:
        if self.partner is None:
            raise ForbiddenError("this resource is served to partners only")
        return self.partner

    def require_operator(self) -> None:
        if not self.is_operator:
            raise ForbiddenError("only the local operator may do this",
                                 hint="use an operator credential: detente client add NAME "
                                      "--operator")


class Gate:
    """The node's authentication state: nonce cache, verified-credential cache."""

    def __init__(self, node: Node, authorities: tuple[str, ...] = ()) -> None:
        self.node = node
        self.nonces = NonceCache(node.store.engine)
        self.window_s = int(node.settings["signature_window_s"])
        self.max_body = int(node.settings["max_request_bytes"])
        self.authorities = authorities or default_authorities(node)
        self._clients: dict[bytes, tuple[Client, float]] = {}
        self._cache_key = secrets.token_bytes(32)
        self.failures = FailureLimiter(node.store.engine)

    def client(self, user: str, secret: str, address: str = "unknown") -> Client:
        """Check a credential: (1) a success checked within the last
        ``_CREDENTIAL_TTL_S`` of use, cached under a keyed digest, needs no
        hash, only one read that the credential is still stored as it was checked (the
        cache never outlives a removal, on any worker); (2) an address over its attempt
        budget is refused by one read, before any hashing; (3) the attempt is counted
        *before* hashing (one atomic upsert in the database, shared by every worker), so
        concurrent attempts cannot all pass the check; (4) the hash runs in
        :data:`~detente.federation.http.throttle.PASSWORD_CHECKS` (two at once per process,
        at lower CPU priority, a bounded queue); (5) a success gives its attempt back, a
        failure keeps it."""
        key = hmac.digest(self._cache_key, f"{user}\0{secret}".encode(), "sha256")
        hit = self._clients.get(key)                                           # (1)
        now = time.monotonic()
        if hit is not None and hit[1] > now \
                and self.node.partners.client_of_user(user) == hit[0]:
            # still stored as checked (a removed or re-keyed one is not); kept while in use,
            # so a busy client pays the hash once, not once per TTL (a page every 30 s
            # waited ~50 ms-2 s for argon2 under load: the p99 of bench/hub.py)
            self._clients[key] = (hit[0], now + _CREDENTIAL_TTL_S)
            return hit[0]
        self.failures.check(address)                                           # (2)
        window = self.failures.reserve(address)                                # (3)
        try:                                                                   # (4)
            client = PASSWORD_CHECKS.run(self.node.partners.authenticate_client, user, secret)
        except PasswordCheckBusy:
            self.failures.release(address, window)  # never queued: not an attempt
            raise
        self.failures.release(address, window)                                 # (5)
        if len(self._clients) >= _CACHE_MAX:
            self._clients.clear()
        self._clients[key] = (client, time.monotonic() + _CREDENTIAL_TTL_S)
        return client


def default_authorities(node: Node) -> tuple[str, ...]:
    url = urlsplit(str(node.settings["url"]))
    found = {url.netloc.lower()}
    host, port = str(node.settings["host"]), int(node.settings["port"])
    found.add(f"{host}:{port}".lower())
    if url.port in (None, 80, 443) and url.hostname:
        found.add(url.hostname.lower())
    return tuple(sorted(found))


def request_view(request: Request) -> MessageView:
    """The request as signed: raw path and query, authority from the Host header."""
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    host = request.headers.get("host") or "unknown"
    url = f"{scope.get('scheme', 'http')}://{host}{raw_path.decode('latin-1')}"
    if query:
        url += "?" + query.decode("latin-1")
    return MessageView(request.method, url, request.headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it exceeds ``limit`` bytes."""
    cached = getattr(request.state, "body", None)
    if cached is not None:
        return bytes(cached)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    request.state.body = body
    return body


def _too_large(limit: int) -> TooLargeError:
    return TooLargeError(f"request body is larger than {limit} bytes",
                         hint="send fewer objects per request")


def _gate(request: Request) -> Gate:
    gate = getattr(request.app.state, "federation", None)
    if not isinstance(gate, Gate):
        raise AuthError("this application has no authentication configured")
    return gate


async def authenticate(request: Request) -> Principal:
    """The principal of a request; raises 401 (:class:`AuthError`) when there is none."""
    gate = _gate(request)
    if "signature-input" in request.headers or "signature" in request.headers:
        return await _signed(request, gate)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        user, secret = _basic(value.strip())
    elif scheme.lower() == "bearer":
        user, secret = _bearer(value.strip())
    else:
        raise AuthError("authentication required",
                        hint="sign the request (partner nodes) or send HTTP Basic or bearer "
                             "credentials from 'detente client add'")
    address = request.client.host if request.client is not None else "unknown"
    client = await run_in_threadpool(gate.client, user, secret, address)
    if client.partner is None:
        return Principal(Kind.OPERATOR, None, client.name)
    return Principal(Kind.CLIENT, client.partner, client.name)


def _basic(value: str) -> tuple[str, str]:
    try:
        user, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise AuthError("malformed Basic credentials") from None
    if not sep:
        raise AuthError("malformed Basic credentials")
    return user, secret


def _bearer(value: str) -> tuple[str, str]:
    """A bearer token is ``user:password`` (or ``user.password``, safe in b64token)."""
    sep = ":" if ":" in value else "."
    user, found, secret = value.partition(sep)
    if not found:
        raise AuthError("malformed bearer token", hint="the token is 'user:password'")
    return user, secret


async def _signed(request: Request, gate: Gate) -> Principal:
    if "authorization" in request.headers:
        raise RequestSignatureError("send a signature or credentials, not both")
    has_body = request.method in {"POST", "PUT", "PATCH"}
    body = await read_body(request, gate.max_body) if has_body else None
    view = request_view(request)

    def verify() -> VerifiedRequest:
        return verify_request(
            view, body, lookup=gate.node.partners.get, authorities=gate.authorities,
            window_s=gate.window_s, remember_nonce=gate.nonces.remember)

    signed = await run_in_threadpool(verify)
    return Principal(Kind.PARTNER, signed.partner.name, None, signed)
