"""Pull: each partner's ``releases`` collection (what it released to us) into our store.

For one partner, :func:`sync_partner`:

  (1) discovery — ``GET {url}/taxii2/`` → the default API root (same origin only);
  (2) ``GET {root}collections/`` → the collection with alias (else title) ``releases``;
  (3) the cursor: ``added_after`` of the last committed page (or a ``next`` token);
  (4) ``GET {collection}objects/?added_after=…&match[version]=all&limit=…`` — signed,
      answer verified and bounded (:mod:`detente.federation.http.client`);
  (5) paging must progress: with ``more: true`` the page's ``X-TAXII-Date-Added-Last``
      must move past the cursor, or its ``next`` token be new — else the partner is refused;
  (6) the page goes through THE intake path, :class:`~detente.federation.exchange.intake.Intake`
      (validate, refuse, echoes, STIX versioning rules, provenance, ledger receipts in one
      transaction, evidence for earned trust);
  (7) the cursor moves to the page's ``X-TAXII-Date-Added-Last`` — only now, after the
      commit: a run killed anywhere resumes without loss, and what it re-reads is counted
      as duplicates, never stored twice;
  (8) after the last page the run's tiers are refreshed once (a changed tier reaches the
      release policy through the node's wiring) and the partner's ledger is witnessed.

A failure ends that partner's run with a :class:`~detente.federation.http.client.SyncError` in
its summary; :func:`sync_all` goes on with the other partners.  Feeds (any TAXII 2.1
server, :mod:`detente.federation.exchange.feeds`) are pulled by the same pager, unsigned,
following ``next`` tokens; ``detente sync`` pulls partners, then feeds.

Every rejection is kept in the summary (up to :data:`MAX_REJECTIONS`, the count is always
exact): ``detente sync`` lists them and exits 1, as ``detente ingest`` does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from detente.errors import DetenteError, StoreError
from detente.federation.exchange.aliases import RELEASES
from detente.federation.exchange.bulk import batch_done, relaxed_gc
from detente.federation.exchange.cursors import Cursor, load_cursor, save_cursor
from detente.federation.exchange.intake import Intake, IntakeResult, Source
from detente.federation.http.client import (
    Limits,
    PartnerClient,
    PartnerProtocolError,
    PartnerRefusedError,
    Reply,
    ResponseSignatureError,
    TaxiiClient,
)
from detente.node import Node
from detente.partners import Partner
from detente.stix.timestamps import format_micros, micros_from_stix

__all__ = ["MAX_REJECTIONS", "TIMINGS", "Found", "PartnerSummary", "Progress",
           "discover_collection", "sync_all", "sync_forever", "sync_partner"]

#: rejections kept per run and source (the count is exact beyond it): a hostile source
#: sending millions of invalid objects cannot fill the memory
MAX_REJECTIONS = 100_000

#: the parts of a run's wall time that :attr:`PartnerSummary.timings` measures
TIMINGS = ("wait_s", "intake_s", "pager_s", "intake_cpu_s")

#: (partner, objects received so far in this run, finished)
Progress = Callable[[str, int, bool], None]


@dataclass
class PartnerSummary:
    """What one partner's run did; ``error`` says why it stopped early."""

    partner: str
    new: int = 0
    updated: int = 0
    duplicates: int = 0
    rejected: int = 0
    echoes: int = 0
    pages: int = 0
    error: str | None = None
    rejections: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    key_rotated: bool = False
    corrected: int = 0
    #: where the run's wall time went (seconds): waiting for the partner's pages, the
    #: intake path, and everything else of the pager (parsing, paging checks, cursors) —
    #: discovery and witnessing are outside the three — and the intake path's CPU time
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMINGS, 0.0))

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def clean(self) -> bool:
        """The run finished and nothing was rejected (``sync`` exits 1 otherwise)."""
        return self.ok and self.rejected == 0

    @property
    def feed(self) -> str | None:
        """The feed's name, when this source is a feed (``feed:NAME``)."""
        kind, sep, name = self.partner.partition(":")
        return name if sep and kind == "feed" else None

    @property
    def received(self) -> int:
        return self.new + self.updated + self.duplicates + self.rejected + self.echoes + \
            self.corrected

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "feed": self.feed, "new": self.new,
                "updated": self.updated, "corrected": self.corrected,
                "duplicates": self.duplicates, "rejected": self.rejected,
                "echoes": self.echoes, "pages": self.pages, "error": self.error,
                "rejections": self.rejections, "warnings": self.warnings,
                "key_rotated": self.key_rotated}


