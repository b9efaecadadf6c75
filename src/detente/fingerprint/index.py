"""The node's releases, indexed for trace: by STIX id, by content, by decoy.

Content units are computed *partner-blind*: variant occurrences are replaced by their
group, lists are taken as sets and marked digits are ignored, so the same object version
has the same units in every partner's view.  Matching never looks at any partner's
symbols; that independence is what the false-accusation bound needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from detente.fingerprint.channels.numbers import TIME_PAIRS
from detente.fingerprint.channels.slots import JSON, Slot
from detente.fingerprint.channels.variants import VariantDictionary, tokenize
from detente.fingerprint.errors import ReleaseRecordError
from detente.fingerprint.records import EmbedRecord, ReleaseRecordLike

if TYPE_CHECKING:
    from detente.fingerprint.fingerprinter import Fingerprinter

SHINGLE = 4
_SKIPPED_KEYS = frozenset(
    {"id", "type", "spec_version", "created", "modified", "published", "latitude", "longitude"}
    | {name for pair in TIME_PAIRS for name in pair}
)


@dataclass
class Entry:
    """One released object version and who holds which symbols of it."""

    object_key: str
    stix_id: str | None
    modified: str
    kind: str
    units: frozenset[str]
    slots: dict[str, Slot] = field(default_factory=dict)
    holders: dict[str, dict[str, int]] = field(default_factory=dict)
    fingerprint_ids: dict[str, str] = field(default_factory=dict)
    decoys: dict[str, str] = field(default_factory=dict)  # decoy id or value -> partner
    values: frozenset[str] = frozenset()  # indicator pattern values


def canonical_stream(text: str, dictionary: VariantDictionary) -> list[str]:
    """Normalised tokens with every variant occurrence replaced by its group marker."""
    tokens = tokenize(text)
    stream = [t.norm for t in tokens]
    for occ in reversed(dictionary.scan(tokens)):
        stream[occ.first : occ.last + 1] = [f"§{occ.group}"]
    return stream


def stream_units(stream: list[str], *, all_ngrams: bool = False) -> set[str]:
    """Content units of a token stream: whole short strings or 4-token shingles."""
    units: set[str] = set()
    if len(stream) <= SHINGLE or all_ngrams:
        top = SHINGLE if all_ngrams else len(stream)
        for n in range(1, top + 1):
            if all_ngrams or n == len(stream):
                units.update("w:" + " ".join(stream[k : k + n]) for k in range(len(stream) - n + 1))
    if len(stream) >= SHINGLE:
        units.update(
            "s:" + " ".join(stream[k : k + SHINGLE]) for k in range(len(stream) - SHINGLE + 1)
        )
    return units


def object_units(obj: JSON, dictionary: VariantDictionary) -> frozenset[str]:
    """Partner-blind content units of a STIX-like object."""
    units: set[str] = set()
    for text in _strings(obj, top=True):
        stream = canonical_stream(text, dictionary)
        if stream:
            units |= stream_units(stream)
    return frozenset(units)


def _strings(value: Any, *, top: bool = False) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            if not (top and key in _SKIPPED_KEYS):
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def pattern_values(obj: JSON) -> frozenset[str]:
    """Quoted values inside an indicator pattern (IPs, domains, hashes...)."""
    pattern = obj.get("pattern")
    if not isinstance(pattern, str):
        return frozenset()
    parts = pattern.split("'")[1::2]
    return frozenset(p.strip().lower() for p in parts if len(p.strip()) >= 4)


class ReleaseIndex:
    """Released object versions by key, STIX id and content unit."""

    def __init__(self, fp: Fingerprinter, dictionary: VariantDictionary) -> None:
        self._fp = fp
        self._dictionary = dictionary
        self.entries: dict[str, Entry] = {}
        self.by_id: dict[str, list[Entry]] = {}
        self.by_unit: dict[str, list[Entry]] = {}
        self.by_value: dict[str, list[Entry]] = {}
        self.partners: set[str] = set()

    def add_all(self, releases: Iterable[ReleaseRecordLike]) -> ReleaseIndex:
        for release in releases:
            self.add(release)
        return self

    def add(self, release: ReleaseRecordLike) -> None:
        """Index one release; a record that does not match this node's secret is refused."""
        record = _record_of(release)
        partner, key = release.partner, release.object_key
        if record.partner != partner or record.object_key != key:
            raise ReleaseRecordError(f"embed record of {key!r} names another partner or object")
        entry = self.entries.get(key) or self._new_entry(key, release.view)
        held = entry.holders.setdefault(partner, {})
        for p in record.positions:
            if self._fp.symbol(p.slot.position, p.slot.q, partner) != p.symbol:
                raise ReleaseRecordError(
                    f"embed record {record.fingerprint_id} was not made with this node's secret"
                )
            entry.slots.setdefault(p.slot.position, p.slot)
            held[p.slot.position] = p.symbol
        entry.fingerprint_ids[partner] = record.fingerprint_id
        for decoy in record.decoys:
            for marker in (decoy.get("id"), decoy.get("value")):
                if isinstance(marker, str) and marker:
                    entry.decoys[marker.lower()] = partner
        self.partners.add(partner)

    def _new_entry(self, key: str, view: Any) -> Entry:
        if not isinstance(view, dict):
            raise ReleaseRecordError(f"release of {key!r} has no served view")
        stix_id = view.get("id") if isinstance(view.get("id"), str) else None
        entry = Entry(
            key,
            stix_id,
            str(view.get("modified", "")),
            str(view.get("type", "")),
            object_units(view, self._dictionary),
            values=pattern_values(view),
        )
        self.entries[key] = entry
        if stix_id:
            self.by_id.setdefault(stix_id, []).append(entry)
        for unit in entry.units:
            self.by_unit.setdefault(unit, []).append(entry)
        for value in entry.values:
            self.by_value.setdefault(value, []).append(entry)
        return entry


def _record_of(release: ReleaseRecordLike) -> EmbedRecord:
    try:
        fingerprint = release.fingerprint
        partner, key = release.partner, release.object_key
    except AttributeError as exc:
        raise ReleaseRecordError(f"release record lacks {exc.name!r}") from exc
    if not isinstance(partner, str) or not isinstance(key, str):
        raise ReleaseRecordError("release record needs string partner and object_key")
    if isinstance(fingerprint, EmbedRecord):
        return fingerprint
    if not fingerprint:  # released without a fingerprint: still evidence, no positions
        return EmbedRecord("", partner, key)
    return EmbedRecord.from_json(fingerprint)
