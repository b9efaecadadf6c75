"""Opaque ``next`` tokens: bound to the requester, the collection and the query.

A token is ``base64url(payload || HMAC-SHA256(node key, payload))`` where the payload is
compact JSON ``{"r": requester, "c": collection, "q": query hash, "a": cursor}``.  A token
that does not verify, belongs to someone else, or is used with another query is refused
(400); it carries no rights — the request is authorised afresh on every use, and the
cursor only says where the previous page stopped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence

import orjson

from detente.federation.http.errors import BadTokenError

__all__ = ["TokenCodec", "query_hash"]

_MAC = 32


def query_hash(params: Mapping[str, Sequence[str]]) -> str:
    """A hash of the normalised filters (``limit`` and ``next`` excluded)."""
    norm = sorted((k, sorted(v)) for k, v in params.items() if k not in {"limit", "next"})
    return hashlib.sha256(orjson.dumps(norm)).hexdigest()[:32]


class TokenCodec:
    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("token key must be at least 32 bytes")
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()

    def issue(self, requester: str, collection: str, qhash: str, cursor: int) -> str:
        payload = orjson.dumps({"r": requester, "c": collection, "q": qhash, "a": cursor})
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode().rstrip("=")

    def open(self, token: str, requester: str, collection: str, qhash: str) -> int:
        """The cursor in a token issued to this requester for this query; else 400."""
        payload = self._verified(token)
        try:
            data = orjson.loads(payload)
            ok = (data["r"] == requester and data["c"] == collection and data["q"] == qhash)
            cursor = data["a"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise _bad() from None
        if not ok or not isinstance(cursor, int) or isinstance(cursor, bool):
            raise _bad("next token was issued for another requester or query")
        return cursor

    def _verified(self, token: str) -> bytes:
        if not token or len(token) > 1024:
            raise _bad()
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise _bad() from None
        payload, mac = raw[:-_MAC], raw[-_MAC:]
        if len(raw) <= _MAC or not hmac.compare_digest(mac, self._mac(payload)):
            raise _bad()
        return payload


def _bad(message: str = "next token is not valid") -> BadTokenError:
    return BadTokenError(message, hint="use the 'next' value of the previous page, unchanged, "
                                       "with the same filters")
