"""What a node puts into private deconfliction, per item kind, and its pointer handles.

* ``observables`` — canonical observables of this node's *own* (origin ``local``), current,
  unrevoked indicators (simple STIX patterns) and SCOs. Material received from partners is
  never offered: a match on it would tell a third party what a partner shared with us.
* ``names`` and ``alignment`` — names and aliases of its own threat actors, intrusion sets
  and campaigns (for ``alignment`` this is the common-threat set; cardinality only).
* ``operations`` — planned operations in the table ``deconflict_operations`` (loaded with
  ``detente deconflict load-operations``), as H3 cell × time bucket items on the grid the
  requester names.

Pointer handles are opaque: an operation's random handle, or for a STIX object
``obj-`` + HMAC-SHA256(node secret, object id) (16 hex digits). A partner never sees these:
each session shows it fresh ``h-…`` handles (keyed BLAKE2b of the session id and the stable
handle, :func:`detente.deconflict.prepared.session_handle`), and :func:`resolve_handle` maps
one back here. The contact is the operation's, or the node's deconfliction contact.

Which modes each kind is offered in is this node's policy, :data:`DEFAULT_MODES` unless
``deconflict_routes(modes=…)`` says otherwise: observables and names in every mode,
operations in pointer mode only (never intersection or mutual: a partner would learn where
and when our operations are), alignment in cardinality mode only.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from detente.deconflict import (
    EncodingError,
    Event,
    Item,
    Mode,
    PlaceTimeGrid,
    Pointer,
    from_pattern,
    from_sco,
    name,
)
from detente.deconflict.prepared import session_handle
from detente.errors import ValidationError
from detente.federation.schema import operations_table
from detente.node import Node
from detente.store.base import LOCAL, Query, StoredObject
from detente.store.engine import writer

__all__ = [
    "DEFAULT_MODES",
    "KINDS",
    "NAMED_TYPES",
    "OBSERVABLE_TYPES",
    "SESSION_HANDLE_KEY_FILE",
    "Operation",
    "OperationsBook",
    "OwnSet",
    "format_grid",
    "own_set",
    "parse_grid",
    "parse_operations",
    "resolve_handle",
]

KINDS = ("observables", "names", "operations", "alignment")
OBSERVABLE_TYPES = ("indicator", "ipv4-addr", "ipv6-addr", "domain-name", "url", "email-addr",
                    "file")
NAMED_TYPES = ("threat-actor", "intrusion-set", "campaign")
_GRID = re.compile(r"r(\d{1,2}):d(\d{1,7}(?:\.\d{1,3})?):b(\d{1,9}):s(\d{1,9})")
_HANDLE_KEY_FILE = "deconflict-handle.key"
SESSION_HANDLE_KEY_FILE = "deconflict-session-handle.key"
DEFAULT_MODES: dict[str, frozenset[Mode]] = {
    "observables": frozenset(Mode),
    "names": frozenset(Mode),
    "operations": frozenset({Mode.POINTER}),
    "alignment": frozenset({Mode.CARDINALITY}),
}


def format_grid(grid: PlaceTimeGrid) -> str:
    return f"r{grid.resolution}:d{grid.distance_m:g}:b{grid.bucket_s}:s{grid.time_slack_s}"


def parse_grid(text: str | None) -> PlaceTimeGrid:
    """The place-and-time grid named like ``r8:d500:b3600:s0`` (default: ``PlaceTimeGrid()``)."""
    if text is None or text == "":
        return PlaceTimeGrid()
    m = _GRID.fullmatch(text)
    if m is None:
        raise ValidationError(f"grid {text!r} is not r<res>:d<metres>:b<seconds>:s<seconds>")
    return PlaceTimeGrid(int(m[1]), float(m[2]), int(m[3]), int(m[4]))


@dataclass(frozen=True)
class Operation:
    name: str
    latitude: float
    longitude: float
    radius_m: float
    start: datetime
    end: datetime
    contact: str | None = None
    handle: str = ""

    @property
    def event(self) -> Event:
        return Event(self.latitude, self.longitude, self.radius_m, self.start, self.end)


def _time(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise ValidationError(f"{what} must be an RFC 3339 timestamp string")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"{what} {value!r} is not an RFC 3339 timestamp") from None
    if when.tzinfo is None:
        raise ValidationError(f"{what} {value!r} has no timezone (add Z)")
    return when


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{what} must be a number")
    return float(value)


def _operation(doc: Any, i: int) -> Operation:
    where = f"operation {i}"
    if not isinstance(doc, dict):
        raise ValidationError(f"{where} is not a JSON object")
    label = doc.get("name")
    if not isinstance(label, str) or not label.strip():
        raise ValidationError(f"{where} has no name")
    contact = doc.get("contact")
    if contact is not None and not isinstance(contact, str):
        raise ValidationError(f"{where}: contact must be a string")
    op = Operation(label.strip(), _number(doc.get("latitude"), f"{where} latitude"),
                   _number(doc.get("longitude"), f"{where} longitude"),
                   _number(doc.get("radius_m", 0), f"{where} radius_m"),
                   _time(doc.get("start"), f"{where} start"), _time(doc.get("end"), f"{where} end"),
                   contact)
    try:
        _ = op.event  # validates coordinates, radius and interval
    except EncodingError as exc:
        raise ValidationError(f"{where} ({op.name}): {exc.message}") from None
    return op


def parse_operations(doc: Any) -> list[Operation]:
    """Operations from JSON: a list of {name, latitude, longitude, radius_m, start, end,
    contact}; every defect is a :class:`ValidationError` naming the operation."""
    if not isinstance(doc, list):
        raise ValidationError("operations must be a JSON list of objects")
    ops = [_operation(d, i) for i, d in enumerate(doc)]
    names = [o.name for o in ops]
    if len(set(names)) != len(names):
        raise ValidationError("operation names must be unique")
    return ops




class OperationsBook:
    """This node's planned operations (table ``deconflict_operations``)."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    def load(self, operations: Sequence[Operation], *, replace: bool = False) -> list[Operation]:
        """Add or update operations by name (``replace``: drop all others first)."""
        t = operations_table
        stored: list[Operation] = []
        with writer(self._engine).begin() as conn:
            if replace:
                conn.execute(t.delete())
            known = {r.name: r.handle for r in conn.execute(sa.select(t.c.name, t.c.handle))}
            for op in operations:
                handle = known.get(op.name) or f"op-{secrets.token_hex(8)}"
                values = {"handle": handle, "latitude": op.latitude, "longitude": op.longitude,
                          "radius_m": op.radius_m, "start": op.start.isoformat(),
                          "end": op.end.isoformat(), "contact": op.contact}
                if op.name in known:
                    conn.execute(t.update().where(t.c.name == op.name).values(**values))
                else:
                    conn.execute(t.insert().values(name=op.name, **values))
                stored.append(Operation(op.name, op.latitude, op.longitude, op.radius_m,
                                        op.start, op.end, op.contact, handle))
        return stored

    def all(self) -> list[Operation]:
        t = operations_table
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(t).order_by(t.c.name)).all()
        return [Operation(r.name, r.latitude, r.longitude, r.radius_m,
                          datetime.fromisoformat(r.start), datetime.fromisoformat(r.end),
                          r.contact, r.handle) for r in rows]


