"""Class views at rest, and the partner's view derived from one when it is served.

A **class view** is the policy's cut of an object version for a policy class: the bytes
every partner of the class would get if nobody were fingerprinted.  The release path keeps
each distinct class view once (compressed with the other views of its commit, see
:mod:`detente.release.schema`) and, per partner, only the SHA-256 of the exact bytes that
partner is served.  Serving derives those bytes again: the node's embedder (the keyed
fingerprinter) is deterministic for (class view, partner, object version), so the bytes are
the same on every request, and :meth:`ViewSource.serve` checks them against the recorded
hash before anything leaves — a view that no longer derives to its hash (the fingerprint
secret or code changed under it) is not served (fail closed) and is reported.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import sys
import threading
import weakref
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import sqlalchemy as sa

from detente.errors import StoreError
from detente.release.ids import object_id_of
from detente.release.schema import chunks, views

__all__ = ["CODEC_ZLIB", "VIEW_COLUMNS", "ClassView", "Embedder", "Served", "ViewSource",
           "class_views", "load_views", "pack", "registered", "source_for", "unpack"]

log = logging.getLogger(__name__)

class Embedder(Protocol):
    """(view, partner, object_key) -> (fingerprinted view, fingerprint id, embed record
    JSON); the view is the embedder's own (just parsed, used for nothing else): it may be
    marked in place.  ``record=False``: the record is not wanted (None in its place) —
    serving and releasing need the bytes alone, only tracing reads records.
    ``encoded``: the bytes the view was parsed from (a content key for caches)."""

    def __call__(self, view: dict[str, Any], partner: str, object_key: str, /, *,
                 record: bool = True, encoded: bytes | None = None
                 ) -> tuple[dict[str, Any], str | None, str | None]: ...


CODEC_ZLIB = 1
_DERIVED_CACHE = 4096
#: decompressed chunks a ViewSource keeps (bytes of views): a few dozen chunks
_CHUNK_CACHE_BYTES = 16 << 20
_IN_CHUNK = 400


def pack(bodies: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(sizes, data) of a chunk: lengths as big-endian uint32, the bodies zlib-compressed."""
    sizes = array("I", [len(b) for b in bodies])
    if sizes.itemsize != 4:  # pragma: no cover - every platform detente runs on
        raise StoreError("uint32 arrays are not 4 bytes on this platform")
    if sys.byteorder == "little":
        sizes.byteswap()
    return sizes.tobytes(), zlib.compress(b"".join(bodies), 6)


def unpack(codec: int, sizes: bytes, data: bytes) -> list[bytes]:
    """The bodies of a chunk; anything malformed is a :class:`StoreError`."""
    if codec != CODEC_ZLIB or len(sizes) % 4:
        raise StoreError(f"release chunk has an unknown codec {codec!r} or bad sizes")
    lengths = array("I")
    lengths.frombytes(sizes)
    if sys.byteorder == "little":
        lengths.byteswap()
    try:
        raw = zlib.decompress(data)
    except zlib.error as exc:
        raise StoreError(f"release chunk does not decompress: {exc}") from None
    if sum(lengths) != len(raw):
        raise StoreError("release chunk sizes do not match its data")
    out, at = [], 0
    for n in lengths:
        out.append(raw[at:at + n])
        at += n
    return out


@dataclass(frozen=True, slots=True)
class ClassView:
    """One class view at rest: what it is a view of, and its bytes."""

    id: int
    object_id: str
    version: str
    type: str
    spec_version: str | None
    marked: bool
    body: bytes

    @property
    def object_key(self) -> str:
        return f"{self.object_id}|{self.version}"


#: the columns of ``release_views`` a :class:`ClassView` is built from (with its chunk)
VIEW_COLUMNS = (views.c.id, object_id_of(views.c), views.c.version, views.c.type,
                views.c.spec_version, views.c.marked, views.c.chunk, views.c.slot)


def load_views(conn: sa.Connection, ids: Iterable[int]) -> dict[int, ClassView]:
    """The class views ``ids``, each chunk read and decompressed once."""
    wanted = sorted(set(ids))
    rows: list[Any] = []
    for start in range(0, len(wanted), _IN_CHUNK):
        rows += conn.execute(sa.select(*VIEW_COLUMNS)
                             .where(views.c.id.in_(wanted[start:start + _IN_CHUNK]))).all()
    return class_views(conn, rows)


def class_views(conn: sa.Connection, rows: Sequence[Any],
                cache: ViewSource | None = None) -> dict[int, ClassView]:
    """The class views of ``rows`` (each with the :data:`VIEW_COLUMNS`, by those names,
    read by the caller — e.g. in the query that found them), their chunks read and
    decompressed once — or found in ``cache``'s recent chunks (a chunk is written once,
    with its views, and never changed)."""
    cols = _view_columns(rows)
    chunk_ids = sorted({int(c[6]) for c in cols})
    bodies: dict[int, list[bytes]] = {}
    if cache is not None:
        bodies = cache.chunks(chunk_ids)
        chunk_ids = [c for c in chunk_ids if c not in bodies]
    for start in range(0, len(chunk_ids), _IN_CHUNK):
        stmt = sa.select(chunks.c.id, chunks.c.codec, chunks.c.sizes, chunks.c.data).where(
            chunks.c.id.in_(chunk_ids[start:start + _IN_CHUNK]))
        for cid, codec, sizes, data in conn.execute(stmt):
            bodies[int(cid)] = unpack(int(codec), bytes(sizes), bytes(data))
            if cache is not None:
                cache.keep_chunk(int(cid), bodies[int(cid)])
    out: dict[int, ClassView] = {}
    for vid, object_id, version, kind, spec_version, marked, cid, slot in cols:
        chunk = bodies.get(int(cid))
        if chunk is None or not 0 <= int(slot) < len(chunk):
            raise StoreError(f"release view {vid}: its bytes are missing (chunk {cid})")
        out[int(vid)] = ClassView(int(vid), object_id, version, kind, spec_version,
                                  bool(marked), chunk[int(slot)])
    return out


