"""Coalition deconfliction over the signed HTTP channels (protocol: :mod:`detente.deconflict
.coalition`; what each party learns: docs/deconfliction.md, Coalition deconfliction).

The initiator runs the run from wherever it is (CLI, web UI): it relays every message, so
it needs no server of its own, and it sees only blinded points and sealed boxes. Every
other participant serves these routes (signed partner requests only; names are the nodes'
names, which every participant must know each other by)::

  POST /deconflict/coalition/{run}/join      JSON run spec (+ grid)  → {"size": n}
  POST /deconflict/coalition/{run}/blinded   (initiator)             → our blinded list
  POST /deconflict/coalition/{run}/raise     a participant's list    → raised by our run key
  POST /deconflict/coalition/{run}/key       (any participant; R)    → R's run public key
  POST /deconflict/coalition/{run}/go        ?capacity=C, our list raised by the initiator
                                             → our sealed upload (ring, unblind, shares)
  POST /deconflict/coalition/{run}/open      ?capacity=C, N shuffled uploads (R, from M)
                                             → N sealed results
  POST /deconflict/coalition/{run}/result    our sealed result (initiator) → empty

:func:`run_coalition` is the initiator: (1) join every participant, (2) fetch each blinded
list and raise it by its own key, (3) let each participant finish its ring and upload while
it does its own, (4) as relay shuffle the N uploads for R, (5) hand each participant its
sealed result. Each participant records the run — sizes, threshold, roles, count, outcome,
never items — in its ledger (kind ``deconfliction``, role ``coalition``) whatever happens,
and keeps what it learned in ``deconflict_coalition_results`` for its operator.
"""

from __future__ import annotations

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
           counters: Counters | None = None) -> Entry:
    """The ledger entry of one run at one participant: never items."""
    doc: dict[str, Any] = {
        "role": "coalition", "session_id": spec.run_id.hex(), "mode": spec.mode.value,
        "items": spec.kind, "threshold": spec.threshold, "participants": list(spec.participants),
        "initiator": spec.initiator, "reconstructor": spec.reconstructor,
        "relay": spec.relay, "local_size": size, "matches": matched, "outcome": outcome,
        "at": datetime.now(UTC).isoformat()}
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
    participant: Participant
    labels: dict[Item, str]
    reconstructor: Reconstructor | None
    expires: float
    step: str = "joined"
    lock: threading.Lock = field(default_factory=threading.Lock)


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
                                           size=run.participant.size, matched=None,
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
            raise ForbiddenError(f"{sender} does not take part in this run")
        return run

    def _fail(self, run: _Run, exc: BaseException) -> None:
        with self.lock:
            self.runs.pop(run.spec.run_id, None)
        reason = exc.message if isinstance(exc, DetenteError) else type(exc).__name__
        self.node.ledger.append(_entry(self.node, run.spec, outcome="aborted",
                                       size=run.participant.size, matched=None,
                                       reason=f"at {run.step}: {reason}"))

    def join(self, sender: str, rid: str, body: bytes) -> dict[str, Any]:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(f"the run spec is not JSON: {exc}") from None
        spec = RunSpec.from_json(doc.get("spec") if isinstance(doc, dict) else None)
        if spec.run_id.hex() != rid.lower():
            raise ProtocolError("the run spec's id does not match the URL")
        if spec.initiator != sender:
            raise ForbiddenError(f"{sender} may not start a run in {spec.initiator}'s name")
        if self.node.name not in spec.participants:
            raise ProtocolError(f"{self.node.name} is not among this run's participants")
        for name in spec.participants:
            if name != self.node.name:
                self.node.partners.get(name)  # every co-participant must be our partner
        if not _offered(spec.kind, spec.mode):
            self.node.ledger.append(_entry(self.node, spec, outcome="refused", size=None,
                                           matched=None, reason="kind/mode not offered"))
            raise ValidationError(f"{spec.kind} is not offered in coalition {spec.mode} mode",
                                  hint="operations: pointer mode only; alignment: never")
        grid = parse_grid(doc.get("grid")) if spec.kind == "operations" else None
        mine = own_set(self.node, spec.kind, grid=grid)
        stable = {i: (p.handle, p.contact) for i, p in mine.pointers.items()}
        pointers = (_pointers(self.node, spec, mine.items, stable)
                    if spec.mode is CoalitionMode.POINTER else None)
        participant = Participant(spec, self.node.name, mine.items, pointers=pointers,
                                  budgets=self.budgets(), book=self.book)
        reconstructor = Reconstructor(spec) if spec.reconstructor == self.node.name else None
        with self.lock:
            if spec.run_id in self.runs:
                raise ReplayError("this run was already joined")
            if len(self.runs) >= _MAX_RUNS:
                raise ForbiddenError("too many coalition runs are open here; try later")
            self.runs[spec.run_id] = _Run(spec, participant, {}, reconstructor,
                                          self.clock() + _RUN_TTL_S)
        return {"size": participant.size}

    def blinded(self, sender: str, rid: str) -> bytes:
        run = self._run(rid, sender)
        with run.lock:
            if sender != run.spec.initiator or run.step != "joined":
                raise ProtocolError("only the initiator asks, once, for our blinded list")
            run.step = "blinded"
            out = run.participant.blinded()
            run.participant.counters.bytes_sent += len(out)
            return out

    def raise_for(self, sender: str, rid: str, body: bytes) -> bytes:
        run = self._run(rid, sender)
        try:
            return run.participant.raise_for(sender, body)
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
        run.participant.counters.bytes_received += len(body)
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
        spec, me = run.spec, run.participant
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
        uploads = unpack_frames(body, len(run.spec.participants))
        try:
            return pack_frames(run.reconstructor.reconstruct(uploads, capacity))
        except DetenteError as exc:
            self._fail(run, exc)
            raise

    def result(self, sender: str, rid: str, body: bytes) -> None:
        run = self._run(rid, sender)
        with run.lock:
            if sender != run.spec.initiator or run.step != "upload":
                raise ProtocolError("only the relay hands us our result, once, after upload")
            try:
                result = run.participant.read(body)
            except DetenteError as exc:
                self._fail(run, exc)
                raise
            with self.lock:
                self.runs.pop(run.spec.run_id, None)
        _save(self.node, run.spec, result, run.labels)
        self.node.ledger.append(_entry(self.node, run.spec, outcome="completed",
                                       size=result.size, matched=len(result.matched),
                                       counters=run.participant.counters))


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
                "reconstructor": self.spec.reconstructor, "relay": self.spec.relay,
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

        sizes = dict(zip(self.others, pool.map(one, self.others), strict=True))
        sizes[self.node.name] = self.me.size
        return sizes

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


def run_coalition(node: Node, others: Sequence[str], threshold: int, items: ItemsSpec, *,
                  mode: CoalitionMode | str = CoalitionMode.MEMBERSHIP,
                  client: Callable[[Node, str], PartnerClient] = open_partner_client
                  ) -> CoalitionOutcome:
    """One coalition run started by ``node`` with ``others`` (steps (1)-(5) above)."""
    if items.kind not in _KINDS:
        raise ValidationError(f"coalition runs take {', '.join(_KINDS)}, not {items.kind}")
    for name in others:
        node.partners.get(name)
    if node.name in others:
        raise ValidationError("the initiator takes part already; name only the others")
    spec = new_run(node.name, others, threshold, items.kind, mode)
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
