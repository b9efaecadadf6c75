"""Key rotation: a node announces a new Ed25519 key in a statement signed by its old one.

The statement (JSON, stable tag ``detente-key-rotation/1``)::

    {"statement": "detente-key-rotation/1", "name": "us", "old_key": "<b64>",
     "new_key": "<b64>", "time": "2025-…Z", "signature": "<b64>"}

``signature`` is Ed25519, by the *old* key, over the RFC 8785 canonical JSON of every
other member.  ``detente key rotate`` makes one (:func:`rotate_node_key`), replaces the
node's key and publishes the statement at ``/.well-known/detente-key-rotation`` (mount
:func:`key_routes` with ``create_app(extra_routes=...)``).  A partner accepts it
(:func:`accept_rotation`) after checking, in order:

  (1) the statement is well formed, with the expected tag;
  (2) ``name`` is the partner's name and ``old_key`` the key we hold for it;
  (3) the old key's signature verifies over the canonical JSON;
  (4) the new key is a different 32-byte Ed25519 key, and ``time`` is not in the future.

Then the partner's key is replaced and a ``key-rotation`` ledger entry written: from then
on the old key is refused on requests and responses alike.  ``detente partner rotate-key P
--statement FILE`` does it by hand; ``detente sync`` does it by itself when a partner's
response no longer verifies and the partner serves a valid statement.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import rfc8785
from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from detente.errors import DetenteError, ValidationError
from detente.federation.http.client import Limits, tls_context
from detente.ledger import Entry
from detente.node import KEY_FILE, Node
from detente.partners import Partner
from detente.stix.timestamps import format_micros, micros_from_stix, now_micros

__all__ = [
    "ROTATION_PATH",
    "ROTATION_TAG",
    "KeyRotationError",
    "RotationStatement",
    "accept_rotation",
    "fetch_and_accept",
    "key_routes",
    "rotate_node_key",
    "verify_rotation",
]

ROTATION_TAG = "detente-key-rotation/1"
ROTATION_PATH = "/.well-known/detente-key-rotation"
STATEMENT_FILE = "key-rotation.json"
_MAX_STATEMENT = 4096
_FUTURE_SKEW_US = 300 * 1_000_000


class KeyRotationError(ValidationError):
    """A key-rotation statement that is malformed, not ours to accept, or forged."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(value: Any, what: str, size: int) -> bytes:
    try:
        raw = base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRotationError(f"key-rotation statement: {what} is not base64") from None
    if len(raw) != size:
        raise KeyRotationError(f"key-rotation statement: {what} must be {size} bytes")
    return raw


@dataclass(frozen=True, slots=True)
class RotationStatement:
    name: str
    old_key: bytes
    new_key: bytes
    time: str
    signature: bytes

    def payload(self) -> bytes:
        """The signed bytes: RFC 8785 canonical JSON of every member but the signature."""
        return bytes(rfc8785.dumps({
            "statement": ROTATION_TAG, "name": self.name, "old_key": _b64(self.old_key),
            "new_key": _b64(self.new_key), "time": self.time}))

    def to_json(self) -> dict[str, str]:
        return {"statement": ROTATION_TAG, "name": self.name, "old_key": _b64(self.old_key),
                "new_key": _b64(self.new_key), "time": self.time,
                "signature": _b64(self.signature)}

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_json(), option=orjson.OPT_INDENT_2)

    @classmethod
    def create(cls, name: str, old: SigningKey, new: VerifyKey,
               time: str | None = None) -> RotationStatement:
        unsigned = cls(name, bytes(old.verify_key), bytes(new),
                       time or format_micros(now_micros()), b"")
        return cls(unsigned.name, unsigned.old_key, unsigned.new_key, unsigned.time,
                   old.sign(unsigned.payload()).signature)

    @classmethod
    def from_json(cls, data: Any) -> RotationStatement:
        """(1) a well-formed statement, or :class:`KeyRotationError`."""
        if not isinstance(data, dict):
            raise KeyRotationError("key-rotation statement must be a JSON object")
        wanted = {"statement", "name", "old_key", "new_key", "time", "signature"}
        if set(data) != wanted:
            raise KeyRotationError(f"key-rotation statement must have exactly the members "
                                   f"{', '.join(sorted(wanted))}")
        if data["statement"] != ROTATION_TAG:
            raise KeyRotationError(f"not a {ROTATION_TAG} statement: {data['statement']!r}")
        if not isinstance(data["name"], str) or not isinstance(data["time"], str):
            raise KeyRotationError("key-rotation statement: name and time must be strings")
        micros_from_stix(data["time"], field="key-rotation time")
        return cls(data["name"], _unb64(data["old_key"], "old_key", 32),
                   _unb64(data["new_key"], "new_key", 32), data["time"],
                   _unb64(data["signature"], "signature", 64))

    @classmethod
    def from_bytes(cls, raw: bytes) -> RotationStatement:
        try:
            return cls.from_json(orjson.loads(raw))
        except orjson.JSONDecodeError:
            raise KeyRotationError("key-rotation statement is not JSON") from None


