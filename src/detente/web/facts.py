"""Reading what the node already knows, shaped for pages: releases, receipts, ledger tail.

Everything here reads existing capabilities through their public API (store, partner
book, release records, ledger).  Pending capabilities go through :mod:`detente.web.data`.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import orjson

from detente.ledger import BATCH_KIND, Entry
from detente.node import Node
from detente.release import ReleaseRecord, iter_release_records
from detente.release.proofs import batch_entries
from detente.store.base import Query, StoredObject

__all__ = [
    "Alarm", "PartnerTraffic", "ReleaseLine", "alarms", "day_labels", "fmt_micros",
    "fmt_stix", "fmt_time", "ledger_tail", "names_of", "received", "recent_releases",
    "traffic",
]

#: how far back the dashboard reads the ledger for recent events
TAIL = 5000


def fmt_micros(value: int | None) -> str:
    if value is None:
        return ""
    return datetime.fromtimestamp(value / 1e6, UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_time(value: datetime | str | None) -> str:
    """A ledger entry's time (aware ``datetime`` or RFC 3339 text) to the second, UTC."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_stix(value: str | None) -> str:
    """A STIX timestamp (the store keeps versions as ``…00.000000000Z``) readable: to the
    second, with the fraction only when it is not zero (trailing zeros dropped)."""
    if not value:
        return ""
    text = str(value)
    try:
        head, _, frac = text.rstrip("Zz").partition(".")
        dt = datetime.fromisoformat(head)
    except ValueError:
        return text
    frac = frac.rstrip("0")
    return dt.strftime("%Y-%m-%d %H:%M:%S") + (f".{frac}" if frac else "") + " UTC"


def names_of(node: Node, ids: Iterable[str | None]) -> dict[str, str]:
    """Display names of the objects with these ids that this node holds (one read per
    500 ids); an id not held is absent (the page shows the id itself)."""
    wanted = sorted({i for i in ids if i})
    out: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = tuple(wanted[start:start + 500])
        for obj in node.store.list(Query(ids=chunk)).objects:
            out[obj.id] = display_name(obj)
    return out


def _day(micros: int) -> date:
    return datetime.fromtimestamp(micros / 1e6, UTC).date()


def day_labels(days: int = 14, today: date | None = None) -> list[date]:
    end = today or datetime.now(UTC).date()
    return [end - timedelta(days=days - 1 - i) for i in range(days)]


def release_records(node: Node, partner: str | None = None, *, derive: bool = True,
                    object_id: str | None = None) -> Iterator[ReleaseRecord]:
    """Release records, the release tables created first (a new node has none yet);
    ``derive=False``: without each partner's exact view (counting only)."""
    _ = node.releaser  # the Releaser creates its tables
    return iter_release_records(node.store.engine, partner=partner, derive=derive,
                                object_id=object_id)


def ledger_tail(node: Node, scan: int = TAIL) -> list[tuple[int, Entry]]:
    """The last ``scan`` ledger entries, newest first."""
    size = node.ledger.size()
    return list(reversed(node.ledger.entries(max(0, size - scan), size)))


@dataclass(frozen=True, slots=True)
class ReleaseLine:
    index: int
    time: str
    partner: str
    object_id: str
    kind: str


def recent_releases(tail: list[tuple[int, Entry]], node: Node | None = None,
                    limit: int = 10) -> list[ReleaseLine]:
    """The newest releases and withdrawals in ``tail`` (newest first); with ``node``, a
    release batch stands for the releases in it."""
    out: list[ReleaseLine] = []
    for i, one in tail:
        shown = [one]
        if one.kind == BATCH_KIND and node is not None:
            shown = [e for _s, e in reversed(batch_entries(node.store.engine, node.ledger, i)[1])]
        for e in shown:
            if len(out) >= limit:
                return out
            if e.kind in ("release", "withdrawal") and e.partner and e.object_id:
                out.append(ReleaseLine(i, fmt_time(e.time), e.partner, e.object_id, e.kind))
    return out


