"""Endpoints next to TAXII that only partner nodes may call (ledger, deconfliction).

:func:`partner_endpoint` wraps a handler ``(request, partner) -> Response``:

  (1) check ``Accept`` (TAXII JSON endpoints only; PSI endpoints answer bytes);
  (2) authenticate with the server's :func:`authenticate` and require a *signed* partner
      request (client credentials and the operator are refused: 403);
  (3) run the handler; any exception becomes the server's TAXII error message (a query
      budget refusal adds its ``reason`` to ``details``), never a bare 500 for bad input;
  (4) sign the response, as the TAXII service does for signed requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from detente.deconflict import BudgetExceeded
from detente.errors import ForbiddenError, ValidationError
from detente.federation.http.auth import Principal, authenticate, request_view
from detente.federation.http.media import check_accept
from detente.federation.http.render import error_body, error_response, taxii_response
from detente.federation.http.signatures import sign_response_headers
from detente.node import Node

__all__ = ["PartnerHandler", "int_param", "json_response", "partner_endpoint", "render_error"]

PartnerHandler = Callable[[Request, str], Awaitable[Response]]


def render_error(exc: BaseException) -> Response:
    """The server's one TAXII error renderer; a budget refusal also names its limit."""
    if isinstance(exc, BudgetExceeded):
        body = error_body(exc.http_status, exc.message, code="budget-exceeded", hint=exc.hint)
        body["title"] = "Too Many Requests"
        body["details"]["reason"] = exc.reason
        return taxii_response(orjson.dumps(body), exc.http_status)
    return error_response(exc)


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


def _signed_partner(principal: Principal) -> str:
    if principal.signed is None or principal.partner is None:
        raise ForbiddenError("this endpoint answers partner nodes only",
                             hint="sign the request with the node key (RFC 9421)")
    return principal.partner


def partner_endpoint(node: Node, handler: PartnerHandler, *,
                     taxii_accept: bool = True) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` with steps (1)-(4) of the module docstring."""

    async def run(request: Request) -> Response:
        try:
            if taxii_accept:  # (1)
                check_accept(request.headers.get("accept"))
            principal = await authenticate(request)  # (2)
            partner = _signed_partner(principal)
        except Exception as exc:
            response = render_error(exc)
            _sign(node, request, response, best_effort=True)
            return response
        try:
            response = await handler(request, partner)  # (3)
        except Exception as exc:
            response = render_error(exc)
        _sign(node, request, response)  # (4)
        return response

    run.__name__ = handler.__name__
    return run


def _sign(node: Node, request: Request, response: Response, *,
          best_effort: bool = False) -> None:
    """Sign the response; a refusal before authentication is signed when the request
    carried a signature to bind to (so the caller sees our reason), else sent unsigned."""
    if best_effort and "signature" not in request.headers:
        return
    body = bytes(response.body)
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
    try:
        lines = sign_response_headers(node, request_view(request), response.status_code,
                                      headers, body)
    except Exception:
        if not best_effort:
            raise
        return
    for name, value in lines:
        response.headers.append(name, value)
