"""Calling a partner's ledger and deconfliction endpoints over signed HTTP.

Every request is signed with the node key and every response must carry the partner's
signature (:class:`NodeAuth`); a refusal comes back as the partner's TAXII error message
and is raised here as :class:`PartnerRefusal` (or :class:`BudgetExceeded` for a query
budget), an unreachable partner as :class:`PartnerUnreachable`.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from detente.deconflict import BudgetExceeded
from detente.errors import DetenteError
from detente.federation.http.render import TAXII_MEDIA
from detente.federation.http.signatures import NodeAuth
from detente.node import Node

__all__ = [
    "PartnerRefusal",
    "PartnerUnreachable",
    "checked",
    "get_json",
    "open_partner_client",
    "post_bytes",
    "post_json",
]


class PartnerRefusal(DetenteError):
    """The partner answered with an error message (its text is kept)."""

    http_status = 502

    def __init__(self, message: str, *, status: int, code: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.code = code


class PartnerUnreachable(DetenteError):
    """The partner could not be reached, or did not answer in time."""

    http_status = 502


def open_partner_client(node: Node, partner: str, *, timeout_s: float = 60.0) -> httpx.Client:
    """A client for ``partner``'s URL that signs requests and checks signed responses."""
    known = node.partners.get(partner)
    return httpx.Client(base_url=known.url, auth=NodeAuth(node, known),
                        headers={"Accept": TAXII_MEDIA}, timeout=timeout_s)


def _error_doc(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def checked(response: httpx.Response, partner: str) -> httpx.Response:
    """``response`` if it succeeded; else the partner's refusal, raised with its reason."""
    if response.status_code < 400:
        return response
    doc = _error_doc(response)
    text = str(doc.get("description") or f"HTTP {response.status_code}")
    details = doc.get("details") if isinstance(doc.get("details"), dict) else {}
    assert isinstance(details, dict)
    hint = details.get("hint") if isinstance(details.get("hint"), str) else None
    if response.status_code == 429:
        reason = str(details.get("reason") or "budget")
        raise BudgetExceeded(f"{partner} refused the query: {text}", reason=reason, hint=hint)
    raise PartnerRefusal(f"{partner} refused: {text}", status=response.status_code,
                         code=str(doc.get("error_code") or "error"), hint=hint)


def _send(client: httpx.Client, partner: str, method: str, path: str,
          **kwargs: Any) -> httpx.Response:
    try:
        return checked(client.request(method, path, **kwargs), partner)
    except httpx.HTTPError as exc:
        raise PartnerUnreachable(f"{partner} could not be reached at {client.base_url}: "
                                 f"{type(exc).__name__}") from None


def _json(response: httpx.Response, partner: str) -> dict[str, Any]:
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise PartnerRefusal(f"{partner} answered with something that is not JSON",
                             status=response.status_code, code="not-json") from None
    if not isinstance(doc, dict):
        raise PartnerRefusal(f"{partner} answered with JSON that is not an object",
                             status=response.status_code, code="not-object")
    return doc


def get_json(client: httpx.Client, partner: str, path: str,
             params: dict[str, Any] | None = None) -> dict[str, Any]:
    return _json(_send(client, partner, "GET", path, params=params), partner)


def post_json(client: httpx.Client, partner: str, path: str, doc: Any) -> dict[str, Any]:
    body = orjson.dumps(doc)
    response = _send(client, partner, "POST", path, content=body,
                     headers={"Content-Type": "application/json"})
    return _json(response, partner)


def post_bytes(client: httpx.Client, partner: str, path: str, body: bytes,
               params: dict[str, Any] | None = None) -> bytes:
    response = _send(client, partner, "POST", path, content=body, params=params,
                     headers={"Content-Type": "application/octet-stream",
                              "Accept": f"application/octet-stream, {TAXII_MEDIA}"})
    return response.content
