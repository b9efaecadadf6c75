"""Verifiable priority over the network: reveal a claim to a partner; verify one revealed here.

The claimant (``detente claim reveal ID --to P``) sends the opening — the object as the
policy releases it today (the content committed; only its handling — markings and
``modified`` — may have changed, e.g. a TLP:RED report declassified), the salt, the claim's
leaf index and entry — to ``POST /ledger/claims``. Nothing is sent that the release policy
would not release to P unredacted (a claim opens only on the committed content, so a denied
or redacted object cannot be revealed). The
verifier:

1. checks that the object and salt open the commitment the entry carries (else: forged);
2. finds the earliest tree of the claimant's log **its own witness** checked that holds that
   leaf (``Witness.first_covering``) — the claimant cannot choose it;
3. asks the claimant for the inclusion proof of the leaf in that tree and checks it against
   the root its witness stored (a claim appended later is in no such tree: a late claim
   cannot be dated earlier);
4. compares that time with its own first report of the same content (the trust engine's
   claims), records the verification (``priority_verified``, and a ``priority`` ledger entry
   about the claimant) and takes the object in through the one intake path.

The answer to the claimant certifies only steps 1-3 ("your commitment was in your log by
T, as we witnessed"), never step 4: whether and when *we* reported the content is ours, and
answering it would make every reveal an oracle on what we hold. Credit counts the claims
verified as made before our own first report (``ClaimBook.proven``).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from detente.errors import DetenteError, NotFoundError
from detente.federation.exchange.intake import receive
from detente.federation.http.auth import read_body
from detente.federation.http.client import PartnerClient, open_partner_client
from detente.federation.http.endpoint import json_response, partner_endpoint
from detente.federation.witnessing.names import node_witness, origin_of
from detente.federation.witnessing.witness import ClientFactory
from detente.ledger import Entry, ProofError, verify_inclusion, wire
from detente.ledger.hashing import leaf_hash
from detente.node import Node
from detente.priority import (
    ClaimError,
    Opening,
    RevealRefused,
    Verification,
    check_opening,
    commitment,
)
from detente.priority.commitment import MAX_OPENING
from detente.stix.validate import validate

__all__ = ["CLAIMS_PATH", "claim_routes", "reveal_claim", "verify_claim"]

CLAIMS_PATH = "/ledger/claims"


def reveal_claim(node: Node, object_id: str, partner: str,
                 client: PartnerClient) -> dict[str, Any]:
    """Send our claim on ``object_id`` to ``partner`` with its opening; returns its answer."""
    record = node.claims.require(object_id)
    stored = node.store.get(object_id)  # the version the policy decides on today
    if stored is None:
        raise NotFoundError(f"{object_id} is no longer stored here")
    if commitment(record.salt, stored.body) != record.commitment:
        raise RevealRefused(f"the content of {object_id} changed since it was claimed "
                            f"(version {record.version}); only its handling (markings) may "
                            "change before a reveal")
    decision = node.releaser.decide(stored, node.partners.get(partner))
    if not decision.allowed:
        raise RevealRefused(f"the release policy does not release {object_id} to {partner}: "
                          + "; ".join(decision.reasons),
                          hint=f"detente policy explain {object_id} --partner {partner}")
    if decision.removed:
        raise RevealRefused(
            f"the release policy would redact {', '.join(decision.removed)} for {partner}; "
            "a claim reveals the content exactly as committed",
            hint=f"detente policy explain {object_id} --partner {partner}")
    body = dict(stored.body)
    entry = node.ledger.entry(record.ledger_index)
    opening = Opening(body, record.salt, record.ledger_index, entry.canonical)
    answer = client.post_json(CLAIMS_PATH, opening.to_json())
    # a release like any other in the ledger: the partner's `log verify` matches the bytes
    # it stored (intake re-serialises with orjson, as we do here) to this entry
    node.ledger.append(Entry(
        kind="release", time=datetime.now(UTC), partner=partner, object_id=object_id,
        object_version=stored.version or None,
        view_hash=hashlib.sha256(orjson.dumps(body)).hexdigest(),
        detail=f"claim revealed: commitment {record.commitment.hex()} at leaf "
               f"{record.ledger_index}"))
    return answer


def verify_claim(node: Node, partner: str, body: bytes, *,
                 clients: ClientFactory | None = None) -> dict[str, Any]:
    """Steps 1-4 of the module docstring for an opening ``partner`` sent us."""
    opening = Opening.from_bytes(body)
    try:
        obj = validate(opening.object)
    except DetenteError as exc:
        raise ClaimError(f"the claimed object is not valid STIX: {exc.message}") from None
    _entry, digest = check_opening(opening)  # (1)
    origin = origin_of(partner)
    tree = node_witness(node).first_covering(origin, opening.index)  # (2)
    if tree is None:
        return {"certified": False, "claim_index": opening.index,
                "reason": f"no tree of your log that {node.name} witnessed holds leaf "
                          f"{opening.index} yet; reveal again after {node.name} next "
                          "witnesses your log"}
    opener = clients or (lambda name: open_partner_client(node, name))
    with opener(partner) as client:  # (3)
        doc = client.get_json("/ledger/proofs/inclusion",
                              {"index": opening.index, "size": tree.size})
    try:
        proof = wire.read_inclusion(doc, opening.index, tree.size, "the inclusion proof")
        verify_inclusion(leaf_hash(opening.entry), opening.index, tree.size, proof, tree.root)
    except (ProofError, DetenteError, KeyError, TypeError, ValueError) as exc:
        raise ClaimError(f"the claim entry is not leaf {opening.index} of the tree of your "
                         f"log we witnessed (size {tree.size}): {exc}") from None
    own = node.trust.first_report(obj.body)  # (4)
    version = obj.version
    fresh = node.claims.record(Verification(
        partner, obj.id, version, digest, opening.index, tree.size, tree.at, own,
        datetime.now(UTC).timestamp()))
    witnessed_at = datetime.fromtimestamp(tree.at, UTC)
    if fresh:
        node.ledger.append(Entry(
            kind="priority", time=datetime.now(UTC), partner=partner, object_id=obj.id,
            object_version=version or None,
            detail=orjson.dumps({"commitment": digest.hex(), "claim_index": opening.index,
                                 "witnessed_size": tree.size,
                                 "witnessed_at": witnessed_at.isoformat()},
                                option=orjson.OPT_SORT_KEYS).decode()))
        receive(node, partner, [opening.object], None)
    return {"certified": True, "claim_index": opening.index, "commitment": digest.hex(),
            "witnessed_size": tree.size, "witnessed_at": witnessed_at.isoformat()}


def claim_routes(node: Node) -> list[BaseRoute]:
    """``POST /ledger/claims``: a partner reveals a claim of priority to us."""

    async def claim(request: Request, partner: str) -> Response:
        body = await read_body(request, MAX_OPENING)
        return json_response(await run_in_threadpool(verify_claim, node, partner, body))

    return [Route(CLAIMS_PATH, partner_endpoint(claim), methods=["POST"])]
