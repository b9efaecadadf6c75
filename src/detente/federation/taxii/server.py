"""The TAXII 2.1 service of a node (Starlette), under ``/taxii2/``; ``/`` stays free.

Every endpoint: (1) authenticates (401), (2) checks ``Accept`` (406), (3) authorises and
answers, raising :class:`detente.errors.DetenteError` for every refusal, which the one
renderer turns into a TAXII error message.  Responses to signed node requests are signed.
Envelopes are built by joining stored bytes (the exact views), never re-encoding them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from detente.errors import NotFoundError, ValidationError
from detente.federation.exchange.intake import receive
from detente.federation.http.auth import Gate, Principal, read_body
from detente.federation.http.endpoint import endpoint
from detente.federation.http.errors import ForbiddenError
from detente.federation.http.media import check_content_type
from detente.federation.http.render import TAXII_MEDIA, error_body, taxii_response
from detente.federation.taxii.collections import (
    INBOX,
    Collection,
    Listing,
    Reader,
    can_write,
    collections_for,
)
from detente.federation.taxii.query import parse_query, resume
from detente.federation.taxii.status import StatusBook
from detente.federation.taxii.tokens import TokenCodec, query_hash
from detente.node import Node
from detente.stix.timestamps import format_micros

__all__ = ["API_ROOT", "TaxiiService", "create_app"]

API_ROOT = "api1"


@dataclass
class TaxiiService:
    node: Node
    gate: Gate
    reader: Reader
    statuses: StatusBook
    tokens: TokenCodec
    collections: list[Collection]
    page_limit: int

    def collection(self, key: str) -> Collection:
        for c in self.collections:
            if key in (c.id, c.alias):
                return c
        raise NotFoundError(f"no collection {key!r}", hint="list them at .../collections/")


def _service(request: Request) -> TaxiiService:
    svc: TaxiiService = request.app.state.taxii
    return svc


# -- discovery, API root, collections ---------------------------------------------
def _json(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return taxii_response(orjson.dumps(value), status, headers)


def _root_url(request: Request) -> str:
    """The API root at the node's configured public URL — never the request's ``Host``
    header, which a client chooses."""
    return f"{str(_service(request).node.settings['url']).rstrip('/')}/taxii2/{API_ROOT}/"


@endpoint
async def discovery(request: Request, principal: Principal) -> Response:
    node = _service(request).node
    return _json({
        "title": f"detente node {node.name}",
        "description": "STIX 2.1 shared with partners under this node's release policy.",
        "contact": str(node.settings["url"]),
        "default": _root_url(request),
        "api_roots": [_root_url(request)],
    })


@endpoint
async def api_root(request: Request, principal: Principal) -> Response:
    svc = _service(request)
    return _json({
        "title": f"detente node {svc.node.name}",
        "description": "releases (read your views) and inbox (push to this node)",
        "versions": [TAXII_MEDIA],
        "max_content_length": svc.gate.max_body,
    })


@endpoint
async def list_collections(request: Request, principal: Principal) -> Response:
    svc = _service(request)
    return _json({"collections": [c.resource(principal) for c in svc.collections]})


@endpoint
async def get_collection(request: Request, principal: Principal) -> Response:
    svc = _service(request)
    return _json(svc.collection(request.path_params["cid"]).resource(principal))


@endpoint
async def get_status(request: Request, principal: Principal) -> Response:
    svc = _service(request)
    requester = None if principal.is_operator else principal.requester
    body = await run_in_threadpool(svc.statuses.get, request.path_params["sid"], requester)
    return taxii_response(body)


# -- reading ------------------------------------------------------------------------
def _params(request: Request) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        out.setdefault(key, []).append(value)
    return out


async def _page(request: Request, principal: Principal, *, object_id: str | None = None,
                default_versions: tuple[str, ...] = ("last",)) -> tuple[Listing, str | None]:
    svc = _service(request)
    alias = svc.collection(request.path_params["cid"]).alias
    tq = parse_query(_params(request), page_limit=svc.page_limit,
                     default_versions=default_versions, object_id=object_id)
    qhash = query_hash(tq.filters)
    query = tq.query
    if tq.next is not None:
        query = resume(query, svc.tokens.open(tq.next, principal.requester, alias, qhash))
    listing = await run_in_threadpool(svc.reader.read, alias, principal, query)
    token = None
    if listing.more and listing.cursor is not None:
        token = svc.tokens.issue(principal.requester, alias, qhash, listing.cursor)
    return listing, token


def _date_headers(listing: Listing) -> dict[str, str]:
    if not listing.rows:
        return {}
    return {"X-TAXII-Date-Added-First": format_micros(listing.rows[0].date_added),
            "X-TAXII-Date-Added-Last": format_micros(listing.rows[-1].date_added)}


def _head(listing: Listing, token: str | None) -> bytes:
    head = b'{"more":' + (b"true" if listing.more else b"false")
    if token is not None:
        head += b',"next":' + orjson.dumps(token)
    return head


def _envelope(listing: Listing, token: str | None) -> bytes:
    """TAXII 2.1 §2: a list property with no values is omitted, never ``[]``."""
    if not listing.rows:
        return _head(listing, token) + b"}"
    return (_head(listing, token) + b',"objects":['
            + b",".join(r.body for r in listing.rows) + b"]}")


def _list_member(name: bytes, values: list[Any]) -> bytes:
    return b"," + name + b":" + orjson.dumps(values) if values else b""


@endpoint
async def get_objects(request: Request, principal: Principal) -> Response:
    listing, token = await _page(request, principal)
    return taxii_response(_envelope(listing, token), headers=_date_headers(listing))


@endpoint
async def get_object(request: Request, principal: Principal) -> Response:
    oid = request.path_params["oid"]
    listing, token = await _page(request, principal, object_id=oid)
    if not listing.rows and "next" not in request.query_params:
        raise NotFoundError(f"no object {oid} in this collection")
    return taxii_response(_envelope(listing, token), headers=_date_headers(listing))


@endpoint
async def get_versions(request: Request, principal: Principal) -> Response:
    oid = request.path_params["oid"]
    listing, token = await _page(request, principal, object_id=oid, default_versions=("all",))
    if not listing.rows and "next" not in request.query_params:
        raise NotFoundError(f"no object {oid} in this collection")
    body = _head(listing, token) + _list_member(
        b'"versions"', [r.version for r in listing.rows]) + b"}"
    return taxii_response(body, headers=_date_headers(listing))


@endpoint
async def get_manifest(request: Request, principal: Principal) -> Response:
    listing, token = await _page(request, principal)
    body = _head(listing, token) + _list_member(
        b'"objects"', [r.manifest() for r in listing.rows]) + b"}"
    return taxii_response(body, headers=_date_headers(listing))


# -- writing --------------------------------------------------------------------------
def _envelope_objects(body: bytes) -> list[Any]:
    try:
        envelope = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationError(f"request body is not JSON: {exc}") from None
    if not isinstance(envelope, dict):
        raise ValidationError("request body must be a TAXII envelope (a JSON object)")
    objects = envelope.get("objects")
    if not isinstance(objects, list):
        raise ValidationError("TAXII envelope must have an 'objects' list",
                              hint='send {"objects": [ ...STIX objects... ]}')
    return objects


@endpoint
async def post_objects(request: Request, principal: Principal) -> Response:
    svc = _service(request)
    collection = svc.collection(request.path_params["cid"])
    if not can_write(collection.alias, principal):
        raise ForbiddenError(f"collection {collection.alias} is not writable by you",
                             hint="partners push to 'inbox'")
    check_content_type(request.headers.get("content-type"))
    objects = _envelope_objects(await read_body(request, svc.gate.max_body))
    partner = principal.require_partner()
    evidence = principal.signed.evidence if principal.signed is not None else None

    def intake() -> bytes:
        result = receive(svc.node, partner, objects, evidence)
        return svc.statuses.record(principal.requester, collection.alias, result)

    return taxii_response(await run_in_threadpool(intake), 202)


@endpoint
async def delete_object(request: Request, principal: Principal) -> Response:
    svc = _service(request)
    collection = svc.collection(request.path_params["cid"])
    principal.require_operator()
    if collection.alias != INBOX:
        raise ForbiddenError("only objects in 'inbox' can be deleted over TAXII")
    oid = request.path_params["oid"]
    tq = parse_query(_params(request), page_limit=svc.page_limit, default_versions=("all",),
                     object_id=oid)
    await run_in_threadpool(svc.reader.delete, principal, oid, tq.query)
    return Response(status_code=200, media_type=TAXII_MEDIA)


# -- the application ------------------------------------------------------------------
async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    text = exc.detail if isinstance(exc, HTTPException) else "internal error"
    body = error_body(status, str(text), code="http-error")
    return taxii_response(orjson.dumps(body), status)


def taxii_routes() -> list[BaseRoute]:
    root = f"/taxii2/{API_ROOT}"
    col = f"{root}/collections/{{cid}}"
    return [
        Route("/taxii2/", discovery, methods=["GET"]),
        Route(f"{root}/", api_root, methods=["GET"]),
        Route(f"{root}/status/{{sid}}/", get_status, methods=["GET"]),
        Route(f"{root}/collections/", list_collections, methods=["GET"]),
        Route(f"{col}/", get_collection, methods=["GET"]),
        Route(f"{col}/manifest/", get_manifest, methods=["GET"]),
        Route(f"{col}/objects/", get_objects, methods=["GET"]),
        Route(f"{col}/objects/", post_objects, methods=["POST"]),
        Route(f"{col}/objects/{{oid}}/", get_object, methods=["GET"]),
        Route(f"{col}/objects/{{oid}}/", delete_object, methods=["DELETE"]),
        Route(f"{col}/objects/{{oid}}/versions/", get_versions, methods=["GET"]),
    ]


def create_app(node: Node, *, extra_routes: Sequence[BaseRoute] = (),
               authorities: Sequence[str] = ()) -> Starlette:
    """The node's ASGI application: TAXII 2.1 under ``/taxii2/``, plus ``extra_routes``
    (the UI, ledger and deconfliction endpoints).  ``authorities`` are the host[:port]
    values signed requests may name (default: from the node's ``url``/``host``/``port``)."""
    gate = Gate(node, tuple(authorities))
    app = Starlette(routes=[*taxii_routes(), *extra_routes],
                    exception_handlers={HTTPException: _http_error, Exception: _http_error})
    app.state.federation = gate
    app.state.taxii = TaxiiService(
        node=node, gate=gate, reader=Reader(node), statuses=StatusBook(node.store.engine),
        tokens=TokenCodec(node.secret_file("taxii-token.key")),
        collections=collections_for(node), page_limit=int(node.settings["page_limit"]),
    )
    return app
