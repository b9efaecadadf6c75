"""The one endpoint wrapper of the node's HTTP surface (TAXII, ledger, deconfliction).

:func:`endpoint` wraps a handler ``(request, principal) -> Response``:

  (1) authenticate (:func:`~detente.federation.http.auth.authenticate`): a signed partner
      request, a TAXII client credential, or the operator; with ``partners_only`` a
      *signed* partner request is required (others: 403);
  (2) check ``Accept`` (TAXII JSON endpoints; PSI endpoints answer bytes and skip it);
  (3) run the handler; any exception becomes the one TAXII error message
      (:func:`~detente.federation.http.render.error_response`), never a bare 500 for bad
      input;
  (4) sign the response when the request was signed — a refusal before authentication
      too, when the request carried a signature to bind to (so the caller sees our reason).

:func:`partner_endpoint` is the same wrapper for handlers that take the partner's name.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from detente.errors import ForbiddenError, ValidationError
from detente.federation.http.auth import Principal, authenticate, request_view
from detente.federation.http.media import check_accept
from detente.federation.http.render import error_response, taxii_response
from detente.federation.http.signatures import sign_response_headers
from detente.node import Node

__all__ = ["Handler", "PartnerHandler", "endpoint", "int_param", "json_response",
           "partner_endpoint"]

Handler = Callable[[Request, Principal], Awaitable[Response]]
PartnerHandler = Callable[[Request, str], Awaitable[Response]]


def json_response(value: object, status: int = 200) -> Response:
    return taxii_response(orjson.dumps(value), status)


def int_param(request: Request, name: str, default: int | None = None) -> int:
    """A non-negative decimal query parameter; anything else is a 400, not a 500."""
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise ValidationError(f"query parameter {name!r} is required")
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise ValidationError(f"query parameter {name!r} must be a non-negative integer")
    return int(raw)


def _node(request: Request) -> Node:
    node: Node = request.app.state.federation.node
    return node


def endpoint(handler: Handler, *, taxii_accept: bool = True,
             partners_only: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` with steps (1)-(4) of the module docstring."""

    async def run(request: Request) -> Response:
        try:
            principal = await authenticate(request)                      # (1)
            if partners_only and (principal.signed is None or principal.partner is None):
                raise ForbiddenError("this endpoint answers partner nodes only",
                                     hint="sign the request with the node key (RFC 9421)")
        except Exception as exc:
            response = error_response(exc)
            _sign(request, response, best_effort=True)
            return response
        try:
            if taxii_accept:                                             # (2)
                check_accept(request.headers.get("accept"))
            response = await handler(request, principal)                 # (3)
        except Exception as exc:
            response = error_response(exc)
        if principal.signed is not None:                                 # (4)
            _sign(request, response)
        return response

    run.__name__ = handler.__name__
    return run


def partner_endpoint(handler: PartnerHandler, *, taxii_accept: bool = True
                     ) -> Callable[[Request], Awaitable[Response]]:
    """:func:`endpoint` for partner-only handlers that take the partner's name."""

    async def with_partner(request: Request, principal: Principal) -> Response:
        assert principal.partner is not None
        return await handler(request, principal.partner)

    with_partner.__name__ = handler.__name__
    return endpoint(with_partner, taxii_accept=taxii_accept, partners_only=True)


def _sign(request: Request, response: Response, *, best_effort: bool = False) -> None:
    """Sign the response; a refusal before authentication is signed when the request
    carried a signature to bind to, else sent unsigned."""
    if best_effort and "signature" not in request.headers:
        return
    body = bytes(response.body)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
    try:
        lines = sign_response_headers(_node(request), request_view(request),
                                      response.status_code, headers, body)
    except Exception:
        if not best_effort:
            raise
        return
    for name, value in lines:
        response.headers.append(name, value)
