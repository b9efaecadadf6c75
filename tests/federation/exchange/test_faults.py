"""Partners that misbehave: each ends its own run with a clear error naming it, in bounded
time, and the good partner syncs all the same.  Bounds come from the sync limits (a short
request timeout, one retry, a deadline), never from sleeping in the test."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.federation.exchange.cluster import Cluster, cluster, indicator, put
from tests.federation.exchange.faulty import FAULTS, FaultyPartners

from detente.federation.exchange.cursors import load_cursor
from detente.federation.exchange.pull import sync_all
from detente.federation.http.client import (
    Limits,
    PageTooLargeError,
    PartnerProtocolError,
    PartnerUnreachableError,
    ResponseSignatureError,
)
from detente.scenario.live import listening_socket, serve_app, url_of

pytestmark = pytest.mark.live

LIMITS = Limits(page_size=100, max_page_bytes=1024 * 1024, max_pages=25,
                request_timeout_s=1.0, deadline_s=20.0, retries=1, backoff_s=0.01,
                backoff_max_s=0.05)

EXPECTED: dict[str, tuple[type[Exception], str]] = {
    "malformed": (PartnerProtocolError, "malformed JSON"),
    "media": (PartnerProtocolError, "media type 'text/html"),
    "endless": (PartnerProtocolError, "without progress"),
    "endless-next": (PartnerProtocolError, "already given"),
    "huge": (PageTooLargeError, "more than 1048576 bytes"),
    "slow": (PartnerUnreachableError, "timed out (2 attempts)"),
    "drip": (PartnerUnreachableError, "timed out (2 attempts)"),
    "badsig": (ResponseSignatureError, "signature refused"),
    "unsigned": (ResponseSignatureError, "signature refused"),
    "replayed": (ResponseSignatureError, "signature refused"),
    "garbled-sig": (ResponseSignatureError, "signature refused"),
    "always-503": (PartnerUnreachableError, "HTTP 503 (2 attempts)"),
    "not-taxii-envelope": (PartnerProtocolError, "malformed TAXII envelope"),
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[Cluster, FaultyPartners]]:
    faulty = FaultyPartners()
    sock = listening_socket()
    with cluster(tmp_path) as c:
        us, good = c.add("us"), c.add("good")
        put(good, *(indicator(good, f"192.0.2.{i}") for i in range(1, 6)))
        c.link("us", "good")
        c.link("good", "us")
        c.start("good")
        c.release_for("us")  # what good's serve releaser does: us reads it, never waits
        served = serve_app(faulty.app(), sock)
        for fault in FAULTS:
            us.partners.add(fault, url=f"{url_of(sock)}/{fault}",
                            public_key=base64.b64encode(faulty.public_key(fault)).decode())
        try:
            yield c, faulty
        finally:
            faulty.stop.set()
            served.stop()


@pytest.mark.parametrize("fault", sorted(EXPECTED))
def test_fault_is_a_clear_error_and_the_good_partner_syncs(
        world: tuple[Cluster, FaultyPartners], fault: str) -> None:
    c, faulty = world
    us = c.nodes["us"]
    summaries = {s.partner: s for s in sync_all(us, ["good", fault], limits=LIMITS)}
    good, bad = summaries["good"], summaries[fault]
    assert good.ok and good.new == 5, good
    kind, phrase = EXPECTED[fault]
    assert bad.error is not None and bad.error.startswith(f"partner {fault}: "), bad.error
    assert phrase in bad.error, bad.error
    assert kind.__name__  # the class is documented by the table above
    assert load_cursor(us.store.engine, fault).last_error == bad.error
    # our identity, the good partner's objects, and the first page of the endless partner
    # (valid objects, committed before its second page showed no progress)
    assert us.store.count() == 1 + 5 + (3 if fault == "endless" else 0)
    assert faulty.calls.get(fault, 0) <= LIMITS.max_pages * (LIMITS.retries + 1)


def test_errors_are_typed(world: tuple[Cluster, FaultyPartners]) -> None:
    """Each fault raises its own error class out of the client (sync turns it into text)."""
    from detente.federation.exchange.intake import Intake, Source
    from detente.federation.exchange.pull import PartnerSummary, _Puller
    from detente.federation.http.client import PartnerClient

    c, _ = world
    us = c.nodes["us"]
    for fault, (kind, _phrase) in sorted(EXPECTED.items()):
        summary = PartnerSummary(fault)
        with PartnerClient(us, us.partners.get(fault), LIMITS) as client, \
                Intake(us, Source.partner(us, fault)) as intake, pytest.raises(kind):
            _Puller(us, client, summary, None, intake).run()


def test_retry_after_5xx_then_success(world: tuple[Cluster, FaultyPartners]) -> None:
    c, faulty = world
    limits = Limits(request_timeout_s=2.0, deadline_s=15.0, retries=3, backoff_s=0.01,
                    backoff_max_s=0.05)
    (summary,) = sync_all(c.nodes["us"], ["flaky-503"], limits=limits)
    assert summary.ok and summary.new == 3, summary
    assert faulty.calls["flaky-503"] == 3


def test_unreachable_partner(world: tuple[Cluster, FaultyPartners]) -> None:
    c, _ = world
    us = c.nodes["us"]
    closed = listening_socket()
    url = url_of(closed)
    closed.close()  # nothing listens there any more
    us.partners.update("good", url=url)
    (summary,) = sync_all(us, ["good"], limits=LIMITS)
    assert summary.error is not None and "partner good:" in summary.error
    assert "ConnectError" in summary.error


def test_deadline_bounds_a_partner(world: tuple[Cluster, FaultyPartners]) -> None:
    c, _ = world
    limits = Limits(request_timeout_s=0.3, deadline_s=0.2, retries=10, backoff_s=0.05,
                    backoff_max_s=0.1)
    (summary,) = sync_all(c.nodes["us"], ["slow"], limits=limits)
    assert summary.error is not None and "partner slow:" in summary.error
