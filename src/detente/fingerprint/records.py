"""What embedding hands to the release path, and what the release path hands back to trace.

``EmbedRecord`` is node-local: it holds the partner's symbols (its codeword) and is kept in
the node's release record, never sent anywhere.  Only ``fingerprint_id`` — an opaque keyed
id — may go into the ledger entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from detente.fingerprint.channels.slots import JSON, Slot
from detente.fingerprint.errors import ReleaseRecordError

RECORD_VERSION = 2
#: Version-1 records (before issue 17: large alphabets, timestamp digits, list chunks) are
#: still accepted as evidence of a release, but their positions are not read.
_LEGACY_VERSIONS = frozenset({1})
CHANNELS = frozenset({"list", "text", "number"})


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One embedded position: the slot and the symbol this partner got there."""

    slot: Slot
    symbol: int

    def to_json(self) -> JSON:
        s = self.slot
        return {"id": s.position, "ch": s.channel, "q": s.q, "sym": self.symbol, "loc": s.loc}

    @classmethod
    def from_json(cls, doc: Any) -> PositionRecord:
        try:
            slot = Slot(str(doc["id"]), str(doc["ch"]), int(doc["q"]), dict(doc["loc"]))
            symbol = int(doc["sym"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ReleaseRecordError(f"malformed position in embed record: {exc!r}") from exc
        if slot.channel not in CHANNELS or not 0 <= symbol < slot.q or slot.q < 2:
            raise ReleaseRecordError(f"position {slot.position!r} in embed record is invalid")
        return cls(slot, symbol)


@dataclass(frozen=True, slots=True)
class EmbedRecord:
    """Which positions were embedded in one view, with which symbols (JSON-serialisable)."""

    fingerprint_id: str
    partner: str
    object_key: str
    positions: tuple[PositionRecord, ...] = ()
    decoys: tuple[JSON, ...] = field(default=(), hash=False)

    def to_json(self) -> JSON:
        """The compact JSON form the release path stores."""
        return {
            "v": RECORD_VERSION,
            "fingerprint_id": self.fingerprint_id,
            "partner": self.partner,
            "object_key": self.object_key,
            "positions": [p.to_json() for p in self.positions],
            "decoys": [dict(d) for d in self.decoys],
        }

    @classmethod
    def from_json(cls, doc: Any) -> EmbedRecord:
        """Parse and validate a stored record; anything malformed is a ReleaseRecordError."""
        if isinstance(doc, dict) and doc.get("v") in _LEGACY_VERSIONS:
            try:
                return cls(str(doc["fingerprint_id"]), str(doc["partner"]), str(doc["object_key"]))
            except KeyError as exc:
                raise ReleaseRecordError(f"malformed embed record: {exc!r}") from exc
        if not isinstance(doc, dict) or doc.get("v") != RECORD_VERSION:
            raise ReleaseRecordError(f"embed record is not a version-{RECORD_VERSION} record")
        try:
            positions = tuple(PositionRecord.from_json(p) for p in doc["positions"])
            decoys = tuple(dict(d) for d in doc.get("decoys", []))
            return cls(
                str(doc["fingerprint_id"]),
                str(doc["partner"]),
                str(doc["object_key"]),
                positions,
                decoys,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReleaseRecordError(f"malformed embed record: {exc!r}") from exc

    @property
    def capacity(self) -> dict[str, int]:
        """Positions embedded per channel."""
        out = dict.fromkeys(sorted(CHANNELS), 0)
        for p in self.positions:
            out[p.slot.channel] += 1
        out["decoy"] = len(self.decoys)
        return out


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """The fingerprinted view, the record to keep, and any decoy objects to serve with it."""

    view: JSON
    record: EmbedRecord
    decoys: tuple[JSON, ...] = ()

    @property
    def fingerprinted(self) -> bool:
        """False when the policy released the view unmodified."""
        return bool(self.record.fingerprint_id)

    @property
    def fingerprint_id(self) -> str | None:
        """The opaque id for the ledger entry, or None for an unmodified view."""
        return self.record.fingerprint_id or None


class ReleaseRecordLike(Protocol):
    """What trace needs from one release the release path kept."""

    @property
    def partner(self) -> str: ...

    @property
    def object_key(self) -> str: ...

    @property
    def fingerprint(self) -> EmbedRecord | JSON: ...

    @property
    def view(self) -> JSON: ...


@dataclass(frozen=True)
class Release:
    """A plain implementation of :class:`ReleaseRecordLike`."""

    partner: str
    object_key: str
    fingerprint: EmbedRecord | JSON
    view: JSON = field(hash=False)
