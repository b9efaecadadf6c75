"""The one shape and the one renderer of TAXII responses, errors included.

Every error leaving the service is a TAXII 2.1 error message with exactly these keys:
``title``, ``description``, ``error_id``, ``error_code``, ``http_status`` (a string, as
the specification says), ``external_details`` and ``details``.  Unexpected exceptions
become a 500 with no internals in it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

from detente.deconflict import BudgetExceeded
from detente.errors import DetenteError

__all__ = ["ERROR_KEYS", "TAXII_MEDIA", "error_body", "error_response", "taxii_response"]

TAXII_MEDIA = "application/taxii+json;version=2.1"
ERROR_KEYS = ("title", "description", "error_id", "error_code", "http_status",
              "external_details", "details")
DOCS = "https://github.com/detente/detente/blob/main/docs/taxii.md#errors"

_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 406: "Not Acceptable", 409: "Conflict",
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
_CHALLENGE = 'Basic realm="detente", Bearer realm="detente", Signature realm="detente"'

log = logging.getLogger("detente.federation")


def taxii_response(body: bytes, status: int = 200,
                   headers: Mapping[str, str] | None = None) -> Response:
    """A TAXII 2.1 response from already-encoded JSON bytes."""
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=TAXII_MEDIA)


def error_body(status: int, description: str, *, code: str, hint: str | None = None,
               error_id: str | None = None) -> dict[str, Any]:
    """The TAXII error message, always with every key of :data:`ERROR_KEYS`."""
    return {
        "title": _TITLES.get(status, "Error"),
        "description": description,
        "error_id": error_id or str(uuid.uuid4()),
        "error_code": code,
        "http_status": str(status),
        "external_details": DOCS,
        "details": {"hint": hint} if hint else {},
    }


def _code(exc: BaseException) -> str:
    name = type(exc).__name__
    return "".join("-" + c.lower() if c.isupper() else c for c in name).lstrip("-")


def error_response(exc: BaseException) -> Response:
    """Render any exception as a TAXII error; only :class:`DetenteError` text is shown.
    A query budget refusal also names its limit (``details.reason``, code
    ``budget-exceeded``)."""
    if isinstance(exc, DetenteError):
        status, description, hint = exc.http_status, exc.message, exc.hint
    else:
        status, description, hint = 500, "internal error", None
    if isinstance(exc, BudgetExceeded):
        body = error_body(status, description, code="budget-exceeded", hint=hint)
        body["details"]["reason"] = exc.reason
        return taxii_response(orjson.dumps(body), status)
    body = error_body(status, description, code=_code(exc), hint=hint)
    if status == 500:
        log.error("TAXII request failed (error_id %s)", body["error_id"], exc_info=exc)
    headers = {"WWW-Authenticate": _CHALLENGE} if status == 401 else {}
    return taxii_response(orjson.dumps(body), status, headers)
