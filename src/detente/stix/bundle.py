"""Reading STIX input for ingest, and writing bundles for export.

Hand-written because ingest must keep going past bad input: a JSON Lines file with one
broken line still yields every other object, each with its position, and broken JSON
becomes a :class:`DecodeFailure` item instead of an exception that loses the rest.

Accepted forms (detected from the content):

* a bundle ``{"type": "bundle", "objects": [...]}`` (``spec_version`` not required, as in
  2.1; an object without ``type`` whose ``objects`` is a list is read as a bundle too, since
  published files have that mistake and the objects inside are what matters);
* a single object; a JSON array of objects;
* JSON Lines: one object, bundle or array per line, read line by line in constant memory;
* MISP events (``{"Event": ...}`` alone, in an array or per line; ``{"response": [...]}`` as
  MISP's REST API answers; a MISP feed directory): each event is converted to STIX 2.1 by
  :mod:`detente.misp` (CIRCL's misp-stix) and its objects are yielded like any others, their
  :class:`Position` naming the event.  An event that cannot be converted is one
  :class:`DecodeFailure` naming the event and the reason; the other events still go on.

The envelope itself is not validated (its id is not stored); each item goes to ``validate``.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import IO, Any

import orjson

from detente.stix.model import StixObject

__all__ = ["DecodeFailure", "Position", "Source", "iter_objects", "make_bundle"]

#: bytes are the content itself; a str or path names a file; a binary stream is read as is.
Source = bytes | str | os.PathLike[str] | IO[bytes]


@dataclass(frozen=True, slots=True)
class DecodeFailure:
    """An input item that is not JSON; ``message`` says where and why."""

    message: str
    line: int | None = None


class Position(int):
    """1-based index of an item in the input (an ``int``), with its line in JSON Lines and,
    for objects converted from MISP, the event they came from."""

    line: int | None
    within: str | None = None  # set only for converted MISP objects (the common case is free)

    def __new__(cls, index: int, line: int | None = None, within: str | None = None
                ) -> Position:
        self = super().__new__(cls, index)
        self.line = line
        if within is not None:
            self.within = within
        return self

    def describe(self) -> str:
        """``object 17 (line 17)``, ``object 17`` or ``object 3 (MISP event <uuid> …)``."""
        where = [f"line {self.line}"] if self.line is not None else []
        if self.within is not None:
            where.append(self.within)
        text = f"object {int(self)}"
        return f"{text} ({', '.join(where)})" if where else text


def iter_objects(source: Source) -> Iterator[tuple[int, object | DecodeFailure]]:
    """Every raw item of the input with its :class:`Position`; failures never raise.

    A path may also name a MISP feed directory (``manifest.json`` and ``<uuid>.json``)."""
    if isinstance(source, bytes):
        yield from _iter_stream(io.BytesIO(source))
    elif isinstance(source, str | os.PathLike) and os.path.isdir(source):
        yield from _iter_feed_dir(source)
    elif isinstance(source, str | os.PathLike):
        with open(source, "rb") as stream:
            yield from _iter_stream(stream)
    else:
        yield from _iter_stream(source)


def _iter_stream(stream: IO[bytes]) -> Iterator[tuple[int, object | DecodeFailure]]:
    lines = enumerate(stream, start=1)
    found = next(((n, text) for n, text in lines if text.strip()), None)
    if found is None:
        return  # empty input: no items
    number, line = found
    try:
        first = orjson.loads(line)
    except orjson.JSONDecodeError:
        # (1) not one JSON value per line: the whole input is one JSON document
        yield from _iter_document(line + b"".join(text for _, text in lines), number)
        return
    # (2) JSON Lines (or a one-line document): stream the rest line by line
    counter = _Counter()
    yield from counter.expand(first, number)
    yield from _iter_lines(lines, counter)


def _iter_document(data: bytes, first_line: int) -> Iterator[tuple[int, object | DecodeFailure]]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        lines = data.splitlines()
        if _mostly_json_lines(lines):  # JSON Lines whose first line is broken
            yield from _iter_lines(enumerate(lines, start=first_line), _Counter())
            return
        yield Position(1), DecodeFailure(f"input is not valid JSON: {exc}")
        return
    yield from _Counter().expand(document, None)


def _mostly_json_lines(lines: list[bytes]) -> bool:
    texts = [line for line in lines if line.strip()]
    good = 0
    for text in texts:
        try:
            good += isinstance(orjson.loads(text), dict | list)
        except orjson.JSONDecodeError:
            continue
    return len(texts) > 1 and good * 2 > len(texts)


def _iter_lines(
    lines: Iterable[tuple[int, bytes]], counter: _Counter
) -> Iterator[tuple[int, object | DecodeFailure]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield counter.next(number), DecodeFailure(f"not valid JSON: {exc}", number)
            continue
        if type(document) is dict and document.get("type") not in (None, "bundle"):
            # one object on the line (what _Counter.expand yields for it, without a
            # generator per line): neither a bundle nor a MISP document
            yield counter.next(number), document
            continue
        yield from counter.expand(document, number)


def _iter_feed_dir(path: str | os.PathLike[str]) -> Iterator[tuple[int, object | DecodeFailure]]:
    from detente.misp.intake import MispError, is_feed_dir, read_feed_dir

    counter = _Counter()
    if not is_feed_dir(path):
        yield counter.next(None), DecodeFailure(
            f"{path} is a directory without a MISP manifest.json: name the files to read")
        return
    try:
        for event in read_feed_dir(path):
            yield from counter.misp_event(event, None)
    except MispError as exc:
        yield counter.next(None), DecodeFailure(exc.message)


class _Counter:
    """Numbers the items as they are yielded, across lines and bundles."""

    def __init__(self) -> None:
        self.index = 0

    def next(self, line: int | None, within: str | None = None) -> Position:
        self.index += 1
        return Position(self.index, line, within)

    def misp(self, document: dict[str, Any], line: int | None
             ) -> Iterator[tuple[int, object | DecodeFailure]]:
        from detente.misp.intake import iter_events

        for event in iter_events(document):
            yield from self.misp_event(event, line)

    def misp_event(self, event: Any, line: int | None
                   ) -> Iterator[tuple[int, object | DecodeFailure]]:
        from detente.misp.intake import MispError, convert_event, describe_problems

        try:
            objects, problems = convert_event(event)
        except MispError as exc:  # the message names the event
            yield self.next(line), DecodeFailure(exc.message, line)
            return
        for obj in objects:
            yield self.next(line, event.label), obj
        if problems:
            yield self.next(line), DecodeFailure(describe_problems(event, problems), line)

    def expand(
        self, document: object, line: int | None
    ) -> Iterator[tuple[int, object | DecodeFailure]]:
        if isinstance(document, list):
            items: Iterable[object] = document
        elif isinstance(document, dict) and _is_bundle(document):
            objects = document.get("objects", [])
            if not isinstance(objects, list):
                yield self.next(line), DecodeFailure("bundle 'objects' is not an array", line)
                return
            for item in objects:  # a bundle holds STIX objects, never MISP events
                yield self.next(line), item
            return
        else:
            items = (document,)
        for item in items:
            if type(item) is dict and "type" not in item and _is_misp(item):
                yield from self.misp(item, line)
            else:
                yield self.next(line), item


def _is_misp(document: dict[str, Any]) -> bool:
    """``{"Event": ...}`` or ``{"response": [...]}`` (see :mod:`detente.misp.intake`)."""
    return "Event" in document or isinstance(document.get("response"), list)


def _is_bundle(document: object) -> bool:
    if not isinstance(document, dict):
        return False
    kind = document.get("type")
    return kind == "bundle" or (kind is None and isinstance(document.get("objects"), list))


def make_bundle(objects: Iterable[StixObject | Mapping[str, Any]]) -> bytes:
    """A STIX 2.1 bundle (compact JSON) with a fresh ``bundle--<uuid4>`` id."""
    head = b'{"type":"bundle","id":"bundle--' + str(uuid.uuid4()).encode() + b'","objects":['
    parts = (o.raw if isinstance(o, StixObject) else orjson.dumps(dict(o)) for o in objects)
    return b"".join(chain((head,), _joined(parts), (b"]}",)))


def _joined(parts: Iterable[bytes]) -> Iterator[bytes]:
    for n, part in enumerate(parts):
        if n:
            yield b","
        yield part
