"""Equivocation evidence that convinces a third party holding only the log's public key.

An alarm kept only as "a proof failed here" convinces nobody else (and a truncated answer
would make it permanent). The evidence file keeps what the accused log itself *signed*:

* ``conflicting-root``: two checkpoint notes of the same origin and size with different
  roots. Both signed by the log's key: they cannot both be true.
* ``inconsistent``: two checkpoint notes of different sizes, and the log's own signed HTTP
  answer (RFC 9421, bound to the request and to the body's Content-Digest) to "prove that
  the smaller is a prefix of the larger" — a well-formed proof that does not verify.
* ``rollback``: two checkpoint notes of different sizes, and the log's signed answer to
  that same request saying it has no tree of the larger size (HTTP 404): a log that signed
  a tree of that size and no longer holds it has rewritten (truncated) its history.

File format ``detente-evidence/v1`` (JSON object, UTF-8)::

    {"format": "detente-evidence/v1",
     "origin": "detente/us", "kind": "inconsistent",
     "detected_at": "2025-11-14T09:30:00Z", "detail": "size 3 to 8: ...",
     "first": "<signed checkpoint note, the one remembered>",
     "second": "<signed checkpoint note, the one that conflicts>",
     "response": null | {
        "method": "GET", "url": "http://host/ledger/proofs/consistency?old=3&new=8",
        "request_headers": [["signature-input", "..."], ["signature", "..."]],
        "status": 200,
        "headers": [["content-type", "..."], ["content-digest", "..."],
                    ["signature-input", "..."], ["signature", "..."]],
        "body": "<base64 of the exact response body>"}}

:func:`check` decides whether a file holds. It checks the notes and the proof itself; the
HTTP signature is checked by the ``verify_response`` it is given (RFC 9421 lives in
``federation/http``), so the verdict needs nothing but the accused log's key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from nacl.signing import VerifyKey

from detente.ledger import wire
from detente.ledger.checkpoint import Checkpoint
from detente.ledger.errors import (
    CheckpointError,
    ConsistencyProofError,
    LedgerError,
    ProofError,
    SignatureError,
)
from detente.ledger.proofs import verify_consistency

__all__ = ["CONFLICTING_ROOT", "FORMAT", "INCONSISTENT", "KINDS", "MAX_EVIDENCE_BYTES",
           "ROLLBACK", "Evidence", "EvidenceError", "SignedExchange", "Verdict", "check"]

FORMAT = "detente-evidence/v1"
CONFLICTING_ROOT = "conflicting-root"
INCONSISTENT = "inconsistent"
ROLLBACK = "rollback"
KINDS = (CONFLICTING_ROOT, INCONSISTENT, ROLLBACK)
#: an evidence file is two notes and one proof answer: far below this
MAX_EVIDENCE_BYTES = 1 << 20
_CONSISTENCY_PATH = "/ledger/proofs/consistency"


class EvidenceError(LedgerError):
    """An evidence file is malformed (not ``detente-evidence/v1``)."""


def _headers(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, list) or len(value) > 64:
        raise EvidenceError(f"{what} is not a list of at most 64 [name, value] pairs")
    out = []
    for item in value:
        if (not isinstance(item, list) or len(item) != 2
                or not all(isinstance(x, str) for x in item)):
            raise EvidenceError(f"{what} holds an entry that is not [name, value]")
        out.append((item[0], item[1]))
    return tuple(out)


def _text(doc: Mapping[str, Any], key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str):
        raise EvidenceError(f"evidence field {key!r} is missing or not text")
    return value


@dataclass(frozen=True, slots=True)
class SignedExchange:
    """One request and the partner's signed answer to it, exactly as they travelled."""

    method: str
    url: str
    request_headers: tuple[tuple[str, str], ...]
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def to_doc(self) -> dict[str, Any]:
        return {"method": self.method, "url": self.url,
                "request_headers": [list(h) for h in self.request_headers],
                "status": self.status, "headers": [list(h) for h in self.headers],
                "body": base64.b64encode(self.body).decode()}

    @classmethod
    def from_doc(cls, doc: Any) -> SignedExchange:
        if not isinstance(doc, dict):
            raise EvidenceError("evidence 'response' is not an object")
        status = doc.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status < 600:
            raise EvidenceError("evidence response status is not an HTTP status")
        try:
            body = base64.b64decode(_text(doc, "body").encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise EvidenceError("evidence response body is not base64") from None
        return cls(_text(doc, "method"), _text(doc, "url"),
                   _headers(doc.get("request_headers"), "request_headers"), status,
                   _headers(doc.get("headers"), "response headers"), body)

    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query, keep_blank_values=True)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a witness keeps when a log showed two views that cannot both be true."""

    origin: str
    kind: str
    detected_at: str
    detail: str
    first_note: str
    second_note: str
    response: SignedExchange | None = None

    def to_doc(self) -> dict[str, Any]:
        return {"format": FORMAT, "origin": self.origin, "kind": self.kind,
                "detected_at": self.detected_at, "detail": self.detail,
                "first": self.first_note, "second": self.second_note,
                "response": None if self.response is None else self.response.to_doc()}

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_doc(), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> Evidence:
        """Parse an evidence file (hostile input: every failure is :class:`EvidenceError`)."""
        if len(data) > MAX_EVIDENCE_BYTES:
            raise EvidenceError(f"evidence file is larger than {MAX_EVIDENCE_BYTES} bytes")
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise EvidenceError("evidence file is not JSON") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise EvidenceError(f"evidence file is not {FORMAT}")
        kind = _text(doc, "kind")
        if kind not in KINDS:
            raise EvidenceError(f"evidence kind {kind[:40]!r} is not one of {', '.join(KINDS)}")
        raw = doc.get("response")
        return cls(_text(doc, "origin"), kind, _text(doc, "detected_at"), _text(doc, "detail"),
                   _text(doc, "first"), _text(doc, "second"),
                   None if raw is None else SignedExchange.from_doc(raw))


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether the evidence proves the log equivocated, and why (one sentence)."""

    holds: bool
    reason: str