@dataclass(frozen=True, slots=True)
class _Page:
    objects: list[Any]
    more: bool
    next: str | None
    last_added: int | None

    @classmethod
    def from_reply(cls, reply: Reply) -> _Page:
        envelope = reply.json()
        objects = envelope.get("objects", [])
        more, token = envelope.get("more", False), envelope.get("next")
        if not isinstance(objects, list) or not isinstance(more, bool):
            raise PartnerProtocolError(reply.partner, "answered with a malformed TAXII "
                                       "envelope ('objects' must be a list, 'more' a boolean)")
        if token is not None and (not isinstance(token, str) or len(token) > 4096):
            raise PartnerProtocolError(reply.partner, "answered with a malformed 'next' token")
        return cls(objects, more, token, _date_added_last(reply))


def _date_added_last(reply: Reply) -> int | None:
    raw = reply.headers.get("x-taxii-date-added-last")
    if raw is None:
        return None
    try:
        return micros_from_stix(raw.strip(), field="X-TAXII-Date-Added-Last")
    except DetenteError:
        raise PartnerProtocolError(reply.partner, f"sent a malformed X-TAXII-Date-Added-Last "
                                   f"{raw[:60]!r}") from None


# -- (1)-(2) discovery --------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Found:
    """A partner's API root and one of its collections, as absolute URLs."""

    root: str
    collection: str


def discover_collection(client: TaxiiClient, alias: str, need: str = "can_read") -> Found:
    """The partner's API root and its collection ``alias`` (by alias, else by title)
    that grants us ``need`` (``can_read`` or ``can_write``)."""
    found = client.get(client.url("/taxii2/")).json()                         # (1)
    root = found.get("default") or next(iter(found.get("api_roots") or []), None)
    if not isinstance(root, str):
        raise PartnerProtocolError(client.name, "its TAXII discovery names no API root")
    root_url = _same_origin(client, urljoin(client.url("/taxii2/"), root)).rstrip("/") + "/"
    listing = client.get(urljoin(root_url, "collections/")).json()           # (2)
    collections = listing.get("collections") or []
    if not isinstance(collections, list):
        raise PartnerProtocolError(client.name, "its collections list is malformed")
    for key in ("alias", "title"):
        for c in collections:
            if isinstance(c, dict) and str(c.get(key, "")).lower() == alias \
                    and isinstance(c.get("id"), str) and c.get(need, True) is not False:
                return Found(root_url, urljoin(root_url, f"collections/{c['id']}/"))
    raise PartnerProtocolError(client.name, f"serves no collection {alias!r} for us",
                               hint="is it a detente node, and does it know us as a partner?")


def _same_origin(client: TaxiiClient, url: str) -> str:
    ours, theirs = urlsplit(client.base_url), urlsplit(url)
    if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
        raise PartnerProtocolError(client.name, f"its API root {url!r} is not on its own "
                                   f"server ({client.base_url})")
    return url


