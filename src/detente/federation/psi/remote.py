"""Private deconfliction with a partner, requester side (used by the CLI and the web UI).

``run_query(node, partner, mode, items)``:

  (1) blind our items (``Requester.start``) and POST the query to the partner;
  (2) read its response (a budget refusal is raised with the limit it names);
  (3) intersection: unblind and look up (``finish``); the other modes: send the reveal
      and read the opening (``reveal`` → ``conclude``: the partner's count in cardinality
      mode, the boxes of the matches in pointer mode, the checked commitment in mutual);
  (4) record the session in our ledger — mode, sizes, count, outcome, never items —
      whatever happened, then return or raise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from detente.deconflict import (
    Item,
    OpeningMessage,
    Outcome,
    PlaceTimeGrid,
    Pointer,
    Requester,
    ResponseMessage,
    Result,
    SessionRecord,
    from_pattern,
    from_sco,
    name,
)
from detente.deconflict.items import NAME_KINDS
from detente.errors import DetenteError, ValidationError
from detente.federation.http.client import PartnerClient, open_partner_client
from detente.federation.psi.routes import session_entry
from detente.federation.psi.sets import (
    KINDS,
    NAMED_TYPES,
    OBSERVABLE_TYPES,
    Operation,
    format_grid,
    names_of,
    observables_of,
    own_set,
    parse_operations,
)
from detente.node import Node

__all__ = ["DeconflictOutcome", "ItemsSpec", "run_query"]


@dataclass(frozen=True)
class ItemsSpec:
    """What we ask about: items of one ``kind`` and, per item, what it stands for."""

    kind: str
    items: tuple[Item, ...]
    labels: Mapping[Item, str] = field(default_factory=dict)
    grid: PlaceTimeGrid | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"unknown item kind {self.kind!r}",
                                  hint=f"one of {', '.join(KINDS)}")
        if not self.items:
            raise ValidationError(f"no {self.kind} to deconflict")

    def label(self, item: Item) -> str:
        return self.labels.get(item, f"{item.kind}:{item.value}")

    @classmethod
    def observables(cls, node: Node) -> ItemsSpec:
        """This node's own observables (what ``--observables`` sends)."""
        mine = own_set(node, "observables")
        return cls("observables", tuple(mine.items))

    @classmethod
    def operations(cls, operations: Sequence[Operation],
                   grid: PlaceTimeGrid | None = None) -> ItemsSpec:
        """Planned operations as place-and-time items, each labelled with its operation."""
        grid = grid or PlaceTimeGrid()
        labels: dict[Item, str] = {}
        for op in operations:
            for item in op.event.items(grid):
                labels.setdefault(item, op.name)
        return cls("operations", tuple(labels), labels, grid)

    @classmethod
    def from_json(cls, doc: Any, *, alignment: bool = False) -> ItemsSpec:
        """Items from JSON: a STIX bundle, or a list of SCO-like ``{"type", "value"}``,
        ``{"pattern"}``, ``{"kind", "name"}`` or STIX objects. Observables and names
        cannot be mixed in one query; ``alignment`` requires names."""
        if isinstance(doc, dict) and doc.get("type") == "bundle":
            doc = doc.get("objects")
        if not isinstance(doc, list):
            raise ValidationError("items must be a JSON list (or a STIX bundle)")
        labels: dict[Item, str] = {}
        for i, entry in enumerate(doc):
            for item in _items_of(entry, i):
                labels.setdefault(item, item.value)
        named = {item.kind in NAME_KINDS for item in labels}
        if len(named) > 1:
            raise ValidationError("a query holds either observables or names, not both")
        kind = "names" if named == {True} else "observables"
        if alignment:
            if kind != "names":
                raise ValidationError("alignment compares names (threat actors, groups, …)")
            kind = "alignment"
        return cls(kind, tuple(labels), labels)

    @classmethod
    def operations_json(cls, doc: Any, grid: PlaceTimeGrid | None = None) -> ItemsSpec:
        return cls.operations(parse_operations(doc), grid)


