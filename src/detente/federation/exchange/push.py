"""Push: our views for a partner, into that partner's ``inbox``.

:func:`push_to_partner`:

  (1) catch the partner's releases up (the release path decides what it may see — push
      sends exactly the views its ``releases`` collection would serve, nothing else);
  (2) discover the partner's API root (its ``max_content_length``) and ``inbox``;
  (3) page through our views for it added after ``since`` (else the push cursor);
  (4) POST them as TAXII envelopes no larger than the partner accepts — signed, and the
      answer verified like any other (:mod:`detente.federation.http.client`);
  (5) follow each status resource until ``complete`` (bounded polls with backoff);
  (6) move the push cursor past the views the partner has acknowledged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import httpx

from detente.errors import DetenteError
from detente.federation.exchange.aliases import INBOX
from detente.federation.exchange.cursors import PUSH, Cursor, load_cursor, save_cursor
from detente.federation.exchange.pull import discover_collection
from detente.federation.http.client import Limits, PartnerClient, PartnerProtocolError, Reply
from detente.node import Node
from detente.release import ReleasedView, read_releases
from detente.store.base import Query

__all__ = ["PushSummary", "push_to_partner"]

_MAX_POLLS = 20
_MAX_REASONS = 20
_ENVELOPE_OVERHEAD = 64


@dataclass
class PushSummary:
    partner: str
    pushed: int = 0
    succeeded: int = 0
    failed: int = 0
    pending: int = 0
    requests: int = 0
    error: str | None = None
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        return {"partner": self.partner, "pushed": self.pushed, "succeeded": self.succeeded,
                "failed": self.failed, "pending": self.pending, "requests": self.requests,
                "error": self.error, "failures": self.failures}


def push_to_partner(node: Node, partner: str, *, since: int | None = None,
                    limits: Limits | None = None, transport: httpx.BaseTransport | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> PushSummary:
    """Push our views for ``partner`` to its inbox; never raises for the partner's faults."""
    summary = PushSummary(partner)
    engine = node.store.engine
    try:
        known = node.partners.get(partner)
        node.releaser.catch_up(known.name)                                         # (1)
        with PartnerClient(node, known, limits, transport=transport, sleep=sleep) as client:
            _Pusher(node, client, summary, sleep).run(since)
    except DetenteError as exc:
        summary.error = str(exc)
    save_cursor(engine, load_cursor(engine, partner, PUSH).finished(summary.error))
    return summary


class _Pusher:
    def __init__(self, node: Node, client: PartnerClient, summary: PushSummary,
                 sleep: Callable[[float], None]) -> None:
        self.node, self.client, self.summary, self.sleep = node, client, summary, sleep

    def run(self, since: int | None) -> None:
        found = discover_collection(self.client, INBOX, need="can_write")        # (2)
        max_bytes = self._max_bytes(found.root)
        cursor = load_cursor(self.node.store.engine, self.client.name, PUSH)
        after = since if since is not None else cursor.added_after
        for batch in _batches(self._views(after), max_bytes):                    # (3)
            reply = self.client.post(found.collection + "objects/", _envelope(batch))  # (4)
            self.summary.requests += 1
            self.summary.pushed += len(batch)
            self._follow(found.root, reply)                                      # (5)
            cursor = Cursor(self.client.name, PUSH, batch[-1].date_added)
            save_cursor(self.node.store.engine, cursor)                          # (6)

    def _max_bytes(self, root: str) -> int:
        info = self.client.get(root).json()
        declared = info.get("max_content_length")
        limit = self.client.limits.max_page_bytes
        if isinstance(declared, int) and not isinstance(declared, bool) and declared > 0:
            limit = min(limit, declared)
        return limit

    def _views(self, after: int | None) -> Iterator[ReleasedView]:
        engine, size = self.node.store.engine, self.client.limits.page_size
        while True:
            query = Query(versions=("all",), added_after=after, limit=size)
            page = read_releases(engine, self.client.name, query, self.node.releaser.views)
            yield from page.views
            if not page.more:
                return
            after = page.cursor

    def _follow(self, root: str, reply: Reply) -> None:
        status = _status(reply)
        for poll in range(_MAX_POLLS):
            if status.get("status") == "complete":
                self._tally(status)
                return
            self.sleep(min(5.0, 0.1 * 2 ** poll))
            url = urljoin(root, f"status/{status.get('id')}/")
            status = _status(self.client.get(url))
        self._tally(status)
        raise PartnerProtocolError(self.client.name, f"status {status.get('id')} still not "
                                   f"complete after {_MAX_POLLS} polls")

    def _tally(self, status: dict[str, Any]) -> None:
        s = self.summary
        s.succeeded += _count(status, "success_count")
        s.failed += _count(status, "failure_count")
        s.pending += _count(status, "pending_count")
        for f in status.get("failures") or []:
            if isinstance(f, dict) and len(s.failures) < _MAX_REASONS:
                s.failures.append(f"{f.get('id')}: {str(f.get('message', 'failed'))[:300]}")


def _status(reply: Reply) -> dict[str, Any]:
    status = reply.json()
    if not isinstance(status.get("id"), str) or not isinstance(status.get("status"), str):
        raise PartnerProtocolError(reply.partner, "answered without a TAXII status resource")
    return status


def _count(status: dict[str, Any], key: str) -> int:
    value = status.get(key, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _batches(views: Iterator[ReleasedView], max_bytes: int) -> Iterator[list[ReleasedView]]:
    batch: list[ReleasedView] = []
    size = _ENVELOPE_OVERHEAD
    for view in views:
        if batch and size + len(view.view) + 1 > max_bytes:
            yield batch
            batch, size = [], _ENVELOPE_OVERHEAD
        batch.append(view)
        size += len(view.view) + 1
    if batch:
        yield batch


def _envelope(batch: list[ReleasedView]) -> bytes:
    return b'{"objects":[' + b",".join(v.view for v in batch) + b"]}"
