"""Misbehaving partners: one Starlette app serving a TAXII-looking node per fault, each under
its own path prefix (``http://127.0.0.1:PORT/<fault>``), signing its answers with the fault
partner's own key unless the fault is the signature."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import orjson
from nacl.signing import SigningKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from detente.federation.http.auth import request_view
from detente.federation.http.signatures import sign_response_headers
from detente.stix.timestamps import format_micros

TAXII = "application/taxii+json;version=2.1"
FAULTS = ("malformed", "media", "endless", "endless-next", "huge", "slow", "drip", "badsig",
          "unsigned", "replayed", "always-503", "flaky-503", "not-taxii-envelope",
          "garbled-sig")
#: the longest any fault handler holds a request (the client gives up long before)
HOLD_S = 20.0


@dataclass
class FaultSigner:
    name: str
    signing_key: SigningKey


class FaultyPartners:
    """Fault name -> its key; state shared by the handlers (counters, a stop switch)."""

    def __init__(self) -> None:
        self.keys = {f: SigningKey.generate() for f in FAULTS}
        self.stop = threading.Event()
        self.calls: dict[str, int] = {}
        self.saved: dict[str, tuple[bytes, dict[str, str]]] = {}

    def public_key(self, fault: str) -> bytes:
        return bytes(self.keys[fault].verify_key)

    # -- responses --------------------------------------------------------------------
    def signed(self, request: Request, fault: str, body: bytes, status: int = 200,
               media: str = TAXII, headers: dict[str, str] | None = None,
               key: SigningKey | None = None) -> Response:
        response = Response(body, status, headers=headers, media_type=media)
        lines = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers]
        signer = FaultSigner(fault, key or self.keys[fault])
        for name, value in sign_response_headers(signer, request_view(request), status,
                                                 lines, body):
            response.headers.append(name, value)
        return response

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/{fault}/{path:path}", self.dispatch)])

    async def dispatch(self, request: Request) -> Response:
        fault, path = request.path_params["fault"], request.path_params["path"]
        if path == "taxii2/":
            doc = {"title": fault, "default": f"/{fault}/taxii2/api1/"}
            return self._saved(fault, self.signed(request, fault, orjson.dumps(doc)))
        if fault == "replayed":  # every later answer: the first one, signature and all
            body, headers = self.saved[fault]
            return Response(body, 200, headers=headers, media_type=TAXII)
        if path == "taxii2/api1/collections/":
            doc = {"collections": [{"id": "c0ffee00-0000-4000-8000-000000000001",
                                    "alias": "releases", "title": "releases",
                                    "can_read": True, "can_write": False}]}
            return self.signed(request, fault, orjson.dumps(doc))
        if not path.endswith("/objects/"):
            return Response(b'{"title": "not found"}', 404, media_type=TAXII)
        self.calls[fault] = self.calls.get(fault, 0) + 1
        return await _HANDLERS[fault](self, request, fault)

    def _saved(self, fault: str, response: Response) -> Response:
        keep = (b"signature", b"signature-input", b"content-digest")
        self.saved.setdefault(fault, (bytes(response.body), {
            k.decode(): v.decode() for k, v in response.raw_headers if k.lower() in keep}))
        return response


def _indicator(i: int) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--00000000-0000-4000-8000-{i:012d}",
            "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
            "pattern": f"[ipv4-addr:value = '10.0.0.{i % 250 + 1}']", "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00Z"}


def _objects(n: int = 3) -> bytes:
    return orjson.dumps({"more": True, "objects": [_indicator(i) for i in range(n)]})


async def _malformed(p: FaultyPartners, r: Request, f: str) -> Response:
    return p.signed(r, f, b'{"more": false, "objects": [{"type": "indicator"')


async def _media(p: FaultyPartners, r: Request, f: str) -> Response:
    return p.signed(r, f, b"<html>not TAXII</html>", media="text/html")


async def _endless(p: FaultyPartners, r: Request, f: str) -> Response:
    last = format_micros(1_700_000_000_000_000)
    return p.signed(r, f, _objects(), headers={"X-TAXII-Date-Added-Last": last})


async def _endless_next(p: FaultyPartners, r: Request, f: str) -> Response:
    body = orjson.dumps({"more": True, "next": "same-token-again", "objects": []})
    return p.signed(r, f, body)


async def _huge(p: FaultyPartners, r: Request, f: str) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"more": false, "objects": ['
        for _ in range(200_000):  # 12.8 GB if nobody stopped reading
            if p.stop.is_set():
                return
            yield b'"' + b"x" * 65_530 + b'",'
            await anyio.sleep(0)
    return StreamingResponse(chunks(), media_type=TAXII)


async def _hold(p: FaultyPartners) -> None:
    with anyio.move_on_after(HOLD_S):
        while not p.stop.is_set():
            await anyio.sleep(0.05)


async def _slow(p: FaultyPartners, r: Request, f: str) -> Response:
    await _hold(p)
    return p.signed(r, f, _objects())


async def _drip(p: FaultyPartners, r: Request, f: str) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(int(HOLD_S / 0.05)):
            if p.stop.is_set():
                return
            yield b" "
            await anyio.sleep(0.05)
    return StreamingResponse(chunks(), media_type=TAXII)


async def _badsig(p: FaultyPartners, r: Request, f: str) -> Response:
    return p.signed(r, f, _objects(), key=SigningKey.generate())


async def _unsigned(p: FaultyPartners, r: Request, f: str) -> Response:
    return Response(_objects(), 200, media_type=TAXII)


async def _garbled_sig(p: FaultyPartners, r: Request, f: str) -> Response:
    headers = {"Signature-Input": 'detente=("@status" ;;; "x', "Signature": "detente=:!!:",
               "Content-Digest": "sha-256=:nope:"}
    return Response(_objects(), 200, headers=headers, media_type=TAXII)


async def _always_503(p: FaultyPartners, r: Request, f: str) -> Response:
    return p.signed(r, f, b'{"title": "overloaded"}', status=503)


async def _flaky_503(p: FaultyPartners, r: Request, f: str) -> Response:
    if p.calls[f] <= 2:
        return p.signed(r, f, b'{"title": "overloaded"}', status=503)
    body = orjson.loads(_objects())
    body["more"] = False
    return p.signed(r, f, orjson.dumps(body))


async def _not_envelope(p: FaultyPartners, r: Request, f: str) -> Response:
    return p.signed(r, f, orjson.dumps({"more": "yes", "objects": {"a": 1}}))


Handler = Callable[[FaultyPartners, Request, str], Any]
_HANDLERS: dict[str, Handler] = {
    "malformed": _malformed, "media": _media, "endless": _endless,
    "endless-next": _endless_next, "huge": _huge, "slow": _slow, "drip": _drip,
    "badsig": _badsig, "unsigned": _unsigned,
    "always-503": _always_503, "flaky-503": _flaky_503, "not-taxii-envelope": _not_envelope,
    "garbled-sig": _garbled_sig,
}
