"""Push to a live partner's inbox (status followed to completion), and the CLI: summary,
JSON, exit codes, cursors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from tests.cli.helpers import run
from tests.federation.exchange.cluster import (
    Cluster,
    cluster,
    indicator,
    keys_from,
    put,
    released_to,
)

from detente.federation.exchange.push import push_to_partner
from detente.federation.http.client import Limits

pytestmark = pytest.mark.live


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Cluster]:
    with cluster(tmp_path) as c:
        us, _fr = c.add("us"), c.add("fr")
        c.link("us", "fr")
        c.link("fr", "us")
        put(us, *(indicator(us, f"192.0.2.{i}") for i in range(1, 6)))
        put(us, indicator(us, "192.0.2.200", "red"))  # never released
        c.start("us")
        c.start("fr")
        yield c


def test_push_sends_exactly_the_views_and_follows_status(pair: Cluster) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    summary = push_to_partner(us, "fr", limits=Limits(page_size=2))
    assert summary.ok, summary.error
    assert summary.pushed == summary.succeeded == 5 and summary.failed == 0
    assert keys_from(fr, "us") == released_to(us, "fr")
    again = push_to_partner(us, "fr")  # the push cursor: nothing new to send
    assert again.ok and again.pushed == 0
    put(us, indicator(us, "192.0.2.77"))
    third = push_to_partner(us, "fr")
    assert third.ok and third.pushed == third.succeeded == 1


def test_push_refused_by_a_partner_that_does_not_know_us(pair: Cluster) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    fr.partners.remove("us")
    summary = push_to_partner(us, "fr", limits=Limits(retries=0))
    assert summary.error is not None and summary.error.startswith("partner fr: ")
    assert "HTTP 401" in summary.error


def test_cli_sync_push_and_status(pair: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    us, fr = pair.nodes["us"], pair.nodes["fr"]
    pair.release_for("fr")  # us's serve releaser; fr's pull never waits for it
    out = run(capsys, "sync", "--home", str(fr.home), "--json")
    assert out.code == 0, out.err
    (row,) = orjson.loads(out.out)
    assert row["partner"] == "us" and row["new"] == 5 and row["error"] is None
    table = run(capsys, "sync", "--home", str(fr.home))
    assert table.code == 0 and "duplicates" in table.out
    status = run(capsys, "sync", "--home", str(fr.home), "--status")
    assert status.code == 0 and "pull" in status.out
    pushed = run(capsys, "push", "fr", "--home", str(us.home), "--since",
                 "2000-01-01T00:00:00Z")
    assert pushed.code == 0 and "5 accepted" in pushed.out, pushed.err
    fr.partners.update("us", url="http://127.0.0.1:9")  # nothing listens on the discard port
    failed = run(capsys, "sync", "--home", str(fr.home), "--retries", "0", "--timeout", "2")
    assert failed.code == 1 and "partner us:" in failed.err


def test_cli_set_url(pair: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    fr = pair.nodes["fr"]
    bad = run(capsys, "partner", "set-url", "us", "ftp://x", "--home", str(fr.home))
    assert bad.code == 2
    ok = run(capsys, "partner", "set-url", "us", "http://127.0.0.1:1/", "--home", str(fr.home))
    assert ok.code == 0 and fr.partners.get("us").url == "http://127.0.0.1:1"


def test_watch_runs_rounds_until_told(pair: Cluster) -> None:
    from detente.federation.exchange.pull import sync_forever

    fr = pair.nodes["fr"]
    pair.release_for("fr")
    rounds: list[list[int]] = []
    pauses: list[float] = []
    sync_forever(fr, interval_s=7.0, rounds=2, sleep=pauses.append,
                 on_round=lambda s: rounds.append([x.new for x in s]))
    assert rounds == [[5], [0]] and pauses == [7.0]
