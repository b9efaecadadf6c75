"""MISP in: recognise MISP event JSON and convert each event to STIX 2.1 with ``misp-stix``.

The conversion itself is CIRCL's ``MISPtoSTIX21Parser`` (misp-stix); this module only finds
the events in what an analyst hands to ``detente ingest`` and reports, per event, what could
not be converted.  Forms recognised (the ones MISP writes):

* one event, ``{"Event": {...}}`` (MISP's JSON export, a feed's ``<uuid>.json``);
* a JSON array of those (several exports concatenated), or JSON Lines of them;
* MISP's REST API answer to ``/events/restSearch``, ``{"response": [{"Event": ...}, ...]}``;
* a MISP feed directory: ``manifest.json`` (event uuid -> summary) beside one
  ``<uuid>.json`` per event, as ``detente export --format misp`` and MISP itself write it.

Hand-written on top of misp-stix, with the reason for each:

(1) MISP semantics misp-stix leaves to the consumer: an event's tags apply to every
    attribute in it, but misp-stix marks only the report it makes of the event; and an
    attribute's own TLP lands on its observed-data and indicator, not on the observable
    (``file``, ``url``…) that holds the value.  A detente node releases nothing unmarked
    (fail closed) and decides each object on its own markings, so an observed-data's
    markings are added to the observables it references, then the report's (the event's
    TLP) to every object the report references — always as a union, so the strictest
    marking (an attribute's TLP:RED inside a TLP:WHITE event) decides.
(2) An event without a ``uuid`` is refused: misp-stix would invent one, and every ingest of
    the same file would then create new objects instead of recognising duplicates.
(3) A feed directory's manifest names the files to read; a key that is not a UUID (e.g.
    ``../../etc/passwd``) is refused before any path is built from it.
(4) What misp-stix reports as an error is a rejection only when content was lost: when it
    falls back to its custom ``x-misp-*`` form every attribute is still there.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from detente.errors import ValidationError

__all__ = [
    "MispError",
    "MispEvent",
    "convert_event",
    "is_feed_dir",
    "is_misp_document",
    "iter_events",
    "read_feed_dir",
]

_UUID: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                          r"[0-9a-fA-F]{12}")
#: The most misp-stix conversion errors quoted in one refusal.
_MAX_QUOTED = 5
#: How misp-stix names the record an error is about: ``(uuid: <uuid>)``.
_RECORD_UUID: Final = re.compile(r"\(uuid: ([0-9a-fA-F-]{36})\)")


class MispError(ValidationError):
    """A MISP event (or feed) that cannot be converted; the message names the event."""


@dataclass(frozen=True, slots=True)
class MispEvent:
    """One event found in the input: ``document`` is ``{"Event": {...}}`` as MISP writes it,
    or ``None`` when ``problem`` says why the event could not even be read."""

    label: str
    document: Mapping[str, Any] | None
    problem: str | None = None


def is_misp_document(document: object) -> bool:
    """``{"Event": ...}`` or ``{"response": [...]}``: never a STIX object (no ``type``)."""
    return (
        isinstance(document, dict)
        and "type" not in document
        and ("Event" in document or isinstance(document.get("response"), list))
    )


def iter_events(document: Mapping[str, Any]) -> Iterator[MispEvent]:
    """The events of one MISP document (a single event or a REST API response)."""
    if "Event" in document:
        yield _event(document, None)
        return
    for n, item in enumerate(document["response"], start=1):
        if isinstance(item, dict) and "Event" in item:
            yield _event(item, f"response[{n - 1}]")
        else:
            yield MispEvent(f"MISP response[{n - 1}]", None,
                            "not a MISP event (expected {\"Event\": {...}})")


def _event(document: Mapping[str, Any], where: str | None) -> MispEvent:
    event = document["Event"]
    prefix = f"MISP {where} " if where else "MISP "
    if not isinstance(event, dict):
        return MispEvent(f"{prefix}event", None, "'Event' is not a JSON object")
    uuid = event.get("uuid")
    info = event.get("info")
    named = f" {info!r}" if isinstance(info, str) and info else ""
    if not isinstance(uuid, str) or not _UUID.fullmatch(uuid):
        label = f"{prefix}event{named}"
        what = "has no uuid" if uuid is None else f"has uuid {uuid!r}, which is not a UUID"
        return MispEvent(label, None, f"{what}: MISP exports always carry one, and without "
                         "it every ingest of this event would store new objects")
    return MispEvent(f"{prefix}event {uuid.lower()}{named}", document)


def convert_event(event: MispEvent) -> tuple[list[dict[str, Any]], list[str]]:
    """STIX 2.1 objects for one event, and what misp-stix could not convert in it.

    Raises :class:`MispError` (naming the event) when nothing can be converted."""
    if event.document is None:
        raise MispError(f"{event.label}: {event.problem}")
    from misp_stix_converter import MISPtoSTIX21Parser

    for key in ("Attribute", "Object", "Tag"):
        value = event.document["Event"].get(key)
        if value is not None and not isinstance(value, list):
            raise MispError(f"{event.label}: '{key}' must be a list, got "
                            f"{type(value).__name__}")
    parser = MISPtoSTIX21Parser()
    try:
        parser.parse_misp_event(dict(event.document))
    except Exception as exc:  # any failure inside the third-party converter
        raise MispError(f"{event.label}: misp-stix cannot convert it: "
                        f"{_first_line(exc)}") from None
    objects = [_as_dict(o) for o in parser.stix_objects]
    if not objects:
        raise MispError(f"{event.label}: misp-stix produced no STIX objects from it")
    _propagate_report_markings(objects)
    problems = [msg for messages in parser.errors.values() for msg in messages]
    return objects, _losses(problems, objects)


def _losses(problems: list[str], objects: list[dict[str, Any]]) -> list[str]:
    """(4) The misp-stix errors that lost content, each cut to its first and last line.

    misp-stix records an error both when it drops a record and when it falls back to its
    custom ``x-misp-object``/``x-misp-attribute`` form, which keeps every attribute; an
    error naming a record (``uuid: …``) whose uuid a converted object carries is the latter.
    """
    kept = {str(o.get("id", "")).rsplit("--", 1)[-1] for o in objects}
    losses = []
    for problem in problems:
        named = _RECORD_UUID.search(problem)
        if named is not None and named.group(1).lower() in kept:
            continue
        lines = [line.strip() for line in problem.strip().splitlines() if line.strip()]
        text = lines[0] if len(lines) < 2 else f"{lines[0]} {lines[-1]}"
        losses.append(text[:400])
    return losses


def describe_problems(event: MispEvent, problems: list[str]) -> str:
    """One message for what misp-stix skipped in an event (the rest was converted)."""
    quoted = "; ".join(problems[:_MAX_QUOTED])
    more = f" (and {len(problems) - _MAX_QUOTED} more)" if len(problems) > _MAX_QUOTED else ""
    return f"{event.label}: misp-stix skipped part of it: {quoted}{more}"


def _as_dict(obj: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    loaded = orjson.loads(obj.serialize())
    assert isinstance(loaded, dict)
    return loaded


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


def _propagate_report_markings(objects: list[dict[str, Any]]) -> None:
    """(1) Markings onto what they cover: an observed-data's (an attribute's own TLP) onto
    the observables holding its values, then the event's (on its report) onto every object
    the report references.  Always a union: the strictest marking decides."""
    by_id = {o.get("id"): o for o in objects}
    for kind in (("observed-data",), ("report", "grouping")):
        for container in [o for o in objects if o.get("type") in kind]:
            markings = container.get("object_marking_refs")
            if isinstance(markings, list) and markings:
                for ref in container.get("object_refs", []):
                    _add_markings(by_id.get(ref), markings)


def _add_markings(target: dict[str, Any] | None, markings: list[Any]) -> None:
    if target is None or target.get("type") == "marking-definition":
        return
    own = target.get("object_marking_refs")
    merged = list(own) if isinstance(own, list) else []
    merged += [m for m in markings if m not in merged]
    target["object_marking_refs"] = merged


# -- feed directories ----------------------------------------------------------------------


def is_feed_dir(path: str | os.PathLike[str]) -> bool:
    """A directory holding MISP's ``manifest.json``."""
    p = Path(path)
    return p.is_dir() and (p / "manifest.json").is_file()


