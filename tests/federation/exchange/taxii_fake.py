"""A TAXII 2.1 server in a function (``httpx.MockTransport``), for feed tests: honest by
default, hostile on request (page size, media type, endless ``more``, repeated tokens).
No socket is opened; the live tests against medallion and a detente node are in
``test_feeds_live.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

TAXII = "application/taxii+json;version=2.1"
BASE = "http://feed.test"
DISCOVERY = f"{BASE}/taxii2/"
CID = "365fed99-08fa-fdcd-a1b3-fb247eb41d01"
PUBLISHER = "identity--8ce3f695-d5a4-4dc8-9e93-a65af453a31a"


def indicator(n: int, *, creator: str | None = PUBLISHER, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.uuid4()}",
        "created": "2025-03-01T10:00:00.000Z", "modified": "2025-03-01T10:00:00.000Z",
        "name": f"feed indicator {n}", "indicator_types": ["malicious-activity"],
        "pattern": f"[ipv4-addr:value = '198.51.100.{n % 250}']", "pattern_type": "stix",
        "valid_from": "2025-01-01T00:00:00Z",
    }
    if creator is not None:
        body["created_by_ref"] = creator
    body.update(extra)
    return body


def _date(i: int) -> str:
    return f"2025-06-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000000Z"


@dataclass
class FakeTaxii:
    """One API root, one collection (plus ``extra_collections``), ``page`` objects a
    page with ``next`` tokens.  Each object gets a ``date_added`` by position (several may
    share one with ``same_date``)."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    page: int = 2
    media: str = TAXII
    same_date: bool = False
    extra_collections: list[dict[str, Any]] = field(default_factory=list)
    #: hostile modes
    endless: bool = False           # more: true forever, a fresh token each time
    repeat_token: bool = False      # more: true with the same token again
    empty_more: bool = False        # more: true with no objects
    oversized: int = 0              # pad each objects page with this many bytes
    root: str = f"{BASE}/api1/"
    requests: list[httpx.Request] = field(default_factory=list)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add(self, *objs: dict[str, Any]) -> None:
        self.objects.extend(objs)

    def _json(self, doc: Any, headers: dict[str, str] | None = None,
              media: str | None = None) -> httpx.Response:
        return httpx.Response(200, content=orjson.dumps(doc),
                              headers={"Content-Type": media or self.media, **(headers or {})})

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/taxii2/":
            return self._json({"title": "fake feed", "default": self.root,
                               "api_roots": [self.root]}, media=TAXII)
        if path == "/api1/":
            return self._json({"title": "api1", "versions": [TAXII],
                               "max_content_length": 10_000_000}, media=TAXII)
        if path == "/api1/collections/":
            return self._json({"collections": [
                {"id": CID, "title": "Indicators", "can_read": True, "can_write": False},
                *self.extra_collections]}, media=TAXII)
        if path == f"/api1/collections/{CID}/objects/":
            return self._objects(request)
        return httpx.Response(404, content=b'{"title": "not found"}',
                              headers={"Content-Type": TAXII})

    def _objects(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        dated = [(0 if self.same_date else i, o) for i, o in enumerate(self.objects)]
        if "added_after" in params:
            after = params["added_after"]
            dated = [(i, o) for i, o in dated if _date(i) > after]
        start = int(params.get("next", "0"))
        if self.repeat_token and start:
            start = 1
        chunk = dated[start:start + self.page]
        more = start + self.page < len(dated)
        doc: dict[str, Any] = {"objects": [o for _, o in chunk]}
        if self.endless:  # fresh objects on every page, forever
            more, chunk = True, [(start + k, indicator(start + k)) for k in range(self.page)]
            doc = {"objects": [o for _, o in chunk]}
        if self.empty_more:
            more, doc = True, {"objects": []}
        if more:
            doc["more"] = True
            doc["next"] = str(start + self.page if not self.repeat_token else 1)
        else:
            doc["more"] = False
        if self.oversized:
            doc["padding"] = "x" * self.oversized
        headers = {}
        if chunk:
            headers = {"X-TAXII-Date-Added-First": _date(chunk[0][0]),
                       "X-TAXII-Date-Added-Last": _date(chunk[-1][0])}
        return self._json(doc, headers)