@dataclass(frozen=True)
class OwnSet:
    """This node's items of one kind, with a pointer for each (pointer mode)."""

    items: list[Item]
    pointers: dict[Item, Pointer]


def _handle(secret: bytes, object_id: str) -> str:
    digest = hmac.new(secret, object_id.encode(), hashlib.sha256).hexdigest()
    return f"obj-{digest[:16]}"


def _clip(text: str, limit: int = 160) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def default_contact(node: Node) -> str:
    info = node.identity.get("contact_information")
    if isinstance(info, str) and info.strip():
        return _clip(info.strip())
    return _clip(f"deconfliction desk of {node.name} ({node.settings['url']})")


def _current_local(node: Node, types: tuple[str, ...]) -> Iterator[StoredObject]:
    query = Query(types=types, versions=("last",), origins=(LOCAL,))
    for obj in node.store.iter_all(query):
        if not obj.revoked:
            yield obj


def observables_of(body: Mapping[str, Any]) -> tuple[Item, ...]:
    """Deconflictable items of one STIX object (none if it has none we understand)."""
    try:
        if body.get("type") == "indicator":
            pattern = body.get("pattern")
            if body.get("pattern_type") != "stix" or not isinstance(pattern, str):
                return ()
            return from_pattern(pattern)
        return from_sco(body)
    except EncodingError:
        return ()


