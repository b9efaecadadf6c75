"""Trace: from a leaked artifact to ranked recipients with a false-accusation bound.

Steps (each labelled below):
 (1) match artifact objects to released object versions: by STIX id, else by content;
     match free text by shared shingles, STIX ids and indicator values;
 (2) read the symbol every matched position shows (or an erasure), partner-blind;
 (3) score every recipient of a matched release with the symmetric Tardos score;
 (4) accuse those above their Chernoff threshold (P(any innocent) <= epsilon);
 (5) add decoy hits; if nothing matched, say the artifact was never released.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from detente.fingerprint import code
from detente.fingerprint.artifact import Artifact
from detente.fingerprint.channels import lists as ch_lists
from detente.fingerprint.channels import numbers as ch_numbers
from detente.fingerprint.channels import text as ch_text
from detente.fingerprint.channels.decoys import GUESS_PROBABILITY
from detente.fingerprint.channels.slots import JSON, ChannelContext
from detente.fingerprint.code import ReadPosition
from detente.fingerprint.index import (
    Entry,
    ReleaseIndex,
    canonical_stream,
    object_units,
    stream_units,
)
from detente.fingerprint.records import ReleaseRecordLike
from detente.fingerprint.report import MatchedRelease, Suspect, TraceReport

if TYPE_CHECKING:
    from detente.fingerprint.fingerprinter import Fingerprinter

_STIX_ID = re.compile(
    r"\b[a-z][a-z0-9-]*--[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"
)
_MIN_OVERLAP = 0.5
_FOREIGN_OVERLAP = 0.8
_TEXT_SHINGLES = 3
_BOUND_TOP = 10


@dataclass
class _Reads:
    """Symbols read per position, with conflicts turned into erasures."""

    symbols: dict[str, int | None] = field(default_factory=dict)
    how: dict[str, str] = field(default_factory=dict)  # object_key -> how matched

    def put(self, position: str, symbol: int | None) -> None:
        if position in self.symbols and self.symbols[position] != symbol:
            self.symbols[position] = None
        else:
            self.symbols.setdefault(position, symbol)


def run_trace(
    fp: Fingerprinter,
    ctx: ChannelContext,
    artifact: Artifact,
    releases: Iterable[ReleaseRecordLike] | ReleaseIndex,
) -> TraceReport:
    """The whole trace; see the module docstring for the steps."""
    index = releases if isinstance(releases, ReleaseIndex) else fp.index(releases)
    reads = _Reads()
    for obj in artifact.objects:  # (1) + (2) objects
        entry, how = _match_object(obj, index, ctx)
        if entry is not None:
            reads.how.setdefault(entry.object_key, how)
            _read_object(obj, entry, reads, ctx)
    for text in artifact.texts:  # (1) + (2) free text
        _read_text_block(text, index, reads, ctx)
    hits = _decoy_hits(artifact, index)
    return _score(fp, ctx, index, reads, hits, artifact)


# -- (1) matching ---------------------------------------------------------------------
def _match_object(obj: JSON, index: ReleaseIndex, ctx: ChannelContext) -> tuple[Entry | None, str]:
    """By id (exact version, else best content); without a known id, by content of one type.

    An object that carries an id we never released needs stronger content evidence than one
    whose id was stripped: it is more likely someone else's object on the same subject.
    """
    stix_id = obj.get("id")
    if isinstance(stix_id, str) and stix_id in index.by_id:
        versions = index.by_id[stix_id]
        exact = [e for e in versions if e.modified and e.modified == obj.get("modified")]
        if exact:
            return exact[0], "id"
        return _best(versions, object_units(obj, ctx.dictionary), 0.0, 0), "id"
    units = object_units(obj, ctx.dictionary)
    kind = obj.get("type")
    candidates = {
        e.object_key: e
        for u in units
        for e in index.by_unit.get(u, ())
        if not isinstance(kind, str) or e.kind == kind
    }
    foreign = isinstance(stix_id, str) and bool(stix_id)
    overlap, shared = (_FOREIGN_OVERLAP, 4) if foreign else (_MIN_OVERLAP, min(2, len(units)))
    return _best(list(candidates.values()), units, overlap, shared), "content"


def _best(entries: list[Entry], units: frozenset[str], overlap: float, shared: int) -> Entry | None:
    def rank(e: Entry) -> tuple[float, int, str]:
        common = len(units & e.units)
        return (common / max(1, len(units)), common, e.modified)

    ranked = sorted(entries, key=rank, reverse=True)
    if not ranked:
        return None
    top_overlap, top_shared, _ = rank(ranked[0])
    return ranked[0] if top_overlap >= overlap and top_shared >= shared else None


def _text_matches(text: str, index: ReleaseIndex, ctx: ChannelContext) -> dict[str, str]:
    """object_key -> how, for the released versions a free-text block draws on."""
    stream = canonical_stream(text, ctx.dictionary)
    units = stream_units(stream, all_ngrams=True)
    shared: dict[str, int] = {}
    for unit in (u for u in units if u.startswith("s:")):
        for e in index.by_unit.get(unit, ()):
            shared[e.object_key] = shared.get(e.object_key, 0) + 1
    found: dict[str, str] = {}
    for key, count in shared.items():
        total = sum(1 for u in index.entries[key].units if u.startswith("s:"))
        if count >= min(_TEXT_SHINGLES, total):
            found[key] = "text"
    for stix_id in _STIX_ID.findall(text.lower()):
        for e in index.by_id.get(stix_id, ())[-1:]:
            found.setdefault(e.object_key, "id")
    lowered = text.lower()
    for value, entries in index.by_value.items():
        if value in lowered:
            for e in entries:
                found.setdefault(e.object_key, "indicator")
    return _latest_per_id(found, index)


def _latest_per_id(found: dict[str, str], index: ReleaseIndex) -> dict[str, str]:
    best: dict[str, Entry] = {}
    for key in found:
        e = index.entries[key]
        ident = e.stix_id or key
        if ident not in best or e.modified > best[ident].modified:
            best[ident] = e
    return {e.object_key: found[e.object_key] for e in best.values()}


# -- (2) reading ----------------------------------------------------------------------
def _read_object(obj: JSON, entry: Entry, reads: _Reads, ctx: ChannelContext) -> None:
    text_reads: dict[str, int | None] = {}
    context = ctx.params.text_context
    for value in obj.values():
        if isinstance(value, str):
            for key, symbol in ch_text.read_text(value, ctx.dictionary, context).items():
                clash = key in text_reads and text_reads[key] != symbol
                text_reads[key] = None if clash else symbol
    for slot in entry.slots.values():
        if slot.channel == ch_lists.NAME:
            reads.put(slot.position, ch_lists.read(obj, slot))
        elif slot.channel == ch_numbers.NAME:
            reads.put(slot.position, ch_numbers.read(obj, slot))
        else:
            reads.put(slot.position, text_reads.get(slot.loc["key"]))


def _read_text_block(text: str, index: ReleaseIndex, reads: _Reads, ctx: ChannelContext) -> None:
    matched = _text_matches(text, index, ctx)
    text_reads = ch_text.read_text(text, ctx.dictionary, ctx.params.text_context)
    owners: dict[str, list[str]] = {}
    for key in matched:
        reads.how.setdefault(key, matched[key])
        for slot in index.entries[key].slots.values():
            if slot.channel == ch_text.NAME:
                owners.setdefault(slot.loc["key"], []).append(slot.position)
    for text_key, positions in owners.items():
        if len(positions) == 1:  # a context shared by two matched objects is ambiguous
            reads.put(positions[0], text_reads.get(text_key))


def _decoy_hits(artifact: Artifact, index: ReleaseIndex) -> dict[str, list[str]]:
    lowered = (artifact.raw or " ".join(artifact.texts)).lower()
    hits: dict[str, list[str]] = {}
    for entry in index.entries.values():
        for marker, partner in entry.decoys.items():
            if marker in lowered:
                hits.setdefault(partner, []).append(marker)
    return hits


# -- (3) + (4) scoring ----------------------------------------------------------------
def _score(
    fp: Fingerprinter,
    ctx: ChannelContext,
    index: ReleaseIndex,
    reads: _Reads,
    hits: dict[str, list[str]],
    artifact: Artifact,
) -> TraceReport:
    eps = ctx.params.epsilon
    entries = [index.entries[k] for k in reads.how]
    if not entries and not hits:  # (5)
        return _never_released(eps, artifact)
    slots = {p: s for e in entries for p, s in e.slots.items()}
    read = [
        ReadPosition(p, sym, fp.bias(p, slots[p].q)[sym])
        for p, sym in sorted(reads.symbols.items())
        if sym is not None and p in slots and 0 <= sym < slots[p].q
    ]
    holders: dict[str, dict[str, int]] = {}
    for e in entries:
        for partner, held in e.holders.items():
            holders.setdefault(partner, {}).update(held)
    for partner in hits:
        holders.setdefault(partner, {})
    n = max(1, len(holders))
    suspects = _suspects(read, holders, hits, n, eps)
    evidence = tuple(_evidence(e, reads) for e in entries)
    erased = sum(len(e.slots) for e in entries) - len(read)
    report = _report(suspects, evidence, eps, n, len(read), erased, artifact)
    return _with_need(report, ctx.params.positions_target)


def _with_need(report: TraceReport, target: int) -> TraceReport:
    """Say how many more objects like the matched ones would reach ``target`` positions."""
    if report.verdict != "no-accusation":
        return replace(report, positions_needed=target)
    matched = max(1, len(report.evidence))
    per_object = report.positions_read / matched
    if per_object <= 0:
        more: int | None = None
    else:
        more = max(0, math.ceil((target - report.positions_read) / per_object))
    return replace(report, positions_needed=target, more_objects_needed=more)


def _suspects(
    read: list[ReadPosition],
    holders: dict[str, dict[str, int]],
    hits: dict[str, list[str]],
    n: int,
    eps: float,
) -> list[Suspect]:
    cache: dict[tuple[str, ...], float] = {}
    rows: list[tuple[str, float, float, list[float]]] = []
    for partner, held in holders.items():
        mine = [r for r in read if r.position in held]
        signature = tuple(r.position + ":" + str(r.symbol) for r in mine)
        if signature not in cache:
            cache[signature] = code.threshold([r.pi for r in mine], n, eps)
        rows.append((partner, code.score(mine, held), cache[signature], [r.pi for r in mine]))
    rows.sort(key=lambda row: (-(row[1] - row[2]) if math.isfinite(row[2]) else math.inf, row[0]))
    out: list[Suspect] = []
    for rank, (partner, value, z, pis) in enumerate(rows):
        accused = (value >= z and bool(pis)) or partner in hits
        bound = None
        if rank < _BOUND_TOP or accused:
            bound = min(1.0, n * code.tail_bound(pis, value)) if pis else None
            if partner in hits:
                bound = min(bound if bound is not None else 1.0, n * GUESS_PROBABILITY)
        out.append(
            Suspect(
                partner, value, z, len(pis), accused, eps / n, bound, tuple(hits.get(partner, ()))
            )
        )
    out.sort(key=lambda s: (not s.accused, not s.decoy_hits, s.score_bound or 1.0, -s.score))
    return out


def _evidence(entry: Entry, reads: _Reads) -> MatchedRelease:
    count = sum(1 for p in entry.slots if reads.symbols.get(p) is not None)
    partners = tuple(sorted(entry.holders))
    return MatchedRelease(
        entry.object_key,
        entry.stix_id,
        reads.how[entry.object_key],
        partners,
        count,
        tuple(entry.fingerprint_ids[p] for p in partners),
    )


def _report(
    suspects: list[Suspect],
    evidence: tuple[MatchedRelease, ...],
    eps: float,
    n: int,
    read: int,
    erased: int,
    artifact: Artifact,
) -> TraceReport:
    accused = [s.partner for s in suspects if s.accused]
    if accused:
        verdict, message = "accused", f"accused: {', '.join(accused)}"
    elif read == 0:
        verdict = "no-accusation"
        message = (
            f"matched {len(evidence)} released object version(s), but no fingerprint "
            "position could be read; nobody is accused"
        )
    else:
        verdict = "no-accusation"
        message = f"no recipient reaches its threshold on {read} positions; nobody is accused"
    return TraceReport(
        verdict, message, eps, n, read, erased, tuple(suspects), evidence, artifact.notes
    )


def _never_released(eps: float, artifact: Artifact) -> TraceReport:
    message = (
        "never released: nothing in the artifact matches a release of this node; nobody is accused"
    )
    return TraceReport("never-released", message, eps, 0, 0, 0, notes=artifact.notes)
