"""Many processes, one node (issue 13 item 8): two ``detente serve`` processes on two ports
share one PostgreSQL home, as a load balancer's backends would, and serve it consistently.

Each claim is shown against the other process: a signed request replayed to the other
worker is refused; a PSI budget spent on one is spent on both; a UI session opened on one
works on the other and a logout on one ends it on both; failed logins and failed TAXII
credentials count across both; and the two background releasers, running at once, share
the partners out and never release a (partner, object version) twice nor leave a gap (the
ledger agrees).  ``serve --workers 2`` (uvicorn's workers, one port) starts on the same
home, and a SQLite home refuses ``--workers 2`` with a message that says why.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from tests.conftest import _pg_admin_engine
from tests.federation.fed_fixtures import versioned_indicator
from tests.web.world import csrf_of

from detente.deconflict import Budget, BudgetExceeded, Item
from detente.federation.http.client import open_partner_client
from detente.federation.http.render import TAXII_MEDIA
from detente.federation.http.signatures import NodeAuth
from detente.federation.http.throttle import FailureLimiter
from detente.federation.psi.budgets import BudgetTable
from detente.federation.psi.remote import ItemsSpec, run_query
from detente.node import Node
from detente.release import iter_release_records, view_hash
from detente.release.claims import CLAIM_CLASS
from detente.release.proofs import batch_entries
from detente.stix.validate import validate
from detente.store import Provenance, Query
from detente.web.operators import OperatorBook

pytestmark = [pytest.mark.live, pytest.mark.slow]

OPERATOR, PASSWORD = "alice", "correct horse battery"
RELEASE_TO = ("fr", "de", "it")
N = 2500  # objects stored while both serve; a third get a second version
HEADERS = {"Accept": TAXII_MEDIA}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", "from detente.cli import main; main()", *args]


@dataclass
class Pair:
    us: Node  # the node both processes serve (this test's own handle on its database)
    fr: Node  # a partner node, signing its requests
    ports: tuple[int, int]
    client: tuple[str, str]  # a TAXII client credential of fr's
    procs: list[subprocess.Popen[bytes]]

    def url(self, i: int, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[i]}{path}"


@pytest.fixture(scope="module")
def pg_home_url(pg_server: str) -> Iterator[str]:
    name = "detente_workers_" + secrets.token_hex(6)
    admin = _pg_admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield f"{pg_server.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.HTTPError:
            assert time.monotonic() < deadline, "detente serve did not start within 60 s"
            time.sleep(0.1)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, pg_home_url: str) -> Iterator[Pair]:
    tmp = tmp_path_factory.mktemp("workers")
    ports = (_free_port(), _free_port())
    us = Node.init(tmp / "us", "us", store_url=pg_home_url, url=f"http://127.0.0.1:{ports[0]}",
                   communities="coalition")
    fr = Node.init(tmp / "fr", "fr", url="http://127.0.0.1:9", communities="coalition")
    us.partners.add("fr", url="http://127.0.0.1:9", public_key=fr.public_key_b64, tier=3,
                    communities=frozenset({"coalition"}), identity_id=fr.identity_id)
    fr.partners.add("us", url=str(us.settings["url"]), public_key=us.public_key_b64, tier=3,
                    communities=frozenset({"coalition"}), identity_id=us.identity_id)
    for name in RELEASE_TO[1:]:
        key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
        us.partners.add(name, url="http://127.0.0.1:9", public_key=key, tier=3,
                        communities=frozenset({"coalition"}))
    OperatorBook(us.store.engine).add(OPERATOR, PASSWORD)
    client, secret = us.partners.add_client("cli", "fr")
    # something to deconflict against, and a budget of two queries a day for fr
    us.store.put_many([validate({"type": "ipv4-addr", "spec_version": "2.1",
                                 "id": f"ipv4-addr--{uuid.uuid4()}", "value": f"192.0.2.{i}"})
                       for i in range(1, 21)], Provenance())
    BudgetTable(us.store.engine).set("fr", Budget(queries_per_day=2))
    procs = [subprocess.Popen(_cli("serve", "--home", str(tmp / "us"), "--host", "127.0.0.1",
                                   "--port", str(port)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for port in ports]
    p = Pair(us, fr, ports, (client.user, secret), procs)
    try:
        for i, proc in enumerate(procs):
            _wait_up(p.url(i, "/login"), proc)
        yield p
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
        us.close()
        fr.close()


def test_a_signed_request_replayed_to_the_other_worker_is_refused(pair: Pair) -> None:
    sent: list[httpx.Request] = []
    auth = NodeAuth(pair.fr, pair.fr.partners.get("us"))
    with httpx.Client(auth=auth, headers=HEADERS,
                      event_hooks={"request": [sent.append]}) as signed:
        assert signed.get(pair.url(0, "/taxii2/")).status_code == 200
    original = sent[-1]
    assert "signature" in original.headers
    # the same bytes (Host, nonce, signature and all) to the other process
    replayed = httpx.get(pair.url(1, "/taxii2/"), headers=dict(original.headers))
    assert replayed.status_code == 401
    assert "replayed request" in replayed.text
    # a fresh signature is served by that process too
    with httpx.Client(auth=auth, headers=HEADERS) as signed:
        assert signed.get(pair.url(1, "/taxii2/")).status_code == 200


def test_a_psi_budget_spent_on_one_worker_is_spent_on_both(pair: Pair) -> None:
    spec = ItemsSpec("observables", (Item("ipv4-addr", "192.0.2.7"),
                                     Item("ipv4-addr", "203.0.113.1")))
    for i in (0, 1):  # one query to each process: the budget of two is used up
        with open_partner_client(pair.fr, "us", url=pair.url(i)) as http:
            assert run_query(pair.fr, "us", "intersection", spec, client=http).count == 1
    for i in (0, 1):
        with open_partner_client(pair.fr, "us", url=pair.url(i)) as http, \
                pytest.raises(BudgetExceeded, match="queries for today"):
            run_query(pair.fr, "us", "intersection", spec, client=http)


def _login(base: str, password: str = PASSWORD) -> httpx.Response:
    with httpx.Client(base_url=base) as c:
        page = c.get("/login")
        return c.post("/login", data={"name": OPERATOR, "password": password, "next": "/",
                                      "csrf_token": csrf_of(page.text)})


def test_a_ui_session_is_one_session_on_both_workers(pair: Pair) -> None:
    r = _login(pair.url(0))
    assert r.status_code == 303
    cookies = {"detente_session": r.cookies["detente_session"]}
    for i in (0, 1):
        assert httpx.get(pair.url(i, "/"), cookies=cookies).status_code == 200
    page = httpx.get(pair.url(1, "/ledger"), cookies=cookies)
    logout = httpx.post(pair.url(1, "/logout"), cookies=cookies,
                        data={"csrf_token": csrf_of(page.text)})
    assert logout.status_code == 303
    for i in (0, 1):  # logged out on the second: gone on the first as well
        gone = httpx.get(pair.url(i, "/"), cookies=cookies)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/login")


def test_failed_logins_and_credentials_count_across_workers(pair: Pair) -> None:
    users = FailureLimiter(pair.us.store.engine, scope="web-user")
    for i in (0, 0, 0, 1, 1):  # five wrong passwords, three on one process, two on the other
        assert _login(pair.url(i), "not the password").status_code == 401
    assert users.failures(OPERATOR) == 5
    for i in (0, 1):  # even the right one now waits, on either process
        refused = _login(pair.url(i))
        assert refused.status_code == 429 and "too many failed logins" in refused.text
    # TAXII Basic credentials: ten wrong secrets over both, then both refuse unhashed
    user = pair.client[0]
    for n in range(10):
        r = httpx.get(pair.url(n % 2, "/taxii2/"), headers=HEADERS, auth=(user, f"bad-{n}"))
        assert r.status_code == 401
    for i in (0, 1):
        r = httpx.get(pair.url(i, "/taxii2/"), headers=HEADERS, auth=(user, "bad-again"))
        assert r.status_code == 429
    assert FailureLimiter(pair.us.store.engine).failures("127.0.0.1") == 10


def _claim_holders(engine: sa.Engine) -> set[int]:
    """Processes holding release claims in this test's database (pg_locks lists the whole
    server's: another test's releasers, run alongside under xdist, are not ours)."""
    with engine.connect() as conn:
        return {int(r[0]) for r in conn.execute(sa.text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = :c "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"c": CLAIM_CLASS})}


def test_two_releasers_never_release_twice_and_leave_no_gap(pair: Pair) -> None:
    us = pair.us
    first = [validate(versioned_indicator(i, 0, 1)) for i in range(N)]
    for start in range(0, N, 500):
        us.store.put_many(first[start:start + 500], Provenance())
    second = [validate(versioned_indicator(i, 1, 1)) for i in range(0, N, 3)]
    us.store.put_many(second, Provenance())
    last = us.store.last_added()
    # both processes' background releasers catch the three partners up (bounded wait);
    # who holds a claim is sampled meanwhile
    holders: set[int] = set()
    deadline = time.monotonic() + 300
    while True:
        holders |= _claim_holders(us.store.engine)
        cursors = us.releaser.cursors()
        if all(cursors.get(n) == last for n in RELEASE_TO):
            break
        assert all(p.poll() is None for p in pair.procs), "a serve process died"
        assert time.monotonic() < deadline, f"not caught up within 300 s: {cursors}"
        time.sleep(0.02)
    assert len(holders) == 2, f"claims held by {holders}: both releasers took turns"
    records = list(iter_release_records(us.store.engine))
    keys = Counter((r.partner, r.object_id, r.version) for r in records)
    assert max(keys.values()) == 1, "a version was released twice"
    # every release is in the release batch its row names, once
    entries = {}
    for i, batch in us.ledger.entries():
        if batch.kind == "release-batch":
            entries.update({seq: (i, e) for seq, e in
                            batch_entries(us.store.engine, us.ledger, i)[1]})
    assert len(entries) == len(records), "ledger release entries and release rows differ"
    for r in records:
        assert r.ledger_index is not None
        index, e = entries[r.released_at]
        assert index == r.ledger_index
        assert (e.partner, e.object_id, e.object_version, e.view_hash) == (
            r.partner, r.object_id, r.version, view_hash(r.view_bytes))
    versions = list(us.store.iter_all(Query(versions=("all",))))
    for name in RELEASE_TO:
        partner = us.partners.get(name)
        allowed = {(o.id, o.version) for o in versions if us.releaser.decide(o, partner).allowed}
        released = {(r.object_id, r.version) for r in records if r.partner == name}
        assert released == allowed, f"{name}: released != allowed (a gap or too much)"
        assert len(released) >= N * 4 // 5


def test_uvicorn_workers_serve_the_same_home(pair: Pair, tmp_path: Path) -> None:
    """``serve --workers 2``: two uvicorn processes on one port, both answering."""
    port = _free_port()
    proc = subprocess.Popen(_cli("serve", "--home", str(pair.us.home), "--host", "127.0.0.1",
                                 "--port", str(port), "--workers", "2"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_up(f"http://127.0.0.1:{port}/login", proc)
        r = _login(f"http://127.0.0.1:{port}")
        # the login limit test may have used up alice's attempts: refused alike, never 500
        assert r.status_code in (303, 429)
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                  text=True, check=False).stdout.split()
        assert len(children) >= 3, children  # two workers and one releaser process
        releasers = [c for c in children
                     if b"releaser_main" in Path(f"/proc/{c}/cmdline").read_bytes()]
        assert len(releasers) == 1, "serve --workers 2 runs one releaser for its workers"
        for worker in set(children) - set(releasers):  # the workers run none of their own
            assert not subprocess.run(["pgrep", "-P", worker], capture_output=True,
                                      text=True, check=False).stdout.split()
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert b"Traceback" not in err, err.decode()[-2000:]


def test_a_sqlite_home_refuses_more_than_one_worker(tmp_path: Path) -> None:
    Node.init(tmp_path / "solo", "solo").close()
    done = subprocess.run(_cli("serve", "--home", str(tmp_path / "solo"), "--workers", "2"),
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2
    message = re.sub(r"\s+", " ", done.stderr)
    assert "--workers 2 needs a PostgreSQL home" in message
    assert "SQLite" in message and "detente init --store postgresql://" in message