def names_of(body: Mapping[str, Any]) -> tuple[Item, ...]:
    kind = str(body.get("type"))
    found: list[str] = [body["name"]] if isinstance(body.get("name"), str) else []
    aliases = body.get("aliases")
    if isinstance(aliases, list):
        found += [a for a in aliases if isinstance(a, str)]
    out: list[Item] = []
    for text in found:
        try:
            out.append(name(kind, text))
        except EncodingError:
            continue
    return tuple(dict.fromkeys(out))


def _from_objects(node: Node, types: tuple[str, ...], contact: str,
                  extract: Any) -> OwnSet:
    secret = node.secret_file(_HANDLE_KEY_FILE)
    pointers: dict[Item, Pointer] = {}
    for obj in _current_local(node, types):
        pointer = Pointer(_handle(secret, obj.id), contact)
        for item in extract(obj.body):
            pointers.setdefault(item, pointer)
    return OwnSet(list(pointers), pointers)


def _operations(node: Node, grid: PlaceTimeGrid, contact: str) -> OwnSet:
    pointers: dict[Item, Pointer] = {}
    for op in OperationsBook(node.store.engine).all():
        pointer = Pointer(op.handle, _clip(op.contact or contact))
        for item in op.event.items(grid):
            pointers.setdefault(item, pointer)
    return OwnSet(list(pointers), pointers)


def own_set(node: Node, kind: str, *, grid: PlaceTimeGrid | None = None,
            contact: str | None = None) -> OwnSet:
    """This node's items of ``kind`` (one of :data:`KINDS`)."""
    channel = _clip(contact) if contact else default_contact(node)
    if kind == "observables":
        return _from_objects(node, OBSERVABLE_TYPES, channel, observables_of)
    if kind in ("names", "alignment"):
        return _from_objects(node, NAMED_TYPES, channel, names_of)
    if kind == "operations":
        return _operations(node, grid or PlaceTimeGrid(), channel)
    raise ValidationError(f"unknown deconfliction item kind {kind!r}",
                          hint=f"one of {', '.join(KINDS)}")


def resolve_handle(node: Node, session_id: str, handle: str) -> str | None:
    """The stable handle (operation or ``obj-…``) behind the handle a partner saw in session
    ``session_id`` (hex), or None: what the contact desk asks when a partner calls."""
    try:
        sid = bytes.fromhex(session_id)
    except ValueError:
        raise ValidationError(f"session id {session_id!r} is not hex") from None
    key = node.secret_file(SESSION_HANDLE_KEY_FILE)
    stable = [op.handle for op in OperationsBook(node.store.engine).all()]
    secret = node.secret_file(_HANDLE_KEY_FILE)
    types = tuple(dict.fromkeys(OBSERVABLE_TYPES + NAMED_TYPES))
    stable += [_handle(secret, obj.id) for obj in _current_local(node, types)]
    for real in stable:
        if session_handle(key, sid, real) == handle:
            return real
    return None


def unique(items: Iterable[Item]) -> list[Item]:
    return list(dict.fromkeys(items))
