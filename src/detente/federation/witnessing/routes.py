"""The ledger over HTTP: what partner nodes need to verify and witness this node's log.

Signed partner requests only (:func:`partner_endpoint`); JSON in the TAXII media type,
hashes and proofs in standard base64, errors as TAXII error messages.

=====  ============================================  =========================================
GET    ``/ledger/checkpoint``                        latest signed checkpoint note, with the
                                                     cosignatures collected for its tree
GET    ``/ledger/proofs/inclusion?index=I&size=N``   RFC 9162 inclusion proof of leaf I
GET    ``/ledger/proofs/consistency?old=M&new=N``    RFC 9162 consistency proof M → N
GET    ``/ledger/entries?start=S&end=E&limit=L``     leaves [S, E): the caller's own entries in
                                                     full (canonical JSON), others' as hashes
GET    ``/ledger/batch?index=I``                     the release entries under the caller's
                                                     own release batch at leaf I (one that is
                                                     not the caller's is "not found")
POST   ``/ledger/cosignatures``  ``{"note": …}``     a witness hands back its cosignature
GET    ``/ledger/witnessed``                         the partners' checkpoints this node last
                                                     cosigned (gossip: how split views surface)
=====  ============================================  =========================================
"""

from __future__ import annotations

from typing import Any

import orjson
from nacl.signing import VerifyKey
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from detente.errors import NotFoundError, ValidationError
from detente.federation.http.auth import read_body
from detente.federation.http.endpoint import int_param, json_response, partner_endpoint
from detente.federation.witnessing.cosignatures import CosignatureBook
from detente.federation.witnessing.names import node_witness, origin_of
from detente.ledger import Checkpoint, CheckpointError, SignatureError, wire
from detente.node import Node
from detente.release.proofs import batch_entries

__all__ = ["MAX_ENTRIES_PAGE", "ledger_routes"]

MAX_ENTRIES_PAGE = 1000
_MAX_COSIGN_BODY = 64 * 1024


class _LedgerService:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.book = CosignatureBook(node.store.engine)

    def _size(self) -> int:
        return self.node.ledger.size()

    def checkpoint(self) -> dict[str, Any]:
        signed = self.node.ledger.checkpoint()
        cosigned = self.book.attach(signed)
        return wire.checkpoint_doc(signed.origin, signed.size, signed.root,
                                   cosigned.to_note(), self.book.witnesses(signed))

    def inclusion(self, index: int, size: int | None) -> dict[str, Any]:
        ledger = self.node.ledger
        size = self._within(size, "size")
        if index >= size:
            raise NotFoundError(f"leaf {index} is outside a tree of size {size}")
        proof = ledger.inclusion_proof(index, size)
        return wire.inclusion_doc(index, size, ledger.leaf_hash(index), proof)

    def consistency(self, old: int, new: int | None) -> dict[str, Any]:
        new = self._within(new, "new")
        if old > new:
            raise ValidationError(f"old size {old} is larger than new size {new}")
        proof = self.node.ledger.consistency_proof(old, new)
        return wire.consistency_doc(old, new, proof)

    def _within(self, size: int | None, what: str) -> int:
        current = self._size()
        if size is None:
            return current
        if size > current:
            raise NotFoundError(f"{what} {size} is larger than the log (size {current})")
        return size

    def entries(self, partner: str, start: int, end: int | None, limit: int) -> dict[str, Any]:
        end = self._within(end, "end")
        limit = max(1, min(limit, MAX_ENTRIES_PAGE))
        stop = min(end, start + limit)
        rows = self.node.ledger.entries_for(partner, start, stop) if start < stop else []
        out = [wire.EntryRow(v.index, v.leaf_hash,
                             None if v.entry is None else v.entry.canonical.decode())
               for v in rows]
        more = stop < end
        return wire.entries_doc(start, end, out, more, stop if more else None)

    def batch(self, partner: str, index: int) -> dict[str, Any]:
        """The release entries of the caller's release batch at leaf ``index``; any other
        leaf (another partner's batch, another kind, past the end) answers alike."""
        missing = NotFoundError(f"no release batch of yours at leaf {index}")
        if index >= self._size():
            raise missing
        try:
            batch, members = batch_entries(self.node.store.engine, self.node.ledger, index)
        except NotFoundError:
            raise missing from None
        if batch.partner != partner:
            raise missing
        return wire.batch_doc(index, [e for _seq, e in members])

    def cosign(self, partner: str, body: bytes) -> dict[str, Any]:
        # (1) the body is {"note": <our checkpoint, cosigned>}, and we signed that checkpoint
        note = _note_of(body)
        own = {self.node.ledger.key_name: self.node.verify_key}
        checkpoint = Checkpoint.from_note(note, own)
        if checkpoint.origin != self.node.ledger.origin:
            raise CheckpointError(f"checkpoint of {checkpoint.origin!r} is not this log's")
        if checkpoint.size > self._size() or self.node.ledger.root(checkpoint.size) != \
                checkpoint.root:
            raise CheckpointError(f"checkpoint {checkpoint.size} is not a tree of this log")
        # (2) the cosignature is the requesting partner's, and verifies with its key
        name = origin_of(partner)
        key = VerifyKey(self.node.partners.get(partner).public_key)
        found = checkpoint.cosignatures({name: key})
        if not found:
            raise SignatureError(f"the note carries no cosignature by {name!r}",
                                 hint="cosign with the node key as witness 'detente/<name>'")
        # (3) keep the latest one
        self.book.add(checkpoint, found[-1])
        return {"stored": True, "size": checkpoint.size, "witness": name,
                "timestamp": found[-1].timestamp}

    def witnessed(self) -> dict[str, Any]:
        witness = node_witness(self.node)
        out = []
        for p in self.node.partners.all():
            seen = witness.last_seen(origin_of(p.name))
            if seen is not None:
                out.append({"origin": seen.origin, "size": seen.size, "note": seen.to_note()})
        return {"checkpoints": out}