def verify_rotation(statement: RotationStatement, partner: Partner,
                    now: int | None = None) -> None:
    """Steps (2)-(4) against the key we hold for ``partner``."""
    if statement.name != partner.name:                                        # (2)
        raise KeyRotationError(f"statement is for {statement.name!r}, not {partner.name!r}")
    if statement.old_key != partner.public_key:
        raise KeyRotationError(f"statement rotates a key we do not hold for {partner.name} "
                               "(already rotated, or not its key)")
    try:                                                                      # (3)
        VerifyKey(statement.old_key).verify(statement.payload(), statement.signature)
    except BadSignatureError:
        raise KeyRotationError(f"statement for {partner.name} is not signed by its "
                               "current key") from None
    if statement.new_key == statement.old_key:                                # (4)
        raise KeyRotationError("statement does not change the key")
    now = now_micros() if now is None else now
    if micros_from_stix(statement.time, field="time") > now + _FUTURE_SKEW_US:
        raise KeyRotationError("key-rotation statement is dated in the future")


def accept_rotation(node: Node, statement: RotationStatement) -> Partner:
    """Verify a partner's statement and replace its key; the old key is refused after."""
    partner = node.partners.get(statement.name)
    verify_rotation(statement, partner)
    updated = node.partners.update(partner.name, public_key=statement.new_key)
    node.ledger.append(Entry(kind="key-rotation", time=datetime.now(UTC), partner=partner.name,
                             detail=f"new key {_b64(statement.new_key)} "
                                    f"(statement of {statement.time})"))
    return updated


def rotate_node_key(node: Node) -> RotationStatement:
    """Give this node a new key; write and return the statement signed by the old one."""
    new = SigningKey.generate()
    statement = RotationStatement.create(node.name, node.signing_key, new.verify_key)
    (node.home / STATEMENT_FILE).write_bytes(statement.to_bytes())
    _replace_private(node.home / KEY_FILE, base64.b64encode(bytes(new)) + b"\n")
    node.signing_key = new
    node.ledger.append(Entry(kind="key-rotation", time=datetime.now(UTC),
                             detail=f"this node's key is now {_b64(bytes(new.verify_key))}"))
    return statement


def _replace_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def published_statement(node: Node) -> RotationStatement | None:
    path = node.home / STATEMENT_FILE
    return RotationStatement.from_bytes(path.read_bytes()) if path.exists() else None


def key_routes(node: Node) -> list[BaseRoute]:
    """``GET /.well-known/detente-key-rotation``: the node's latest statement (public:
    it is self-authenticating), or 404."""
    async def statement(request: Request) -> Response:
        found = published_statement(node)
        if found is None:
            return Response(b'{"title": "no key rotation"}', 404, media_type="application/json")
        return Response(found.to_bytes(), 200, media_type="application/json")

    return [Route(ROTATION_PATH, statement, methods=["GET"])]


def fetch_and_accept(node: Node, partner: Partner, *, limits: Limits | None = None,
                     transport: httpx.BaseTransport | None = None) -> Partner | None:
    """Fetch the partner's published statement and accept it if it verifies; None when
    there is none or it does not verify (the caller reports its original error)."""
    limits = limits or Limits()
    url = partner.url.rstrip("/") + ROTATION_PATH
    try:
        with httpx.Client(timeout=limits.request_timeout_s, transport=transport,
                          follow_redirects=False,
                          verify=True if transport is not None else tls_context()) as http, \
                http.stream("GET", url) as response:
            if response.status_code != 200:
                return None
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > _MAX_STATEMENT:
                    return None
    except httpx.HTTPError:
        return None
    try:
        return accept_rotation(node, RotationStatement.from_bytes(body))
    except DetenteError:
        return None