def _items_of(entry: Any, i: int) -> tuple[Item, ...]:
    if not isinstance(entry, dict):
        raise ValidationError(f"item {i} is not a JSON object")
    if isinstance(entry.get("pattern"), str) and "type" not in entry:
        return from_pattern(entry["pattern"])
    if isinstance(entry.get("kind"), str) and isinstance(entry.get("name"), str):
        return (name(entry["kind"], entry["name"]),)
    kind = entry.get("type")
    if kind in NAMED_TYPES:
        return names_of(entry)
    if kind in OBSERVABLE_TYPES and kind != "indicator":
        return from_sco(entry)
    if kind == "indicator":
        found = observables_of(entry)
        if not found:
            raise ValidationError(f"item {i}: indicator pattern is not simple equality")
        return found
    raise ValidationError(f"item {i} is neither an observable, a pattern nor a name",
                          hint='e.g. {"type": "domain-name", "value": "example.org"}')


@dataclass(frozen=True)
class DeconflictOutcome:
    """What we learned, as the mode allows, and the session record we logged."""

    partner: str
    mode: str
    kind: str
    session_id: str
    sent: int
    responder_size: int | None
    count: int
    matches: tuple[str, ...] | None
    pointers: tuple[Pointer, ...] | None
    record: SessionRecord
    ledger_index: int | None

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "mode": self.mode, "items": self.kind,
                "session_id": self.session_id, "sent": self.sent,
                "responder_size": self.responder_size, "count": self.count,
                "matches": None if self.matches is None else list(self.matches),
                "pointers": None if self.pointers is None else
                [{"handle": p.handle, "contact": p.contact} for p in self.pointers],
                "outcome": self.record.outcome.value, "ledger_index": self.ledger_index}


def _params(spec: ItemsSpec) -> dict[str, str]:
    params = {"items": spec.kind}
    if spec.kind == "operations":
        params["grid"] = format_grid(spec.grid or PlaceTimeGrid())
    return params


def _exchange(requester: Requester, spec: ItemsSpec, partner: str,
              client: PartnerClient) -> Result:
    """Steps (1)-(3) over HTTP."""
    query = requester.start()  # (1)
    answer = client.post_bytes("/deconflict/query", query.to_bytes(), _params(spec))
    response = ResponseMessage.from_bytes(answer)  # (2)
    if not requester.needs_reveal:
        return requester.finish(response)  # (3)
    reveal = requester.reveal(response)
    path = f"/deconflict/sessions/{requester.session_id.hex()}/reveal"
    opening = OpeningMessage.from_bytes(client.post_bytes(path, reveal.to_bytes()))
    return requester.conclude(opening)


def _closing_record(requester: Requester, exc: BaseException) -> SessionRecord:
    record = requester.record
    if record.outcome is not Outcome.PENDING:
        return record  # the requester already recorded the abort
    refused = isinstance(exc, DetenteError) and getattr(exc, "reason", None) is not None
    reason = exc.message if isinstance(exc, DetenteError) else type(exc).__name__
    return dataclasses.replace(record, outcome=Outcome.REFUSED if refused else Outcome.ABORTED,
                               reason=reason[:400])


def _outcome(partner: str, spec: ItemsSpec, result: Result,
             record: SessionRecord, index: int | None) -> DeconflictOutcome:
    matches = None
    if result.items is not None:
        matches = tuple(dict.fromkeys(spec.label(i) for i in result.items))
    pointers = None if result.pointers is None else tuple(dict.fromkeys(result.pointers))
    return DeconflictOutcome(partner, result.mode.value, spec.kind, result.session_id,
                             len(spec.items), record.remote_size, result.count, matches,
                             pointers, record, index)


def run_query(node: Node, partner: str, mode: str, items: ItemsSpec, *,
              client: PartnerClient | None = None) -> DeconflictOutcome:
    """One deconfliction session with ``partner`` in ``mode`` (steps (1)-(4) above)."""
    node.partners.get(partner)
    requester = Requester(items.items, mode=mode, partner=partner)
    own = client is None
    http = client or open_partner_client(node, partner)
    try:
        result = _exchange(requester, items, partner, http)
    except DetenteError as exc:
        node.ledger.append(session_entry(_closing_record(requester, exc), items.kind))  # (4)
        raise
    finally:
        if own:
            http.close()
    index = node.ledger.append(session_entry(requester.record, items.kind))  # (4)
    return _outcome(partner, items, result, requester.record, index)
