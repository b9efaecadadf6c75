"""Names and keys of nodes' logs and witnesses, in one place.

A node's log origin, its checkpoint key name and its witness name are all
``detente/<node name>``, with the node's Ed25519 key. Reusing the key is safe: a checkpoint
signature (C2SP signed-note, key type 0x01) signs the checkpoint body, a cosignature (type
0x04) signs ``cosignature/v1\\ntime …\\n`` followed by the body, so neither can stand for
the other, and their key hashes differ.
"""

from __future__ import annotations

from nacl.signing import VerifyKey

from detente.errors import NotFoundError
from detente.ledger import Witness
from detente.node import Node
from detente.store.engine import writer

__all__ = ["known_partner_of_origin", "name_of_origin", "node_witness", "origin_of", "partner_key",
           "witness_keys"]

_PREFIX = "detente/"


def origin_of(node_name: str) -> str:
    """Log origin, checkpoint key name and witness name of the node called ``node_name``."""
    return f"{_PREFIX}{node_name}"


def name_of_origin(origin: str) -> str | None:
    return origin[len(_PREFIX):] if origin.startswith(_PREFIX) else None


def partner_key(node: Node, partner: str) -> VerifyKey:
    return VerifyKey(node.partners.get(partner).public_key)


def witness_keys(node: Node) -> dict[str, VerifyKey]:
    """Every partner's witness name and key (to verify cosignatures they made)."""
    return {origin_of(p.name): VerifyKey(p.public_key) for p in node.partners.all()}


def node_witness(node: Node) -> Witness:
    """This node's witness over the logs of every partner it knows."""
    origins = {origin_of(p.name): {origin_of(p.name): VerifyKey(p.public_key)}
               for p in node.partners.all()}
    return Witness(writer(node.store.engine), origin_of(node.name), node.signing_key, origins)


def known_partner_of_origin(node: Node, origin: str) -> str | None:
    """The partner whose log ``origin`` is, if this node knows it."""
    name = name_of_origin(origin)
    if name is None:
        return None
    try:
        return node.partners.get(name).name
    except NotFoundError:
        return None