def read_feed_dir(path: str | os.PathLike[str]) -> Iterator[MispEvent]:
    """The events a MISP feed directory lists in its manifest, in manifest order."""
    root = Path(path)
    try:
        manifest = orjson.loads((root / "manifest.json").read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise MispError(f"MISP feed {root}: cannot read manifest.json: {exc}") from None
    if not isinstance(manifest, dict):
        raise MispError(f"MISP feed {root}: manifest.json is not a JSON object "
                        "(event uuid -> summary)")
    for key in manifest:
        if not isinstance(key, str) or not _UUID.fullmatch(key):
            yield MispEvent(f"MISP feed {root.name} manifest entry {key!r}", None,   # (3)
                            "is not an event uuid: refused (feed file names are uuids)")
            continue
        yield _feed_event(root, key)


def _feed_event(root: Path, key: str) -> MispEvent:
    file = root / f"{key}.json"
    label = f"MISP event {key.lower()} ({root.name}/{file.name})"
    try:
        document = orjson.loads(file.read_bytes())
    except FileNotFoundError:
        return MispEvent(label, None, "listed in manifest.json but the file is missing")
    except (OSError, orjson.JSONDecodeError) as exc:
        return MispEvent(label, None, f"cannot be read: {exc}")
    if not (isinstance(document, dict) and isinstance(document.get("Event"), dict)):
        return MispEvent(label, None, "is not a MISP event ({\"Event\": {...}})")
    found = _event(document, None)
    uuid = document["Event"].get("uuid")
    if found.document is not None and str(uuid).lower() != key.lower():
        return MispEvent(label, None, f"holds event {uuid}, not the {key} the manifest names")
    return found if found.document is None else MispEvent(label, found.document)