# -- one partner ---------------------------------------------------------------------------
class _Puller:
    """Pages one collection into the intake path.  A partner's pages are followed by
    ``X-TAXII-Date-Added-Last`` (a detente node's ``date_added`` is strictly increasing);
    a feed's by its ``next`` tokens (``follow_next``: other servers give several objects
    one ``date_added``), the cursor then moving to the newest date seen at the end."""

    def __init__(self, node: Node, client: TaxiiClient, summary: PartnerSummary,
                 progress: Progress | None, intake: Intake, *,
                 objects_url: str | None = None, follow_next: bool = False) -> None:
        self.node, self.client, self.summary = node, client, summary
        self.progress = progress
        self.name = client.name
        self.intake = intake
        self.objects_url = objects_url
        self.follow_next = follow_next
        self.newest: int | None = None
        self.last_page: frozenset[tuple[str, str]] = frozenset()

    def run(self) -> None:
        objects_url = self.objects_url or \
            discover_collection(self.client, RELEASES).collection + "objects/"
        cursor = load_cursor(self.node.store.engine, self.name)                 # (3)
        self.newest = cursor.added_after
        seen: set[str] = set()
        # one page in flight while the previous one is stored: its cursor is known as soon
        # as the previous page arrives; the cursor is still saved only after each commit
        timings, clock = self.summary.timings, time.perf_counter
        with ThreadPoolExecutor(1, thread_name_prefix=f"sync-{self.name}") as pool:
            pending = pool.submit(self._fetch, objects_url, cursor)
            for _ in range(self.client.limits.max_pages):
                start = clock()
                reply, cursor = pending.result()                                # (4)
                fetched = clock()
                page = _Page.from_reply(reply)
                self._check_progress(page, cursor, seen)                        # (5)
                cursor = self._advance(cursor, page)
                if page.more:
                    pending = pool.submit(self._fetch, objects_url, cursor)
                intake = stored = clock()
                if page.objects:
                    cpu = time.thread_time()
                    self._intake(page.objects, reply.evidence)                  # (6)
                    stored = clock()
                    timings["intake_cpu_s"] += time.thread_time() - cpu
                    batch_done()
                save_cursor(self.node.store.engine, cursor)                     # (7)
                self.summary.pages += 1
                if self.progress is not None:
                    self.progress(self.name, self.summary.received, not page.more)
                timings["wait_s"] += fetched - start
                timings["intake_s"] += stored - intake
                timings["pager_s"] += clock() - fetched - (stored - intake)
                if not page.more:
                    return
        raise PartnerProtocolError(self.name, f"still answered more: true after "
                                   f"{self.client.limits.max_pages} pages; stopped",
                                   hint="the next sync continues from the last page")

    def _fetch(self, url: str, cursor: Cursor) -> tuple[Reply, Cursor]:
        try:
            return self.client.get(url, params=_params(cursor, self.client.limits)), cursor
        except PartnerRefusedError:
            if cursor.next_token is None:
                raise
            cursor = cursor.advanced(cursor.added_after, None)  # a stale token: start over
            return self.client.get(url, params=_params(cursor, self.client.limits)), cursor

    def _check_progress(self, page: _Page, cursor: Cursor, seen: set[str]) -> None:
        if not page.more:
            return
        if self.follow_next:
            self._check_feed_progress(page, cursor, seen)
            return
        if page.last_added is not None:
            if cursor.added_after is not None and page.last_added <= cursor.added_after:
                raise PartnerProtocolError(self.name, "answered more: true without progress "
                                           "(X-TAXII-Date-Added-Last did not advance)")
        elif page.next is None:
            raise PartnerProtocolError(self.name, "answered more: true with neither 'next' "
                                       "nor X-TAXII-Date-Added-Last")
        elif page.next in seen:
            raise PartnerProtocolError(self.name, "answered more: true with a 'next' token "
                                       "it had already given (endless paging)")
        if page.next is not None:
            seen.add(page.next)

    def _check_feed_progress(self, page: _Page, cursor: Cursor, seen: set[str]) -> None:
        """A feed may give the same ``next`` token for a whole paging session (medallion
        does): progress is that each page brings objects, and not the ones just sent;
        endless paging with fresh objects is bounded by ``max_pages`` and the deadline."""
        if not page.objects:
            raise PartnerProtocolError(self.name, "answered more: true with an empty page "
                                       "(endless paging)")
        keys = frozenset(_guess_key(o) for o in page.objects)
        if keys == self.last_page:
            raise PartnerProtocolError(self.name, "answered more: true with the page it had "
                                       "just sent (endless paging)")
        self.last_page = keys
        if page.next is not None:
            return
        if page.last_added is None:
            raise PartnerProtocolError(self.name, "answered more: true with neither 'next' "
                                       "nor X-TAXII-Date-Added-Last")
        if cursor.added_after is not None and page.last_added <= cursor.added_after:
            raise PartnerProtocolError(self.name, "answered more: true without progress "
                                       "(X-TAXII-Date-Added-Last did not advance)")

    def _advance(self, cursor: Cursor, page: _Page) -> Cursor:
        if not self.follow_next:
            return _advance(cursor, page)
        if page.last_added is not None:
            self.newest = max(page.last_added, self.newest or 0)
        if page.more and page.next is not None:  # the token continues from the same start
            return cursor.advanced(cursor.added_after, page.next)
        if page.more:
            return cursor.advanced(page.last_added, None)
        return cursor.advanced(self.newest, None)

    # -- (6) intake -------------------------------------------------------------------------
    def _intake(self, objects: list[Any], evidence: str) -> None:
        result = self.intake.receive(
            objects, signature=None if self.follow_next else evidence)
        _tally(self.summary, result)


def _guess_key(obj: Any) -> tuple[str, str]:
    if not isinstance(obj, dict):
        return ("", repr(obj)[:100])
    return (str(obj.get("id"))[:300], str(obj.get("modified") or obj.get("created"))[:64])


def _tally(s: PartnerSummary, result: IntakeResult) -> None:
    s.new += result.new
    s.updated += result.updated
    s.corrected += result.corrected
    s.duplicates += result.duplicates
    s.echoes += result.echoes
    s.rejected += result.rejected
    for f in result.failures[: max(0, MAX_REJECTIONS - len(s.rejections))]:
        s.rejections.append(f"{f.id}: {f.message or 'rejected'}")


def _params(cursor: Cursor, limits: Limits) -> dict[str, str]:
    params = {"limit": str(limits.page_size), "match[version]": "all"}
    if cursor.added_after is not None:
        params["added_after"] = format_micros(cursor.added_after)
    if cursor.next_token is not None:
        params["next"] = cursor.next_token
    return params