@dataclass(frozen=True, slots=True)
class Alarm:
    kind: str
    time: str
    text: str
    link: str | None = None


def alarms(node: Node, tail: list[tuple[int, Entry]]) -> list[Alarm]:
    """Equivocations, budget refusals and traced leaks, newest first."""
    out = [Alarm("equivocation", fmt_time(a.detected_at), f"log {a.origin}: {a.kind} — {a.detail}",
                 "/ledger") for a in reversed(node.ledger.alarms())]
    for i, e in tail:
        detail = e.detail or ""
        if e.kind == "trace" and "accused nobody" not in detail:
            out.append(Alarm("leak traced", fmt_time(e.time), f"#{i}: {detail}", "/trace"))
        elif e.kind == "deconfliction" and (aborted := _aborted(detail)) is not None:
            who = f"{e.partner}: " if e.partner else ""
            out.append(Alarm("deconfliction aborted", fmt_time(e.time), f"#{i}: {who}{aborted}",
                             f"/partners/{e.partner}" if e.partner else None))
        elif e.kind == "deconfliction" and "refused" in detail:
            who = f"{e.partner}: " if e.partner else ""
            out.append(Alarm("budget refusal", fmt_time(e.time), f"#{i}: {who}{detail}",
                             f"/partners/{e.partner}" if e.partner else None))
        elif e.kind == "evidence" and detail.startswith("review opened: ") and \
                "protocol deviations" in detail:
            out.append(Alarm("protocol deviations", fmt_time(e.time),
                             f"#{i}: {e.partner}: {detail}",
                             f"/partners/{e.partner}" if e.partner else None))
    return out


def _aborted(detail: str) -> str | None:
    """What a deconfliction session the partner left or broke says (which step, which mode,
    why), or None if the entry is not an aborted session."""
    try:
        doc = orjson.loads(detail)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("outcome") != "aborted":
        return None
    why = doc.get("reason") or "no reason recorded"
    if not doc.get("mode"):  # a message too broken to name its session
        return f"a {doc.get('items', '?')} message broke off at step {doc.get('step', '?')} — {why}"
    return (f"{doc['mode']} session on {doc.get('items', '?')} aborted at step "
            f"{doc.get('step', '?')} — {why}")


@dataclass
class PartnerTraffic:
    """Sharing with one partner, both directions."""

    sent: int = 0
    withdrawn: int = 0
    received: int = 0
    sent_by_day: Counter[date] = field(default_factory=Counter)
    received_by_day: Counter[date] = field(default_factory=Counter)


def traffic(node: Node, partner: str | None = None) -> dict[str, PartnerTraffic]:
    """Release and receipt counts per partner (one pass over each)."""
    names = [partner] if partner else [p.name for p in node.partners.all()]
    out = {n: PartnerTraffic() for n in names}
    for r in release_records(node, partner, derive=False) if names else ():
        t = out.get(r.partner)
        if t is None:
            continue
        t.sent += 1
        t.withdrawn += int(r.withdrawn)
        t.sent_by_day[_day(r.released_at)] += 1
    if names:
        for obj in node.store.iter_all(Query(origins=tuple(names), versions=("all",))):
            t = out[obj.provenance.origin]
            t.received += 1
            t.received_by_day[_day(obj.provenance.received_at or obj.date_added)] += 1
    return out


def received(node: Node, origins: tuple[str, ...], limit: int = 50) -> list[StoredObject]:
    """The latest versions received from these partners, newest first."""
    if not origins:
        return []
    last: deque[StoredObject] = deque(maxlen=limit)
    last.extend(node.store.iter_all(Query(origins=origins)))
    return list(reversed(last))


def display_name(obj: StoredObject) -> str:
    body = obj.body
    name = body.get("name") or body.get("value") or body.get("pattern")
    if not name and obj.type == "relationship":
        name = f"{body.get('relationship_type', 'related-to')} relationship"
    elif not name and obj.type == "sighting":
        name = f"sighting ({body.get('count', 1)}×)"
    return str(name) if name else obj.id
