"""A leaked artifact, parsed into STIX-like objects and free text.

Accepts a STIX bundle, a single object, a JSON list of objects, CSV (one object per row),
or plain text (an excerpt, or a list of indicators).  JSON that does not parse — say a
truncated leak — is read as text, so its prose and ids still count.  Hostile input (too
large, too deeply nested, undecodable) is an :class:`ArtifactError`, never a bare
``ValueError``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from detente.fingerprint.errors import ArtifactError

FORMATS = ("stix", "csv", "text")
_MAX_BYTES = 50_000_000
_HEADER_CELL = re.compile(r"[A-Za-z_][\w .-]{0,40}")


@dataclass(frozen=True)
class Artifact:
    """What trace reads: objects (JSON dicts, possibly without ids) and text blocks."""

    objects: tuple[dict[str, Any], ...] = ()
    texts: tuple[str, ...] = ()
    format: str = "text"
    notes: tuple[str, ...] = field(default=())
    raw: str = ""

    @classmethod
    def from_bytes(
        cls, data: bytes, format: str | None = None, *, max_bytes: int = _MAX_BYTES
    ) -> Artifact:
        """Parse ``data``; ``format`` is ``stix``, ``csv``, ``text`` or None (detect)."""
        if format is not None and format not in FORMATS:
            raise ArtifactError(f"unknown artifact format {format!r}", hint="stix, csv or text")
        if len(data) > max_bytes:
            raise ArtifactError(f"artifact is {len(data)} bytes, more than {max_bytes}")
        text = data.decode("utf-8-sig", errors="replace")
        if format == "stix" or (format is None and text.lstrip()[:1] in ("{", "[")):
            parsed = _parse_json(text)
            if parsed is not None:
                return _from_json(parsed, text)
            if format == "stix":
                raise ArtifactError("artifact is not valid JSON", hint="try --format text")
            return cls(
                texts=(text,), format="text", notes=("JSON did not parse; read as text",), raw=text
            )
        if format == "csv" or (format is None and _looks_like_csv(text)):
            return _from_csv(text)
        return cls(texts=(text,), format="text", raw=text)

    @classmethod
    def from_objects(cls, objects: list[dict[str, Any]]) -> Artifact:
        """An artifact made of already-parsed STIX objects (tests, UI)."""
        return _from_json(objects, json.dumps(objects, ensure_ascii=False))

    @property
    def empty(self) -> bool:
        return not self.objects and not any(t.strip() for t in self.texts)


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _from_json(parsed: Any, raw: str) -> Artifact:
    items: list[Any]
    if isinstance(parsed, dict) and isinstance(parsed.get("objects"), list):
        items = parsed["objects"]
    elif isinstance(parsed, dict):
        items = [parsed]
    elif isinstance(parsed, list):
        items = parsed
    else:
        raise ArtifactError("JSON artifact is neither an object, a bundle nor a list")
    objects = tuple(o for o in items if isinstance(o, dict))
    texts = tuple(str(o) for o in items if isinstance(o, str))
    skipped = len(items) - len(objects) - len(texts)
    notes = (f"{skipped} list entries were neither objects nor strings",) if skipped else ()
    return Artifact(objects=objects, texts=texts, format="stix", notes=notes, raw=raw)


def _looks_like_csv(text: str) -> bool:
    lines = [line for line in text.splitlines()[:6] if line.strip()]
    if len(lines) < 2 or "," not in lines[0]:
        return False
    try:
        rows = list(csv.reader(lines))
    except csv.Error:
        return False
    width = len(rows[0])
    header_ok = all(_HEADER_CELL.fullmatch(cell.strip()) for cell in rows[0])
    return width >= 2 and header_ok and all(len(r) == width for r in rows)


def _from_csv(text: str) -> Artifact:
    try:
        reader = csv.DictReader(io.StringIO(text))
        rows = [
            {str(k).strip().lower(): v for k, v in row.items() if k is not None and v is not None}
            for row in reader
        ]
    except csv.Error as exc:
        raise ArtifactError(f"CSV artifact does not parse: {exc}") from exc
    objects = tuple(_csv_object(row) for row in rows if row)
    return Artifact(objects=objects, format="csv", raw=text)


def _csv_object(row: dict[str, Any]) -> dict[str, Any]:
    """A CSV row as a STIX-like object; list-valued cells written as JSON arrays are parsed."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        cell = value.strip() if isinstance(value, str) else value
        if isinstance(cell, str) and cell.startswith("[") and cell.endswith("]"):
            parsed = _parse_json(cell)
            out[key] = parsed if isinstance(parsed, list) else cell
        else:
            out[key] = cell
    return out
