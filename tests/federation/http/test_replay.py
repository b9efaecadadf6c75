"""Replayed and forged requests and responses are refused, against a live node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from nacl.signing import SigningKey
from tests.federation.exchange.cluster import Cluster, cluster, indicator, put

from detente.federation.exchange.pull import discover_collection, sync_partner
from detente.federation.http.client import Limits, PartnerClient, ResponseSignatureError
from detente.federation.http.signatures import sign_request

pytestmark = pytest.mark.live

LIMITS = Limits(request_timeout_s=10.0, retries=0, deadline_s=30.0)


class Recording(httpx.HTTPTransport):
    """A transport that keeps every request it sent and every response body it got."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return super().handle_request(request)


class ManInTheMiddle(httpx.HTTPTransport):
    """Replays the first ``objects`` response for later ones, or alters its body."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode
        self.first: tuple[int, list[tuple[bytes, bytes]], bytes] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not request.url.path.endswith("/objects/"):
            return response
        body = response.read()
        headers = list(response.headers.raw)
        if self.mode == "alter":
            doc = orjson.loads(body)
            doc.get("objects", []).append(indicator_forged())
            return httpx.Response(response.status_code, headers=headers,
                                  content=orjson.dumps(doc), request=request)
        if self.first is None:
            self.first = (response.status_code, headers, body)
            return httpx.Response(response.status_code, headers=headers, content=body,
                                  request=request)
        status, old_headers, old_body = self.first
        return httpx.Response(status, headers=old_headers, content=old_body, request=request)


def indicator_forged() -> dict[str, object]:
    return {"type": "indicator", "spec_version": "2.1",
            "id": "indicator--11111111-1111-4111-8111-111111111111",
            "created": "2025-01-01T00:00:00.000Z", "modified": "2025-01-01T00:00:00.000Z",
            "pattern": "[ipv4-addr:value = '6.6.6.6']", "pattern_type": "stix",
            "valid_from": "2025-01-01T00:00:00Z"}


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path) as c:
        us, _fr = c.add("us"), c.add("fr")
        c.link("us", "fr")
        c.link("fr", "us")
        put(us, *(indicator(us, f"192.0.2.{i}") for i in range(1, 4)))
        c.release_for("fr")  # what us's serve releaser does: the page has views to replay
        c.start("us")
        yield c


def _objects_request(c: Cluster) -> httpx.Request:
    fr = c.nodes["fr"]
    recording = Recording()
    with PartnerClient(fr, fr.partners.get("us"), LIMITS, transport=recording) as client:
        url = discover_collection(client, "releases").collection + "objects/"
        client.get(url)
    return recording.sent[-1]


def test_replayed_request_is_refused(pair: Cluster) -> None:
    request = _objects_request(pair)
    with httpx.Client() as raw:
        again = raw.send(httpx.Request(request.method, request.url, headers=request.headers))
    assert again.status_code == 401
    assert "replayed request" in again.text


def test_forged_requests_are_refused(pair: Cluster) -> None:
    request = _objects_request(pair)
    us_url = str(pair.nodes["us"].settings["url"])

    class Stranger:
        name = "fr"
        signing_key = SigningKey.generate()

    forged = httpx.Request("GET", request.url, headers={"Accept": request.headers["accept"]})
    sign_request(forged, Stranger())  # right name, wrong key
    tampered = httpx.Request("GET", us_url + "/taxii2/api1/collections/",
                             headers=request.headers)  # signature of another path
    with httpx.Client() as raw:
        for attempt in (forged, tampered):
            answer = raw.send(attempt)
            assert answer.status_code == 401, answer.text
            assert "signature" in answer.text.lower()


@pytest.mark.parametrize("mode", ["replay", "alter"])
def test_replayed_or_altered_responses_are_refused(pair: Cluster, mode: str) -> None:
    fr = pair.nodes["fr"]
    mitm = ManInTheMiddle(mode)
    with PartnerClient(fr, fr.partners.get("us"), LIMITS, transport=mitm) as client:
        url = discover_collection(client, "releases").collection + "objects/"
        if mode == "replay":
            client.get(url)  # the genuine answer, recorded
        with pytest.raises(ResponseSignatureError, match="partner us: response to GET"):
            client.get(url, params={"limit": "1"})
    summary = sync_partner(fr, "us", limits=LIMITS, transport=ManInTheMiddle("alter"))
    assert summary.error is not None and "signature refused" in summary.error
    assert fr.store.get(indicator_forged()["id"]) is None  # type: ignore[arg-type]
