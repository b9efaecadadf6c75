"""Equivocation evidence on the wire: keeping a partner's signed answers, and checking an
evidence file (``detente log check-evidence``) with nothing but the accused log's key.

The file format and the verdict are :mod:`detente.ledger.evidence`; this module adds the
one thing the ledger cannot do itself: RFC 9421 — turning a :class:`Reply` into a
:class:`SignedExchange` and checking, long after the fact, that the partner signed that
answer to that request (:func:`~detente.federation.http.signatures.verify_recorded_response`).
"""

from __future__ import annotations

import base64
import binascii

from nacl.signing import VerifyKey

from detente.errors import DetenteError
from detente.federation.http.client import Reply
from detente.federation.http.signatures import verify_recorded_response
from detente.federation.witnessing.names import name_of_origin
from detente.ledger import Evidence, SignatureError, SignedExchange, Verdict, parse_vkey
from detente.ledger.evidence import check

__all__ = ["check_evidence", "exchange_of", "read_key"]

#: the request fields a response signature covers (``"signature";req``) or that carry it
_REQUEST_FIELDS = ("signature-input", "signature", "content-digest", "content-type")


def exchange_of(reply: Reply) -> SignedExchange:
    """The request and the partner's signed answer, exactly as they travelled."""
    if reply.request is None:
        raise SignatureError("the answer was kept without its request: it proves nothing")
    request = reply.request
    kept = tuple((n, v) for n, v in request.headers.items() if n.lower() in _REQUEST_FIELDS)
    return SignedExchange(request.method, str(request.url), kept, reply.status,
                          tuple(reply.headers.items()), reply.body)


def read_key(text: str) -> tuple[str | None, VerifyKey]:
    """A public key as ``detente partner show`` prints it (base64 of 32 bytes), or a C2SP
    verifier key ``<name>+<hash>+<base64>`` (its name is then the checkpoint key name)."""
    text = text.strip()
    if not (len(text) == 44 and text.endswith("=")):  # not base64 of 32 bytes
        name, key = parse_vkey(text)
        return name, key
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SignatureError("the key is neither base64 nor a verifier key") from None
    if len(raw) != 32:
        raise SignatureError("the key is not a 32-byte Ed25519 public key")
    return None, VerifyKey(raw)


def check_evidence(evidence: Evidence, key: VerifyKey, key_name: str | None = None) -> Verdict:
    """Does ``evidence`` prove that the node owning ``key`` equivocated?"""
    node = name_of_origin(evidence.origin)
    if node is None:
        return Verdict(False, f"{evidence.origin!r} is not the origin of a detente node's log")

    def verify_response(answer: SignedExchange) -> None:
        try:
            verify_recorded_response(answer.method, answer.url, answer.request_headers,
                                     answer.status, answer.headers, answer.body,
                                     key_id=node, public_key=bytes(key))
        except DetenteError as exc:
            raise SignatureError(exc.message) from None

    return check(evidence, key, verify_response, key_name=key_name)
