"""Coalition deconfliction over the signed HTTP channels (protocol: :mod:`detente.deconflict
.coalition`; what each party learns: docs/deconfliction.md, Coalition deconfliction).

The initiator runs the run from wherever it is (CLI, web UI): it relays every message, so
it needs no server of its own, and it sees only blinded points and sealed boxes. Every
other participant, and the reconstructor R, serves these routes (signed partner requests
only; names are the nodes' names, which every node of the run must know each other by)::

  POST /deconflict/coalition/{run}/join      JSON run spec (+ grid)  → {"size": n}, or
                                             {"role": "reconstructor"} at a non-holding R
  POST /deconflict/coalition/{run}/blinded   (initiator)             → our blinded list
  POST /deconflict/coalition/{run}/raise     a participant's list    → raised by our run key
  POST /deconflict/coalition/{run}/key       (any participant; R)    → R's run public key
  POST /deconflict/coalition/{run}/go        ?capacity=C, our list raised by the initiator
                                             → our sealed upload (ring, unblind, shares)
  POST /deconflict/coalition/{run}/open      ?capacity=C, N shuffled uploads (R, from M)
                                             → N sealed results
  POST /deconflict/coalition/{run}/result    our sealed result (initiator) → empty

A node that reconstructs a run it holds no items in (``--reconstructor NODE``; required at
T ≥ 3, and checked by every participant in the spec) serves only ``join``, ``key`` and
``open``: it reads no set of its own, and asking it for a list, a ring step, an upload or a
result aborts the run there (it refuses to be given items). It charges the initiator one
query of its daily budget per run and refuses a capacity above the items per query it
allows.

:func:`run_coalition` is the initiator: (1) join every participant and R, (2) fetch each
blinded list and raise it by its own key, (3) let each participant finish its ring and
upload while it does its own, (4) as relay shuffle the N uploads for R, (5) hand each
participant its sealed result. Each node of the run records it — sizes, threshold, roles,
count, outcome, never items; R that it reconstructed and how many over-threshold groups it
found — in its ledger (kind ``deconfliction``, role ``coalition``) whatever happens, and
each participant keeps what it learned in ``deconflict_coalition_results`` for its operator.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from detente.deconflict import (
    BudgetExceeded,
    Budgets,
    Item,
    Mode,
    PlaceTimeGrid,
    ProtocolError,
    ReplayError,
    SqlBudgetBook,
)
from detente.deconflict._shares import matching_work
from detente.deconflict.coalition import (
    CoalitionMode,
    CoalitionResult,
    ContactPointer,
    Counters,
    Participant,
    Reconstructor,
    Relay,
    RunSpec,
    capacity_for,
    new_run,
    pack_frames,
    unpack_frames,
)
from detente.deconflict.prepared import session_handle
from detente.errors import DetenteError, ForbiddenError, NotFoundError, ValidationError
from detente.federation.http.auth import read_body
from detente.federation.http.client import PartnerClient, open_partner_client
from detente.federation.http.endpoint import int_param, json_response, partner_endpoint
from detente.federation.psi.budgets import BudgetTable
from detente.federation.psi.remote import ItemsSpec
from detente.federation.psi.sets import (
    DEFAULT_MODES,
    SESSION_HANDLE_KEY_FILE,
    default_contact,
    format_grid,
    own_set,
    parse_grid,
)
from detente.ledger import Entry
from detente.node import Node
from detente.store.engine import writer

__all__ = [
    "MAX_CAPACITY",
    "MAX_MATCHING_WORK",
    "CoalitionOutcome",
    "check_roles",
    "coalition_routes",
    "coalition_runs",
    "run_coalition",
]

PSI_MEDIA = "application/octet-stream"
MAX_CAPACITY = 1 << 17
#: candidate polynomials R may have to compute; larger T × set sizes are refused up front
MAX_MATCHING_WORK = 60_000_000
_RUN_TTL_S = 900.0
_MAX_RUNS = 64
_KINDS = ("observables", "names", "operations")

_metadata = sa.MetaData()
results_table = sa.Table(
    "deconflict_coalition_results", _metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("at", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)


def _offered(kind: str, mode: CoalitionMode) -> bool:
    """Our policy, the two-party one: operations only with pointers (never where and when),
    alignment not at all (it is cardinality only)."""
    wanted = Mode.POINTER if mode is CoalitionMode.POINTER else Mode.INTERSECTION
    return kind in _KINDS and wanted in DEFAULT_MODES.get(kind, frozenset())


def _entry(node: Node, spec: RunSpec, *, outcome: str, size: int | None,
           matched: int | None, reason: str | None = None,
           counters: Counters | None = None, groups: int | None = None) -> Entry:
    """The ledger entry of one run at one node of it: never items. ``reconstructed`` says
    whether this node was R; ``groups`` (R only) how many over-threshold groups it found."""
    doc: dict[str, Any] = {
        "role": "coalition", "session_id": spec.run_id.hex(), "mode": spec.mode.value,
        "items": spec.kind, "threshold": spec.threshold, "participants": list(spec.participants),
        "initiator": spec.initiator, "reconstructor": spec.reconstructor,
        "relay": spec.relay, "reconstructed": spec.reconstructor == node.name,
        "holds_items": node.name in spec.participants, "local_size": size,
        "matches": matched, "outcome": outcome, "at": datetime.now(UTC).isoformat()}
    if groups is not None:
        doc["groups"] = groups
    if reason:
        doc["reason"] = reason[:400]
    if counters is not None:
        doc.update(multiplications=counters.multiplications, hashes=counters.hashes,
                   bytes_sent=counters.bytes_sent, bytes_received=counters.bytes_received)
    partner = spec.initiator if spec.initiator != node.name else None
    return Entry(kind="deconfliction", time=datetime.now(UTC), partner=partner,
                 detail=orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode())


def _label(item: Item) -> str:
    return f"{item.kind}:{item.value}"


def _save(node: Node, spec: RunSpec, result: CoalitionResult,
          labels: Mapping[Item, str]) -> None:
    doc = {"run_id": spec.run_id.hex(), "threshold": spec.threshold, "items": spec.kind,
           "mode": spec.mode.value, "participants": list(spec.participants),
           "size": result.size, "matched": [labels.get(i, _label(i)) for i in result.matched],
           "pointers": {labels.get(i, _label(i)): [vars(p) for p in ps]
                        for i, ps in result.pointers.items()}}
    engine = writer(node.store.engine)
    _metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(results_table.insert().values(
            run_id=spec.run_id.hex(), at=datetime.now(UTC).isoformat(),
            detail=orjson.dumps(doc).decode()))


def coalition_runs(node: Node, limit: int = 20) -> list[dict[str, Any]]:
    """What this node learned in its latest coalition runs, newest first."""
    engine = node.store.engine
    _metadata.create_all(writer(engine))
    t = results_table
    with engine.connect() as conn:
        rows = conn.execute(sa.select(t).order_by(t.c.at.desc()).limit(limit)).all()
    return [{"at": r.at, **orjson.loads(r.detail)} for r in rows]


def _pointers(node: Node, spec: RunSpec, items: Sequence[Item],
              stable: Mapping[Item, tuple[str, str]]) -> dict[Item, ContactPointer]:
    """Our pointer per item: a handle fresh for this run (keyed by the run id) and a contact."""
    key = node.secret_file(SESSION_HANDLE_KEY_FILE)
    contact = default_contact(node)
    out = {}
    for item in items:
        handle, chosen = stable.get(item, (f"item-{item.value}", contact))
        out[item] = ContactPointer(node.name, session_handle(key, spec.run_id, handle), chosen)
    return out


@dataclass
class _Run:
    spec: RunSpec
    participant: Participant | None  # None at a reconstructor that holds no items
    labels: dict[Item, str]
    reconstructor: Reconstructor | None
    expires: float
    step: str = "joined"
    groups: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def size(self) -> int | None:
        return None if self.participant is None else self.participant.size


class _CoalitionService:
    def __init__(self, node: Node, budgets: Budgets | None, clock: Callable[[], float],
                 client: Callable[[Node, str], PartnerClient]) -> None:
        self.node, self.clock, self.client = node, clock, client
        self.fixed_budgets = budgets
        self.book = SqlBudgetBook(writer(node.store.engine))
        self.runs: dict[bytes, _Run] = {}
        self.lock = threading.Lock()

    def budgets(self) -> Budgets:
        return self.fixed_budgets or BudgetTable(self.node.store.engine).budgets()

    def sweep(self) -> None:
        """Runs left unfinished past their deadline are recorded aborted, never left open."""
        with self.lock:
            now = self.clock()
            gone = [self.runs.pop(r) for r, run in list(self.runs.items()) if run.expires < now]
        for run in gone:
            self.node.ledger.append(_entry(self.node, run.spec, outcome="aborted",
                                           size=run.size, matched=None,
                                           reason=f"run expired after step {run.step}"))

    def _run(self, rid: str, sender: str) -> _Run:
        self.sweep()
        try:
            run_id = bytes.fromhex(rid)
        except ValueError:
            raise ValidationError(f"run id {rid!r} is not hex") from None
        with self.lock:
            run = self.runs.get(run_id)
        if run is None:
            raise NotFoundError("no coalition run with this id is open here")
        if sender not in run.spec.participants:
            raise ForbiddenError(f"{sender} holds no items in this run: it may not ask "
                                 f"anything of its nodes")
        return run

    def _fail(self, run: _Run, exc: BaseException) -> None:
        with self.lock:
            self.runs.pop(run.spec.run_id, None)
        reason = exc.message if isinstance(exc, DetenteError) else type(exc).__name__
        self.node.ledger.append(_entry(self.node, run.spec, outcome="aborted",
                                       size=run.size, matched=None,
                                       reason=f"at {run.step}: {reason}"))

    def _mine(self, run: _Run, step: str) -> Participant:
        """Our participant in ``run``; at a reconstructor holding no items, asking for a
        list, a ring step, an upload or a result aborts the run (we are given no items)."""
        if run.participant is None:
            refusal = ProtocolError(f"{self.node.name} reconstructs this run and holds no "
                                    f"items in it: no {step} here")
            self._fail(run, refusal)
            raise refusal
        return run.participant

    def _refuse_spec(self, sender: str, rid: str, exc: DetenteError) -> None:
        """A spec we refuse before it parses (roles, threshold, names) is recorded too."""
        doc = {"role": "coalition", "session_id": rid[:32], "initiator": sender,
               "outcome": "refused", "reason": f"run spec: {exc.message}"[:400],
               "at": datetime.now(UTC).isoformat()}
        self.node.ledger.append(Entry(
            kind="deconfliction", time=datetime.now(UTC), partner=sender,
            detail=orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()))

    def join(self, sender: str, rid: str, body: bytes) -> dict[str, Any]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"the run spec is not JSON: {exc}") from None
        try:
            spec = RunSpec.from_json(doc.get("spec") if isinstance(doc, dict) else None)
        except ProtocolError as exc:  # (0) roles: at T >= 3 a holding R is refused here
            self._refuse_spec(sender, rid, exc)
            raise
        if spec.run_id.hex() != rid.lower():
            raise ProtocolError("the run spec's id does not match the URL")
        if spec.initiator != sender:
            raise ForbiddenError(f"{sender} may not start a run in {spec.initiator}'s name")
        if self.node.name not in spec.nodes:
            raise ProtocolError(f"{self.node.name} is not among this run's participants")
        for name in spec.nodes:
            if name != self.node.name:
                self.node.partners.get(name)  # every node of the run must be our partner
        if not _offered(spec.kind, spec.mode):
            self.node.ledger.append(_entry(self.node, spec, outcome="refused", size=None,
                                           matched=None, reason="kind/mode not offered"))
            raise ValidationError(f"{spec.kind} is not offered in coalition {spec.mode} mode",
                                  hint="operations: pointer mode only; alignment: never")
        if self.node.name not in spec.participants:
            return self._join_as_reconstructor(spec)
        grid = parse_grid(doc.get("grid")) if spec.kind == "operations" else None
        mine = own_set(self.node, spec.kind, grid=grid)
        stable = {i: (p.handle, p.contact) for i, p in mine.pointers.items()}
        pointers = (_pointers(self.node, spec, mine.items, stable)
                    if spec.mode is CoalitionMode.POINTER else None)
        participant = Participant(spec, self.node.name, mine.items, pointers=pointers,
                                  budgets=self.budgets(), book=self.book)
        reconstructor = Reconstructor(spec) if spec.reconstructor == self.node.name else None
        self._open_run(_Run(spec, participant, {}, reconstructor, self.clock() + _RUN_TTL_S))
        return {"size": participant.size}

    def _open_run(self, run: _Run) -> None:
        with self.lock:
            if run.spec.run_id in self.runs:
                raise ReplayError("this run was already joined")
            if len(self.runs) >= _MAX_RUNS:
                raise ForbiddenError("too many coalition runs are open here; try later")
            self.runs[run.spec.run_id] = run

    def _join_as_reconstructor(self, spec: RunSpec) -> dict[str, Any]:
        """We reconstruct and hold no items: no set is read; the initiator pays one query
        of the daily budget we give it (a refusal is recorded, never items)."""
        budget = self.budgets().for_partner(spec.initiator)
        session = hashlib.sha256(b"mpsi-r\x00" + spec.run_id).hexdigest()
        try:
            self.book.charge(partner=spec.initiator, session_id=session,
                             day=datetime.now(UTC).date(), items=0, budget=budget)
        except DetenteError as exc:
            self.node.ledger.append(_entry(self.node, spec, outcome="refused", size=None,
                                           matched=None, reason=exc.message))
            raise
        self._open_run(_Run(spec, None, {}, Reconstructor(spec), self.clock() + _RUN_TTL_S))
        return {"role": "reconstructor"}

    def blinded(self, sender: str, rid: str) -> bytes:
        run = self._run(rid, sender)
        with run.lock:
            if sender != run.spec.initiator or run.step != "joined":
                raise ProtocolError("only the initiator asks, once, for our blinded list")
            me = self._mine(run, "list")
            run.step = "blinded"
            out = me.blinded()
            me.counters.bytes_sent += len(out)
            return out

    def raise_for(self, sender: str, rid: str, body: bytes) -> bytes:
        run = self._run(rid, sender)
        me = self._mine(run, "ring step")
        try:
            return me.raise_for(sender, body)
        except DetenteError as exc:
            self.node.ledger.append(_entry(self.node, run.spec, outcome="refused",
                                           size=None, matched=None,
                                           reason=f"{sender}'s list: {exc.message}"))
            raise

    def key(self, sender: str, rid: str) -> bytes:
        run = self._run(rid, sender)
        if run.reconstructor is None:
            raise NotFoundError("this node is not the run's reconstructor")
        return run.reconstructor.public_key

    def go(self, sender: str, rid: str, capacity: int, body: bytes) -> bytes:
        run = self._run(rid, sender)
        me = self._mine(run, "upload")
        me.counters.bytes_received += len(body)
        with run.lock:
            if sender != run.spec.initiator or run.step != "blinded":
                raise ProtocolError("only the initiator starts our ring, once, after blinding")
            run.step = "ring"
            try:
                return self._ring_and_upload(run, capacity, body)
            except Exception as exc:
                self._fail(run, exc)
                raise

    def _ring_and_upload(self, run: _Run, capacity: int, elements: bytes) -> bytes:
        spec, me = run.spec, self._mine(run, "upload")
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValidationError(f"capacity {capacity} is outside 1..{MAX_CAPACITY}")
        for other in spec.others(self.node.name):
            if other == spec.initiator:
                continue  # it applied its key before handing us the list
            me.counters.bytes_sent += len(elements)
            with self.client(self.node, other) as http:
                elements = http.post_bytes(f"/deconflict/coalition/{spec.run_id.hex()}/raise",
                                           elements)
            me.counters.bytes_received += len(elements)
        me.unblind(elements)
        run.step = "upload"
        return me.upload(capacity, self._reconstructor_key(run))

    def _reconstructor_key(self, run: _Run) -> bytes:
        if run.reconstructor is not None:
            return run.reconstructor.public_key
        with self.client(self.node, run.spec.reconstructor) as http:
            return http.post_bytes(f"/deconflict/coalition/{run.spec.run_id.hex()}/key", b"")

    def open(self, sender: str, rid: str, capacity: int, body: bytes) -> bytes:
        run = self._run(rid, sender)
        if run.reconstructor is None:
            raise NotFoundError("this node is not the run's reconstructor")
        if sender != run.spec.relay:
            raise ForbiddenError("only the run's relay hands us the uploads")
        spec, r = run.spec, run.reconstructor
        try:
            self._check_work(spec, capacity)
            results = r.reconstruct(unpack_frames(body, len(spec.participants)), capacity)
        except DetenteError as exc:
            self._fail(run, exc)
            raise
        run.groups = len(r.learned)
        if run.participant is None:  # nothing more to come our way: the run is done here
            with self.lock:
                self.runs.pop(spec.run_id, None)
            self.node.ledger.append(_entry(self.node, spec, outcome="completed", size=None,
                                           matched=None, counters=r.counters,
                                           groups=run.groups))
        return pack_frames(results)

    def _check_work(self, spec: RunSpec, capacity: int) -> None:
        """R's own limits, before it opens anything: the capacity within the items per
        query we give the initiator, the matching work within what we compute at all."""
        if not 1 <= capacity <= MAX_CAPACITY:
            raise ValidationError(f"capacity {capacity} is outside 1..{MAX_CAPACITY}")
        budget = self.budgets().for_partner(spec.initiator)
        if capacity > budget.items_per_query:
            raise BudgetExceeded(f"a run of capacity {capacity} exceeds the "
                                 f"{budget.items_per_query} items per query we allow "
                                 f"{spec.initiator}", reason="items_per_query")
        work = matching_work(spec.threshold, len(spec.participants), capacity)
        if work > MAX_MATCHING_WORK:
            raise ValidationError(f"~{work:,} candidate polynomials is more than the "
                                  f"{MAX_MATCHING_WORK:,} we reconstruct")

    def result(self, sender: str, rid: str, body: bytes) -> None:
        run = self._run(rid, sender)
        me = self._mine(run, "result")
        with run.lock:
            if sender != run.spec.initiator or run.step != "upload":
                raise ProtocolError("only the relay hands us our result, once, after upload")
            try:
                result = me.read(body)
            except DetenteError as exc:
                self._fail(run, exc)
                raise
            with self.lock:
                self.runs.pop(run.spec.run_id, None)
        _save(self.node, run.spec, result, run.labels)
        self.node.ledger.append(_entry(self.node, run.spec, outcome="completed",
                                       size=result.size, matched=len(result.matched),
                                       counters=me.counters, groups=run.groups))


def coalition_routes(node: Node, *, budgets: Budgets | None = None,
                     clock: Callable[[], float] = time.monotonic,
                     client: Callable[[Node, str], PartnerClient] = open_partner_client
                     ) -> list[BaseRoute]:
    """The ``/deconflict/coalition/…`` routes of ``node`` (see the module docstring)."""
    svc = _CoalitionService(node, budgets, clock, client)
    limit = int(node.settings["max_request_bytes"])

    def octets(body: bytes) -> Response:
        return Response(body, media_type=PSI_MEDIA)

    async def handle(request: Request, partner: str) -> Response:
        rid, step = request.path_params["rid"], request.path_params["step"]
        body = await read_body(request, limit)
        if step == "join":
            return json_response(await run_in_threadpool(svc.join, partner, rid, body))
        if step == "blinded":
            return octets(await run_in_threadpool(svc.blinded, partner, rid))
        if step == "raise":
            return octets(await run_in_threadpool(svc.raise_for, partner, rid, body))
        if step == "key":
            return octets(await run_in_threadpool(svc.key, partner, rid))
        if step in ("go", "open"):
            capacity = int_param(request, "capacity")
            work = svc.go if step == "go" else svc.open
            return octets(await run_in_threadpool(work, partner, rid, capacity, body))
        if step == "result":
            await run_in_threadpool(svc.result, partner, rid, body)
            return octets(b"")
        raise NotFoundError(f"no coalition step {step!r}")

    return [Route("/deconflict/coalition/{rid}/{step}",
                  partner_endpoint(handle, taxii_accept=False), methods=["POST"])]


# -- the initiator -------------------------------------------------------------------------


@dataclass(frozen=True)
class CoalitionOutcome:
    """What the initiator learned (its own items only) and what the run cost it."""

    spec: RunSpec
    sizes: Mapping[str, int]
    capacity: int
    matched: tuple[str, ...]
    pointers: Mapping[str, tuple[ContactPointer, ...]]
    counters: Counters
    ledger_index: int | None
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"run_id": self.spec.run_id.hex(), "threshold": self.spec.threshold,
                "mode": self.spec.mode.value, "items": self.spec.kind,
                "participants": list(self.spec.participants),
                "reconstructor": self.spec.reconstructor,
                "reconstructor_holds_items": self.spec.holding_reconstructor,
                "relay": self.spec.relay,
                "sizes": dict(self.sizes), "capacity": self.capacity,
                "matched": list(self.matched),
                "pointers": {k: [vars(p) for p in v] for k, v in self.pointers.items()},
                "multiplications": self.counters.multiplications,
                "bytes_sent": self.counters.bytes_sent,
                "bytes_received": self.counters.bytes_received,
                "ledger_index": self.ledger_index, "seconds": round(self.seconds, 3)}


class _Initiator:
    def __init__(self, node: Node, spec: RunSpec, items: ItemsSpec,
                 client: Callable[[Node, str], PartnerClient]) -> None:
        self.node, self.spec, self.items, self.client = node, spec, items, client
        self.others = [n for n in spec.participants if n != node.name]
        self.path = f"/deconflict/coalition/{spec.run_id.hex()}"
        pointers = None
        if spec.mode is CoalitionMode.POINTER:
            stable = {i: (f"q-{k}", default_contact(node)) for k, i in enumerate(items.items)}
            pointers = _pointers(node, spec, items.items, stable)
        budgets = BudgetTable(node.store.engine).budgets()
        self.me = Participant(spec, node.name, items.items, pointers=pointers,
                              budgets=budgets, book=SqlBudgetBook(writer(node.store.engine)))
        self.step = "join"
        self.wire = Counters()

    @property
    def counters(self) -> Counters:
        c = self.me.counters
        return Counters(c.hashes, c.multiplications, self.wire.bytes_sent,
                        self.wire.bytes_received)

    def post(self, partner: str, step: str, body: bytes, **params: object) -> bytes:
        with self.client(self.node, partner) as http:
            data = http.post_bytes(f"{self.path}/{step}", body, params or None)
        self.wire.bytes_sent += len(body)  # what crossed the wire (we relay too)
        self.wire.bytes_received += len(data)
        return data

    def join(self, pool: ThreadPoolExecutor) -> dict[str, int]:
        doc: dict[str, Any] = {"spec": self.spec.to_json()}
        if self.items.kind == "operations":
            doc["grid"] = format_grid(self.items.grid or PlaceTimeGrid())

        def one(partner: str) -> int:
            with self.client(self.node, partner) as http:
                answer = http.post_json(f"{self.path}/join", doc)
            size = answer.get("size")
            if not isinstance(size, int) or size < 0:
                raise ProtocolError(f"{partner} answered the join without a size")
            return size

        r = self.spec.reconstructor
        joining = pool.submit(self._join_reconstructor, doc) if r not in self.others else None
        sizes = dict(zip(self.others, pool.map(one, self.others), strict=True))
        sizes[self.node.name] = self.me.size
        if joining is not None:
            joining.result()
        return sizes

    def _join_reconstructor(self, doc: dict[str, Any]) -> None:
        r = self.spec.reconstructor
        with self.client(self.node, r) as http:
            answer = http.post_json(f"{self.path}/join", doc)
        if answer != {"role": "reconstructor"}:
            raise ProtocolError(f"{r} did not join as a reconstructor holding no items")

    def run(self) -> tuple[dict[str, int], int, CoalitionResult]:
        spec = self.spec
        with ThreadPoolExecutor(max_workers=max(1, len(self.others) + 1)) as pool:
            sizes = self.join(pool)                                         # (1)
            capacity = capacity_for(sizes.values())
            work = matching_work(spec.threshold, len(spec.participants), capacity)
            if work > MAX_MATCHING_WORK:
                raise ValidationError(
                    f"threshold {spec.threshold} over {len(spec.participants)} sets of up to "
                    f"{max(sizes.values())} items needs ~{work:,} candidate polynomials",
                    hint="use a lower threshold or smaller sets (T = 2 is linear)")
            self.step = "blind"
            lists = pool.map(lambda p: self.me.raise_for(p, self.post(p, "blinded", b"")),
                             self.others)                                    # (2)
            raised = dict(zip(self.others, lists, strict=True))
            self.step = "ring"
            futures = {p: pool.submit(self.post, p, "go", raised[p], capacity=capacity)
                       for p in self.others}                                 # (3)
            elements = self.me.blinded()
            for other in spec.others(self.node.name):
                elements = self.post(other, "raise", elements)
            self.me.unblind(elements)
            key = self.post(spec.reconstructor, "key", b"")
            uploads = {self.node.name: self.me.upload(capacity, key)}
            uploads.update({p: f.result() for p, f in futures.items()})
            self.step = "relay"
            relay = Relay(spec)                                              # (4)
            for name in spec.participants:
                relay.accept(name, uploads[name])
            answer = self.post(spec.reconstructor, "open", pack_frames(relay.batch()),
                               capacity=capacity)
            results = relay.deliver(unpack_frames(answer, len(spec.participants)))
            self.step = "results"
            done = [pool.submit(self.post, p, "result", results[p]) for p in self.others]
            mine = self.me.read(results[self.node.name])                    # (5)
            for f in done:
                f.result()
        return sizes, capacity, mine


def check_roles(node: Node, others: Sequence[str], threshold: int,
                reconstructor: str | None) -> None:
    """The initiator's checks, before any message: every node named is a partner; a
    reconstructor named holds no items (it is neither us nor one of ``others``); at
    T >= 3 one must be named (fail closed: participants refuse a spec without one)."""
    for name in others:
        node.partners.get(name)
    if node.name in others:
        raise ValidationError("the initiator takes part already; name only the others")
    if reconstructor is None:
        if threshold >= 3:
            raise ValidationError(
                f"threshold {threshold} needs a reconstructor that holds no items (one "
                f"that held items could count the holders of its own items below the "
                f"threshold)", hint="--reconstructor NODE: a partner that takes part with "
                                    "no set; or use threshold 2")
        return
    node.partners.get(reconstructor)
    if reconstructor == node.name or reconstructor in others:
        raise ValidationError(f"{reconstructor} holds items in this run and may not "
                              f"reconstruct it", hint="--reconstructor names a partner "
                                                      "that is not a participant (--with)")


def run_coalition(node: Node, others: Sequence[str], threshold: int, items: ItemsSpec, *,
                  mode: CoalitionMode | str = CoalitionMode.MEMBERSHIP,
                  reconstructor: str | None = None,
                  client: Callable[[Node, str], PartnerClient] = open_partner_client
                  ) -> CoalitionOutcome:
    """One coalition run started by ``node`` with ``others`` (steps (1)-(5) above);
    ``reconstructor`` names a partner that takes part holding no items (required at
    T >= 3)."""
    if items.kind not in _KINDS:
        raise ValidationError(f"coalition runs take {', '.join(_KINDS)}, not {items.kind}")
    check_roles(node, others, threshold, reconstructor)
    spec = new_run(node.name, others, threshold, items.kind, mode,
                   reconstructor=reconstructor)
    if not _offered(spec.kind, spec.mode):
        raise ValidationError(f"{spec.kind} is not offered in coalition {spec.mode} mode",
                              hint="operations: --pointer (where and when never leave)")
    started = time.perf_counter()
    initiator = _Initiator(node, spec, items, client)
    try:
        sizes, capacity, mine = initiator.run()
    except Exception as exc:
        reason = exc.message if isinstance(exc, DetenteError) else type(exc).__name__
        node.ledger.append(_entry(node, spec, outcome="aborted", size=len(items.items),
                                  matched=None, reason=f"at {initiator.step}: {reason}"))
        raise
    labels = {i: items.label(i) for i in items.items}
    _save(node, spec, mine, labels)
    index = node.ledger.append(_entry(node, spec, outcome="completed", size=mine.size,
                                      matched=len(mine.matched),
                                      counters=initiator.counters))
    matched = tuple(dict.fromkeys(labels[i] for i in mine.matched))
    pointers: dict[str, tuple[ContactPointer, ...]] = {}
    for item, found in mine.pointers.items():
        pointers.setdefault(labels[item], tuple(found))
    return CoalitionOutcome(spec, sizes, capacity, matched, pointers, initiator.counters,
                            index, time.perf_counter() - started)