_VIEW_FIELDS = ("id", "object_id", "version", "type", "spec_version", "marked", "chunk", "slot")


def _view_columns(rows: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The :data:`VIEW_COLUMNS` of each row, by name, as tuples (:data:`_VIEW_FIELDS`
    order).  Rows with named fields (SQLAlchemy's, named tuples) are read by position: a
    SQLAlchemy row's column costs ~0.4 µs by attribute, ~0.02 µs by position."""
    if not rows:
        return []
    fields = getattr(rows[0], "_fields", None)
    if isinstance(fields, tuple) and all(f in fields for f in _VIEW_FIELDS):
        by_index = operator.itemgetter(*(fields.index(f) for f in _VIEW_FIELDS))
        return [by_index(r) for r in rows]
    by_name = operator.attrgetter(*_VIEW_FIELDS)
    return [by_name(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Served:
    """A partner's view as served: its bytes, fingerprint id and embed record (JSON)."""

    view: bytes
    fingerprint_id: str | None
    #: None for a plain view — and when it was not asked for (``record=False``)
    embed_record: str | None

    def lacks_record(self) -> bool:
        """A fingerprinted view derived without its embed record."""
        return self.fingerprint_id is not None and self.embed_record is None


class ViewSource:
    """Derives partners' views from class views (the embedder is the node's fingerprinter;
    ``None``: views are served as their class view).  Thread-safe; the most recent derived
    views are kept (bounded)."""

    def __init__(self, embedder: Embedder | None, cache: int = _DERIVED_CACHE,
                 chunk_bytes: int = _CHUNK_CACHE_BYTES) -> None:
        self.embedder = embedder
        self._size = cache
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, str], Served] = OrderedDict()
        #: recently read chunks, decompressed (bounded by their bytes): a partner paging
        #: reads the views of one chunk over several pages, and each chunk read is a
        #: round trip to the database and a decompression
        self._chunks: OrderedDict[int, tuple[list[bytes], int]] = OrderedDict()
        self._chunk_bytes = 0
        self._chunk_limit = chunk_bytes

    def chunks(self, ids: Iterable[int]) -> dict[int, list[bytes]]:
        """Those of the chunks ``ids`` kept by :meth:`keep_chunk`, their bodies."""
        out: dict[int, list[bytes]] = {}
        with self._lock:
            for cid in ids:
                hit = self._chunks.get(cid)
                if hit is not None:
                    self._chunks.move_to_end(cid)
                    out[cid] = hit[0]
        return out

    def keep_chunk(self, cid: int, bodies: list[bytes]) -> None:
        """Keep a chunk just read (the least recently used go past the byte bound)."""
        size = sum(map(len, bodies))
        if size > self._chunk_limit:
            return
        with self._lock:
            if cid in self._chunks:
                return
            self._chunks[cid] = (bodies, size)
            self._chunk_bytes += size
            while self._chunk_bytes > self._chunk_limit:
                self._chunk_bytes -= self._chunks.popitem(last=False)[1][1]

    def derive(self, body: bytes, partner: str, object_key: str, marked: bool, *,
               record: bool = False) -> Served:
        """The partner's view of a class view (what the release path hashes and logs);
        ``record``: with its embed record (what tracing reads)."""
        if self.embedder is None or not marked:
            return Served(body, None, None)
        value = orjson.loads(body)
        view, fp_id, embedded = self.embedder(value, partner, object_key, record=record,
                                              encoded=body)
        return Served(orjson.dumps(view), fp_id, embedded if record else None)

    def serve(self, cv: ClassView, partner: str, expected: bytes | None, *,
              record: bool = False) -> Served | None:
        """The bytes ``partner`` is served for ``cv`` (``record``: with the embed record),
        or None when they do not hash to ``expected`` (then nothing is served, and the
        mismatch is logged)."""
        key = (cv.id, partner)
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
        if hit is not None and record and hit.lacks_record():
            hit = None  # derived for serving: derived again, with its record
        if hit is None:
            hit = self.derive(cv.body, partner, cv.object_key, cv.marked, record=record)
            if expected is not None and hashlib.sha256(hit.view).digest() != expected:
                log.error("release of %s to %s no longer derives to its logged hash: "
                          "not served", cv.object_key, partner)
                return None
            with self._lock:
                self._cache[key] = hit
                while len(self._cache) > self._size:
                    self._cache.popitem(last=False)
        return hit


#: the view source of each store engine's releaser (see :func:`source_for`)
_SOURCES: weakref.WeakKeyDictionary[sa.Engine, ViewSource] = weakref.WeakKeyDictionary()


def register(engine: sa.Engine, source: ViewSource) -> None:
    """Make ``source`` the one readers of ``engine`` derive views with (the releaser of
    that store registers itself when it is built)."""
    _SOURCES[engine] = source


def registered(engine: sa.Engine) -> ViewSource | None:
    """The view source registered for ``engine`` (None: no releaser built for it yet)."""
    return _SOURCES.get(engine)


def source_for(engine: sa.Engine) -> ViewSource:
    """The view source registered for ``engine``; without one, views are served as their
    class views — so a fingerprinted view, whose logged hash is of other bytes, is not
    served at all (fail closed)."""
    return _SOURCES.get(engine) or ViewSource(None)
