"""Recording our own sighting of an object ("seen in our network", or a false positive).

A sighting is a STIX 2.1 ``sighting`` created by this node (``where_sighted_refs`` is our
identity) and ingested through the one intake path, exactly as ``detente ingest`` would
ingest the same file: validated, stored, entered in the ledger as a receipt, and seen by
earned trust, where our sighting confirms every source of the sighted object's claims —
or, marked false positive (the ``false-positive`` label and ``x_false_positive``, the
conventions :func:`detente.trust.intake.is_false_positive` honours), refutes them.  The
CLI (``detente evidence sighting``) and the UI both call :func:`record_sighting`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from detente.errors import NotFoundError, ValidationError
from detente.federation.exchange.local import IngestSummary, ingest_local
from detente.node import Node
from detente.stix.timestamps import format_micros, now_micros
from detente.stix.vocab import TLP_2_0_IDS

__all__ = ["MAX_COUNT", "SightingResult", "parse_when", "record_sighting", "sighting_for"]

#: STIX 2.1 §5.2: count is 0 to 999,999,999
MAX_COUNT = 999_999_999
#: SROs and meta objects cannot be sighted (``sighting_of_ref`` names an SDO)
_NOT_SIGHTABLE = frozenset({"relationship", "sighting", "marking-definition",
                            "language-content", "extension-definition"})


@dataclass(frozen=True, slots=True)
class SightingResult:
    sighting: dict[str, Any]
    summary: IngestSummary

    @property
    def false_positive(self) -> bool:
        return bool(self.sighting.get("x_false_positive"))


def parse_when(text: str | None, *, field: str = "time") -> int | None:
    """ISO 8601 (``2025-11-05T14:30``, ``…Z`` or ``…+01:00``; no zone means UTC) as
    microseconds; empty means None."""
    if text is None or not text.strip():
        return None
    value = text.strip()
    try:
        dt = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z"))
                                    else value)
    except ValueError:
        raise ValidationError(f"{field} {value!r} is not a date and time",
                              hint="use ISO 8601, e.g. 2025-11-05T14:30Z") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * 1_000_000 + dt.microsecond


def sighting_for(node: Node, object_id: str, *, count: int = 1,
                 first_seen: int | None = None, last_seen: int | None = None,
                 false_positive: bool = False, note: str = "",
                 tlp: str = "amber") -> dict[str, Any]:
    """The STIX sighting this node would record (times in µs; default: now)."""
    target = node.store.get(object_id)
    if target is None:
        raise NotFoundError(f"no object {object_id} in this node",
                            hint="sight an object this node holds (see 'detente list')")
    if target.type in _NOT_SIGHTABLE or "created" not in target.body:
        raise ValidationError(
            f"{target.type} objects cannot be sighted: a sighting names an SDO "
            "(an indicator, malware, campaign, ...)",
            hint="sight the indicator or SDO that describes it")
    if not 0 <= count <= MAX_COUNT:
        raise ValidationError(f"count must be 0 to {MAX_COUNT:,}, got {count}")
    if tlp not in TLP_2_0_IDS:
        raise ValidationError(f"unknown TLP level {tlp!r}",
                              hint=f"one of {', '.join(sorted(TLP_2_0_IDS))}")
    now = now_micros()
    last = last_seen if last_seen is not None else (first_seen or now)
    first = first_seen if first_seen is not None else last
    if first > last:
        raise ValidationError("first seen is after last seen")
    if last > now + 300_000_000:
        raise ValidationError("last seen is in the future")
    stamp = format_micros(now)
    body: dict[str, Any] = {
        "type": "sighting", "spec_version": "2.1", "id": f"sighting--{uuid.uuid4()}",
        "created": stamp, "modified": stamp, "created_by_ref": node.identity_id,
        "sighting_of_ref": object_id, "where_sighted_refs": [node.identity_id],
        "count": count, "first_seen": format_micros(first), "last_seen": format_micros(last),
        "object_marking_refs": [TLP_2_0_IDS[tlp]],
    }
    if note.strip():
        body["description"] = note.strip()[:4000]
    if false_positive:
        body["labels"] = ["false-positive"]
        body["x_false_positive"] = True
    return body


def record_sighting(node: Node, object_id: str, **options: Any) -> SightingResult:
    """Build our sighting of ``object_id`` (see :func:`sighting_for`) and ingest it through
    the intake path, as ``detente ingest`` does; a rejection raises ValidationError."""
    body = sighting_for(node, object_id, **options)
    summary = ingest_local(node, [("sighting", body)])
    if summary.rejected:
        raise ValidationError(f"the sighting was rejected: {summary.rejected[0].reason}")
    return SightingResult(body, summary)
