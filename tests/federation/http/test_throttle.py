"""Password attempts are counted in the database *before* hashing: concurrent attempts on
any number of threads or processes never run more checks than the budget allows, and a
success gives its attempt back (issue 14 finding 6, issue 13 item 8)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from detente.errors import AuthError
from detente.federation.http import auth
from detente.federation.http.auth import Gate
from detente.federation.http.throttle import (
    FailureLimiter,
    PasswordCheckBusy,
    PasswordChecks,
    PasswordCheckTimeout,
    TooManyFailures,
)
from detente.node import Node
from detente.partners import PartnerBook


def _node(tmp_path: Path, store_url: str) -> Node:
    node = Node.init(tmp_path / "us", "us", store_url=store_url)
    fr = Node.init(tmp_path / "fr", "fr")
    node.partners.add("fr", url="http://127.0.0.1:9", tier=3, public_key=fr.public_key_b64)
    fr.close()
    return node


def test_concurrent_reservations_never_overrun_the_budget(tmp_path: Path,
                                                          store_url: str) -> None:
    node = _node(tmp_path, store_url)
    other = Node.open(tmp_path / "us")
    try:
        # two limiters on two engines: two workers sharing one database
        limiters = [FailureLimiter(node.store.engine, max_failures=7),
                    FailureLimiter(other.store.engine, max_failures=7)]
        granted: list[int] = []
        refused: list[int] = []
        barrier = threading.Barrier(24)

        def attempt(i: int) -> None:
            barrier.wait()
            try:
                limiters[i % 2].reserve("198.51.100.7")
                granted.append(i)
            except TooManyFailures:
                refused.append(i)

        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(24)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(granted) == 7 and len(refused) == 17
        assert limiters[1].failures("198.51.100.7") == 7
        with pytest.raises(TooManyFailures):
            limiters[0].check("198.51.100.7")
        limiters[0].check("198.51.100.8")  # another address is untouched
    finally:
        other.close()
        node.close()


def test_a_flood_of_concurrent_wrong_secrets_hashes_at_most_the_budget(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """40 wrong secrets at once from one address: the check used to come before the count,
    so all 40 passed it and were hashed; now 10 are hashed and 30 refused unhashed."""
    node = _node(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    client, secret = node.partners.add_client("cli", "fr")
    hashed: list[str] = []
    real = PartnerBook.authenticate_client

    def counting(self: PartnerBook, user: str, given: str) -> object:
        hashed.append(given)
        return real(self, user, given)

    monkeypatch.setattr(PartnerBook, "authenticate_client", counting)
    gate = Gate(node)
    gate.failures = FailureLimiter(node.store.engine, clock=lambda: 6_000_030.0)  # one window
    outcomes: list[str] = []
    barrier = threading.Barrier(40)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            gate.client(client.user, f"wrong-{i}", "203.0.113.9")
        except PasswordCheckTimeout:  # counted, but waited too long (a loaded machine)
            outcomes.append("timeout")
        except TooManyFailures:
            outcomes.append("429")
        except AuthError:
            outcomes.append("401")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        # ten attempts counted and let through to a hash (a check that waited past the
        # pool's limit is refused, still counted, and never run if it had not started);
        # thirty refused by the count, unhashed
        assert outcomes.count("401") + outcomes.count("timeout") == 10
        assert outcomes.count("401") <= len(hashed) <= 10
        assert outcomes.count("429") == 30
        assert gate.failures.failures("203.0.113.9") == 10
        # the right secret waits from this address, and works from another one
        with pytest.raises(TooManyFailures):
            gate.client(client.user, secret, "203.0.113.9")
        assert gate.client(client.user, secret, "203.0.113.10").name == "cli"
    finally:
        node.close()


def test_a_success_gives_its_attempt_back_and_the_cache_follows_removal(
        tmp_path: Path) -> None:
    node = _node(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        client, secret = node.partners.add_client("cli", "fr")
        gate = Gate(node)
        for _ in range(3):
            gate._clients.clear()  # no cache: each one is hashed
            assert gate.client(client.user, secret, "192.0.2.1").name == "cli"
        assert gate.failures.failures("192.0.2.1") == 0
        with pytest.raises(AuthError):
            gate.client(client.user, "wrong", "192.0.2.1")
        assert gate.failures.failures("192.0.2.1") == 1
        # a cached credential removed meanwhile (by any worker) is refused at once
        assert gate.client(client.user, secret, "192.0.2.1").name == "cli"
        other = Node.open(tmp_path / "us")
        other.partners.remove_client("cli")
        other.close()
        with pytest.raises(AuthError):
            gate.client(client.user, secret, "192.0.2.1")
    finally:
        node.close()


def test_a_credential_in_use_is_hashed_once_and_an_idle_one_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A busy client pays argon2 once, not every TTL (it did every 30 s: the p99 of a
    page in bench/hub.py); idle longer than the TTL, it is checked again."""
    node = _node(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    try:
        client, secret = node.partners.add_client("cli", "fr")
        gate = Gate(node)
        clock = [1000.0]
        monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: clock[0]))
        hashed: list[str] = []
        check = node.partners.authenticate_client

        def counted(user: str, given: str) -> object:
            hashed.append(user)
            return check(user, given)

        monkeypatch.setattr(node.partners, "authenticate_client", counted)
        for _ in range(6):  # 150 s of use, each request within the TTL of the last
            assert gate.client(client.user, secret, "192.0.2.1").name == "cli"
            clock[0] += auth._CREDENTIAL_TTL_S * 0.8
        assert len(hashed) == 1
        clock[0] += auth._CREDENTIAL_TTL_S  # idle past the TTL
        assert gate.client(client.user, secret, "192.0.2.1").name == "cli"
        assert len(hashed) == 2
        # a wrong secret never rides on the cache of the right one
        with pytest.raises(AuthError):
            gate.client(client.user, secret + "x", "192.0.2.1")
    finally:
        node.close()


def test_password_checks_are_bounded_and_a_timed_out_one_is_never_hashed() -> None:
    checks = PasswordChecks(size=1, waiting=1, wait_s=0.5)
    release = threading.Event()
    ran: list[str] = []

    def slow(name: str) -> str:
        ran.append(name)
        release.wait(30)
        return name

    results: dict[str, object] = {}

    def call(name: str) -> None:
        try:
            results[name] = checks.run(slow, name)
        except TooManyFailures as exc:
            results[name] = exc

    first = threading.Thread(target=call, args=("first",))
    first.start()
    while not ran:  # the pool's one thread is busy with it
        time.sleep(0.01)
    second = threading.Thread(target=call, args=("second",))  # queued behind it
    second.start()
    while checks._queued < 2:
        time.sleep(0.01)
    with pytest.raises(PasswordCheckBusy):  # pool and queue full: refused, never queued
        checks.run(slow, "third")
    second.join(30)  # its wait ran out while queued
    assert isinstance(results["second"], PasswordCheckTimeout)
    release.set()
    first.join(30)
    assert isinstance(results["first"], PasswordCheckTimeout)  # it ran; answer unused
    assert checks.run(slow, "fourth") == "fourth"
    assert ran == ["first", "fourth"]  # the timed-out one was dropped, never run