def _note_of(body: bytes) -> str:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ValidationError("cosignature body is not JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("note"), str):
        raise ValidationError('cosignature body must be {"note": "<cosigned checkpoint>"}')
    note: str = doc["note"]
    return note


def ledger_routes(node: Node) -> list[BaseRoute]:
    """The ``/ledger/…`` routes of ``node``; mount with ``create_app(extra_routes=…)``."""
    svc = _LedgerService(node)

    async def checkpoint(request: Request, partner: str) -> Response:
        return json_response(await run_in_threadpool(svc.checkpoint))

    async def inclusion(request: Request, partner: str) -> Response:
        index = int_param(request, "index")
        size = int_param(request, "size") if "size" in request.query_params else None
        return json_response(await run_in_threadpool(svc.inclusion, index, size))

    async def consistency(request: Request, partner: str) -> Response:
        old = int_param(request, "old")
        new = int_param(request, "new") if "new" in request.query_params else None
        return json_response(await run_in_threadpool(svc.consistency, old, new))

    async def entries(request: Request, partner: str) -> Response:
        start = int_param(request, "start", 0)
        end = int_param(request, "end") if "end" in request.query_params else None
        limit = int_param(request, "limit", MAX_ENTRIES_PAGE)
        doc = await run_in_threadpool(svc.entries, partner, start, end, limit)
        return json_response(doc)

    async def batch(request: Request, partner: str) -> Response:
        index = int_param(request, "index")
        return json_response(await run_in_threadpool(svc.batch, partner, index))

    async def cosign(request: Request, partner: str) -> Response:
        body = await read_body(request, _MAX_COSIGN_BODY)
        return json_response(await run_in_threadpool(svc.cosign, partner, body), 201)

    async def witnessed(request: Request, partner: str) -> Response:
        return json_response(await run_in_threadpool(svc.witnessed))

    def route(path: str, handler: Any, method: str = "GET") -> Route:
        return Route(path, partner_endpoint(handler), methods=[method])

    return [
        route("/ledger/checkpoint", checkpoint),
        route("/ledger/proofs/inclusion", inclusion),
        route("/ledger/proofs/consistency", consistency),
        route("/ledger/entries", entries),
        route("/ledger/batch", batch),
        route("/ledger/cosignatures", cosign, "POST"),
        route("/ledger/witnessed", witnessed),
    ]