ResponseVerifier = Callable[[SignedExchange], None]
"""Raises :class:`SignatureError` unless the accused log signed this answer to this request."""


def _refused(reason: str) -> Verdict:
    return Verdict(False, reason)


def check(evidence: Evidence, key: VerifyKey, verify_response: ResponseVerifier, *,
          key_name: str | None = None) -> Verdict:
    """Does ``evidence`` prove that the log signed by ``key`` equivocated? Steps:

    (1) both notes are checkpoints of ``evidence.origin`` signed by ``key`` (under
        ``key_name``, by default the origin);
    (2) ``conflicting-root``: same size, different roots;
    (3) otherwise the log's own answer to "prove the smaller is a prefix of the larger",
        signed by ``key`` for exactly that request (``verify_response``), is a proof that
        does not verify (``inconsistent``) or a 404 (``rollback``).
    """
    name = key_name or evidence.origin
    try:  # (1)
        first = Checkpoint.from_note(evidence.first_note, {name: key})
        second = Checkpoint.from_note(evidence.second_note, {name: key})
    except (CheckpointError, SignatureError) as exc:
        return _refused(f"a checkpoint note is not signed by this key: {exc.message}")
    if first.origin != evidence.origin or second.origin != evidence.origin:
        return _refused(f"the checkpoints are not both of {evidence.origin!r}")
    if evidence.kind == CONFLICTING_ROOT:  # (2)
        if first.size == second.size and first.root != second.root:
            return Verdict(True, f"{evidence.origin} signed two different trees of size "
                                 f"{first.size}: it showed two histories")
        return _refused("the two checkpoints do not have the same size and different roots")
    if first.size == second.size:
        return _refused("the two checkpoints have the same size: nothing to prove between them")
    small, large = (first, second) if first.size < second.size else (second, first)
    return _check_answer(evidence, small, large, verify_response)  # (3)


def _check_answer(evidence: Evidence, small: Checkpoint, large: Checkpoint,
                  verify_response: ResponseVerifier) -> Verdict:
    answer = evidence.response
    if answer is None:
        return _refused("no signed answer of the log is kept: nothing a third party can check")
    try:
        verify_response(answer)
    except LedgerError as exc:
        return _refused(f"the answer is not signed by this key: {exc.message}")
    query = answer.query()
    asked = (answer.method, urlsplit(answer.url).path.endswith(_CONSISTENCY_PATH),
             query.get("old"), query.get("new"))
    if asked != ("GET", True, [str(small.size)], [str(large.size)]):
        return _refused(f"the signed answer is not to a consistency request from "
                        f"{small.size} to {large.size}")
    if evidence.kind == ROLLBACK:
        if answer.status == 404:
            return Verdict(True, f"{evidence.origin} signed a tree of size {large.size}, then "
                                 f"answered under its signature that it has no such tree: "
                                 "it rolled its log back")
        return _refused(f"the signed answer is HTTP {answer.status}, not a refusal (404)")
    if answer.status != 200:
        return _refused(f"the signed answer is HTTP {answer.status}, not a proof")
    try:
        doc = orjson.loads(answer.body)
        if not isinstance(doc, dict):
            raise ProofError("the answer is not a JSON object")
        proof: Sequence[bytes] = wire.read_consistency(doc, small.size, large.size, "answer")
    except (orjson.JSONDecodeError, ProofError):
        return _refused("the signed answer is not a consistency proof document")
    try:
        verify_consistency(small.size, large.size, small.root, large.root, proof)
    except ConsistencyProofError as exc:
        return Verdict(True, f"{evidence.origin} signed trees of sizes {small.size} and "
                             f"{large.size} and, under its signature, a proof between them "
                             f"that does not verify ({exc.message}): they cannot both be true")
    return _refused(f"the proof verifies: the tree of size {small.size} is a prefix of the "
                    f"tree of size {large.size}, no equivocation")

