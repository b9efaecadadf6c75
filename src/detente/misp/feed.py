"""MISP out: write STIX 2.1 objects as a MISP feed directory a MISP instance can add.

A MISP feed (MISP's ``app/Model/Feed.php``; PyMISP's ``feed_meta_generator`` and
``examples/feed-generator``) is a directory of

* ``<event uuid>.json``: one event each, ``{"Event": {...}}`` as ``MISPEvent.to_feed`` writes;
* ``manifest.json``: event uuid -> ``{Orgc, Tag, info, date, analysis, threat_level_id,
  timestamp}`` (``MISPEvent.manifest``), which MISP reads first to decide what to fetch;
* ``hashes.csv``: one ``md5(attribute value),event uuid`` line per attribute value, which
  MISP loads into its feed cache for correlation.

The conversion is misp-stix's: ``InternalSTIX2toMISPParser`` for content that came from
MISP (misp-stix's own labels say so), ``ExternalSTIX2toMISPParser`` otherwise; the feed
files are PyMISP's ``to_feed``/``manifest``/``attributes_hashes``.  What is hand-written,
and why:

(1) Grouping into events.  misp-stix makes one event per report (or grouping) when it gets
    several, but drops what no report references; so each report goes to misp-stix with
    what it references (and the markings and identities those use), and everything no
    report references becomes one more event, whose uuid is derived from the export
    (``rest_uuid``) so a MISP instance pulling the feed again updates it.
(2) The organisation.  misp-stix leaves ``Orgc`` unset, which MISP requires in a feed: it is
    the report's creator when that identity is exported too, else the exporting node.
(3) Stale files.  Re-exporting into the same directory removes the ``<uuid>.json`` files of
    events no longer exported: an object withdrawn from a partner must not stay readable
    next to the new manifest.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import orjson

from detente.errors import UsageError

__all__ = ["FeedSummary", "Org", "write_feed"]

_EVENT_FILE: Final = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json")
_CONTAINERS: Final = ("report", "grouping")
_SUPPORT: Final = ("marking-definition", "identity", "extension-definition")


@dataclass(frozen=True, slots=True)
class Org:
    """A MISP organisation: the ``Orgc`` of an event."""

    name: str
    uuid: str


@dataclass
class FeedSummary:
    directory: Path
    events: int = 0
    attributes: int = 0
    objects: int = 0
    #: what could not be converted, one message per event (naming it)
    problems: list[str] = field(default_factory=list)
    removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "events": self.events,
                "attributes": self.attributes, "objects": self.objects,
                "problems": self.problems, "removed": self.removed}


def write_feed(objects: Iterable[Mapping[str, Any]], directory: Path, *, org: Org,
               rest_uuid: str, rest_title: str) -> FeedSummary:
    """Write ``objects`` (STIX 2.1, one version each) as a MISP feed in ``directory``."""
    _check_directory(directory)
    by_id: dict[str, dict[str, Any]] = {}
    for obj in objects:
        if isinstance(obj.get("id"), str):
            by_id[obj["id"]] = dict(obj)
    summary = FeedSummary(directory, objects=len(by_id))
    manifest: dict[str, Any] = {}
    hashes: list[str] = []
    for label, bundle in _bundles(by_id, rest_uuid):                              # (1)
        title = rest_title if bundle["id"] == f"bundle--{rest_uuid}" else None
        try:
            events = _convert(bundle, title)
        except Exception as exc:  # any failure inside the third-party converter
            summary.problems.append(f"{label}: misp-stix cannot convert it: {_line(exc)}")
            continue
        for event in events:
            _fill(event, by_id, org)                                              # (2)
            feed = event.to_feed(with_meta=True)["Event"]
            event_hashes = feed.pop("_hashes")
            manifest.update(feed.pop("_manifest"))
            _write_json(directory / f"{event.uuid}.json", {"Event": feed})
            hashes += [f"{h},{event.uuid}" for h in event_hashes]
            summary.events += 1
            summary.attributes += len(feed.get("Attribute", [])) + sum(
                len(o.get("Attribute", [])) for o in feed.get("Object", []))
    (directory / "hashes.csv").write_text("".join(f"{line}\n" for line in hashes))
    _write_json(directory / "manifest.json", manifest)  # last: MISP reads it first
    summary.removed = _remove_stale(directory, manifest)                          # (3)
    return summary


def _check_directory(directory: Path) -> None:
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory", hint="--output names a directory")
    if directory.is_dir() and any(directory.iterdir()) and not (
            directory / "manifest.json").is_file():
        raise UsageError(f"{directory} is not empty and holds no MISP manifest.json: refusing "
                         "to write a feed into it", hint="name a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)


# -- (1) one bundle per report, and one for the rest ------------------------------------------


def _bundles(by_id: dict[str, dict[str, Any]], rest_uuid: str
             ) -> Iterator[tuple[str, dict[str, Any]]]:
    grouped: set[str] = set()
    containers = sorted((o for o in by_id.values() if o.get("type") in _CONTAINERS),
                        key=lambda o: str(o["id"]))
    for container in containers:
        members = _closure(container, by_id)
        grouped.update(members)
        yield container["id"], _bundle(container["id"].split("--", 1)[1],
                                       [by_id[i] for i in sorted(members)])
    rest = [o for i, o in sorted(by_id.items())
            if i not in grouped and o.get("type") not in _SUPPORT]
    if rest:
        members = set()
        for obj in rest:
            members |= _closure(obj, by_id)
        yield f"the {len(rest)} objects no report references", _bundle(
            rest_uuid, [by_id[i] for i in sorted(members)])


def _closure(start: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> set[str]:
    """``start`` and every exported object it references, transitively, except other
    reports and groupings (each is its own event)."""
    seen = {start["id"]}
    todo = [start]
    while todo:
        for ref in _refs(todo.pop()):
            target = by_id.get(ref)
            if target is None or ref in seen or target.get("type") in _CONTAINERS:
                continue
            seen.add(ref)
            todo.append(target)
    return seen


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("_ref") and isinstance(item, str):
                yield item
            elif key.endswith("_refs") and isinstance(item, list):
                yield from (r for r in item if isinstance(r, str))
            elif isinstance(item, dict | list):
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _bundle(uuid: str, objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "bundle", "id": f"bundle--{uuid}", "objects": objects}


def _convert(bundle: dict[str, Any], title: str | None) -> list[Any]:
    from misp_stix_converter import ExternalSTIX2toMISPParser, InternalSTIX2toMISPParser
    from misp_stix_converter.tools import is_stix2_from_misp, load_stix2_content

    loaded = load_stix2_content(bundle)
    # misp-stix logs a warning each time its own labels choose the parser: that is the
    # choice made here on purpose, so the warning is kept out of the operator's terminal
    helpers = logging.getLogger("misp_stix_converter.tools.stix2_to_misp_helpers")
    level = helpers.level
    helpers.setLevel(logging.ERROR)
    try:
        from_misp = is_stix2_from_misp(bundle["objects"])
    finally:
        helpers.setLevel(level)
    parser = InternalSTIX2toMISPParser() if from_misp else ExternalSTIX2toMISPParser()
    parser.load_stix_bundle(loaded)
    parser.parse_stix_bundle(single_event=True, title=title)
    return [parser.misp_event]


# -- (2) what MISP requires that misp-stix leaves unset -------------------------------------


def _fill(event: Any, by_id: dict[str, dict[str, Any]], default: Org) -> None:
    from pymisp import MISPOrganisation

    if not hasattr(event, "Orgc"):
        org = _creator(event.uuid, by_id) or default
        orgc = MISPOrganisation()
        orgc.from_dict(name=org.name, uuid=org.uuid)
        event.Orgc = orgc
    if not hasattr(event, "date"):
        stamp = getattr(event, "timestamp", None)
        when = stamp if isinstance(stamp, datetime) else datetime.now(UTC)
        event.set_date(when.date())


def _creator(event_uuid: str, by_id: dict[str, dict[str, Any]]) -> Org | None:
    for kind in _CONTAINERS:
        container = by_id.get(f"{kind}--{event_uuid}")
        if container is None:
            continue
        identity = by_id.get(str(container.get("created_by_ref")))
        if identity is not None and isinstance(identity.get("name"), str):
            return Org(identity["name"], str(identity["id"]).split("--", 1)[1])
    return None


# -- files ------------------------------------------------------------------------------------


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str))
    os.replace(tmp, path)


def _remove_stale(directory: Path, manifest: Mapping[str, Any]) -> int:
    keep = {f"{uuid}.json" for uuid in manifest}
    removed = 0
    for path in directory.iterdir():
        if _EVENT_FILE.fullmatch(path.name) and path.name not in keep:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
    return removed


def _line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