def _advance(cursor: Cursor, page: _Page) -> Cursor:
    if page.last_added is not None:
        return cursor.advanced(max(page.last_added, cursor.added_after or 0), None)
    if page.more and page.next is not None:
        return cursor.advanced(cursor.added_after, page.next)
    return cursor.advanced(cursor.added_after, None)


def _witness(node: Node, partner: Partner, limits: Limits, summary: PartnerSummary) -> None:
    """Witness the partner's ledger after each pull: verify its checkpoint is consistent
    with the last one we cosigned, cosign it, and gossip
    (see :mod:`detente.federation.witnessing.witness`)."""
    from detente.federation.http.client import open_partner_client
    from detente.federation.witnessing.witness import witness_partner

    try:
        with open_partner_client(node, partner.name,
                                 timeout_s=limits.request_timeout_s) as http:
            result = witness_partner(node, partner.name, http)
    except DetenteError as exc:
        summary.warnings.append(f"witnessing {partner.name}'s ledger failed: {exc}")
        return
    for problem in [*result.problems,
                    *(f"equivocation evidence {e}" for e in result.equivocations)]:
        summary.warnings.append(f"witnessing {partner.name}'s ledger: {problem}")


# -- public entry points ---------------------------------------------------------------------
def sync_partner(node: Node, partner: str, *, limits: Limits | None = None,
                 progress: Progress | None = None,
                 transport: httpx.BaseTransport | None = None) -> PartnerSummary:
    """Pull one partner's releases; never raises for the partner's faults."""
    summary = PartnerSummary(partner)
    engine = node.store.engine
    try:
        known = node.partners.get(partner)
        try:
            _run(node, known, summary, limits, progress, transport)
        except ResponseSignatureError:
            rotated = _try_rotation(node, known, limits, transport)
            if rotated is None:
                raise
            summary.key_rotated = True
            _run(node, rotated, summary, limits, progress, transport)
    except DetenteError as exc:
        summary.error = str(exc)
    try:
        save_cursor(engine, load_cursor(engine, partner).finished(summary.error))
    except StoreError as exc:
        summary.warnings.append(f"could not record the run: {exc}")
    return summary


def _run(node: Node, partner: Partner, summary: PartnerSummary, limits: Limits | None,
         progress: Progress | None, transport: httpx.BaseTransport | None) -> None:
    trust = (limits or Limits()).trust
    with relaxed_gc(), PartnerClient(node, partner, limits, transport=transport) as client, \
            Intake(node, Source(partner.name, partner.identity_id), trust=trust) as intake:
        _Puller(node, client, summary, progress, intake).run()
    _witness(node, partner, limits or Limits(), summary)


def _try_rotation(node: Node, partner: Partner, limits: Limits | None,
                  transport: httpx.BaseTransport | None) -> Partner | None:
    from detente.federation.exchange.keys import fetch_and_accept

    return fetch_and_accept(node, partner, limits=limits, transport=transport)


def sync_all(node: Node, partners: Sequence[str] | None = None, *,
             limits: Limits | None = None, progress: Progress | None = None,
             transport: httpx.BaseTransport | None = None) -> list[PartnerSummary]:
    """Pull every partner (or those named) in turn; one partner's failure stops only it."""
    names = list(partners) if partners else [p.name for p in node.partners.all()]
    summaries: list[PartnerSummary] = []
    for name in names:
        try:
            summaries.append(sync_partner(node, name, limits=limits, progress=progress,
                                          transport=transport))
        except Exception as exc:  # a bug must not stop the other partners either
            summaries.append(PartnerSummary(name, error=f"partner {name}: internal error: "
                                            f"{type(exc).__name__}: {exc}"))
    return summaries


def sync_forever(node: Node, partners: Sequence[str] | None = None,
                 feeds: Sequence[str] | None = None, *, interval_s: float,
                 limits: Limits | None = None, progress: Progress | None = None,
                 on_round: Callable[[list[PartnerSummary]], None] | None = None,
                 rounds: int | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """``--watch``: sync every ``interval_s`` seconds (``rounds`` times, or until stopped),
    partners then feeds (``feeds``: names, default all; ``partners`` given alone: none);
    trust expiry runs every ``trust_expire_interval_s`` (and at the first round)."""
    from detente.federation.exchange.feeds import sync_sources

    done = 0
    expire_every = float(node.settings["trust_expire_interval_s"])
    last_expiry: float | None = None
    while rounds is None or done < rounds:
        summaries = sync_sources(node, partners, feeds, limits=limits, progress=progress)
        now = time.monotonic()
        if last_expiry is None or now - last_expiry >= expire_every:
            node.trust.expire()
            last_expiry = now
        if on_round is not None:
            on_round(summaries)
        done += 1
        if rounds is None or done < rounds:
            sleep(interval_s)
