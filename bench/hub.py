"""Release at hub scale: a backlog released by `detente serve` while partners read.

One hub (SQLite, then PostgreSQL: ``--backend``) with N indicators and P partners in up to
four policy classes (``(tier, communities)``, docs/policy.md "Policy classes"), ingested
end to end through ``ingest_local`` (what ``detente ingest`` runs), then ``detente serve``
started as a real process: its background releaser catches every partner up while the
partners ask for their first 100-object page over and over.

The classes differ in what they may read (:data:`CLASSES`, :data:`MIX`): indicator ``i``
carries, by ``i % 10``, TLP:CLEAR (2 in 10: every class), TLP:GREEN (4 in 10: the classes
in the hub's community ``coalition``), or TLP:GREEN plus a releasability marking with
``min_tier`` 2 or 3 (2 in 10 each: only the tiers that reach it).  Partner ``i`` is in
class ``i % classes``; with 4 classes, gold reads 100 % of the indicators, silver 80 %,
bronze 60 %, guest (no shared community) 20 %; members of gold and silver also receive the
releasability markings their views reference (support material).

Measured, side by side with the floor (the raw insert rate of one index row per release —
the least any materialised release could cost — in a bare SQLite file with the same
pragmas, or a bare table of the hub's PostgreSQL database, in the same run):

- ingest end to end (objects/s, trust included);
- releases/s during catch-up, and the time until every partner's cursor reaches the last
  stored version (``catchup_s``), checked by paging one member of each class's whole
  collection and counting every partner's live releases: each must hold exactly what its
  class may read;
- p50/p99 of a 100-object TAXII page *while* the catch-up runs, asked in turn with Basic
  auth (each client's first page, which pays the argon2 check of its secret, is printed
  apart) and signed by the partner node (RFC 9421: a nonce is written per request — on
  SQLite to the home's nonces.db, so not behind the releaser's chunk commits);
- peak RSS of ``serve``: the server process and its releaser process (VmHWM of each,
  summed: an upper bound of the pair's peak), each also printed;
- bytes at rest per release (store growth during catch-up / releases).

``--quick``: 100,000 objects x 3 partners (the issue's hub; several minutes on 2 loaded
cores, not one: the catch-up itself is the measurement; 3 classes).  Full: 1,000,000 x 20
in 4 classes.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import free_port
from _stixgen import TLP_CLEAR, TLP_GREEN
from detente.federation.exchange.local import ingest_local
from detente.federation.http.client import PartnerClient, SyncError, open_partner_client
from detente.node import Node
from detente.policy import releasability_marking
from detente.release.schema import releases

HEADERS = {"Accept": "application/taxii+json;version=2.1"}
OBJECTS = "/taxii2/api1/collections/releases/objects/"


#: the policy classes, in the order partners fill them: (name, tier, communities)
CLASSES: tuple[tuple[str, int, frozenset[str]], ...] = (
    ("gold", 3, frozenset({"coalition"})),
    ("silver", 2, frozenset({"coalition"})),
    ("bronze", 1, frozenset({"coalition"})),
    ("guest", 1, frozenset({"observers"})),
)

#: indicator i's marking by i % 10: its TLP, and the min_tier of its releasability marking
MIX: tuple[tuple[str, int | None], ...] = (
    (TLP_CLEAR, None), (TLP_CLEAR, None),
    (TLP_GREEN, None), (TLP_GREEN, None), (TLP_GREEN, None), (TLP_GREEN, None),
    (TLP_GREEN, 2), (TLP_GREEN, 2), (TLP_GREEN, 3), (TLP_GREEN, 3),
)


def tier_markings(creator: str) -> dict[int, dict[str, Any]]:
    """min_tier -> the releasability marking the hub puts on its tiered indicators."""
    return {t: releasability_marking(min_tier=t, created_by_ref=creator) for t in (2, 3)}


def may_read(i: int, tier: int, communities: frozenset[str]) -> bool:
    """Whether a partner of this class may read indicator ``i`` (the mix's intent, stated
    apart from the policy: the catch-up check compares the two)."""
    tlp, min_tier = MIX[i % len(MIX)]
    if tlp == TLP_CLEAR:
        return True
    return "coalition" in communities and (min_tier is None or tier >= min_tier)


def expected(n: int, tier: int, communities: frozenset[str]) -> int:
    """Objects a partner of this class reads once caught up: the indicators it may read,
    and the tier markings those reference (sent with them as support material)."""
    per_cycle = [may_read(j, tier, communities) for j in range(len(MIX))]
    full, rest = divmod(n, len(MIX))
    count = full * sum(per_cycle) + sum(per_cycle[:rest])
    tiers = {MIX[j][1] for j in range(min(n, len(MIX))) if per_cycle[j]} - {None}
    return count + len(tiers)


def indicators(n: int, creator: str, seed: int = 11) -> Any:
    rng = random.Random(seed)
    tiered = tier_markings(creator)
    for t, marking in tiered.items():
        yield f"min_tier {t}", marking
    for i in range(n):
        tlp, min_tier = MIX[i % len(MIX)]
        refs = [tlp] if min_tier is None else [tlp, tiered[min_tier]["id"]]
        yield str(i), {
            "type": "indicator", "spec_version": "2.1",
            "id": f"indicator--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "created_by_ref": creator, "name": f"C2 node {i}",
            "description": "Command and control address seen in the campaign.",
            "indicator_types": ["malicious-activity"], "pattern_type": "stix",
            "pattern": f"[ipv4-addr:value = '10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}']",
            "valid_from": "2026-01-01T00:00:00Z", "confidence": 70, "labels": ["c2"],
            "object_marking_refs": refs}


#: the PostgreSQL server the benchmark makes its databases on (as the tests do)
PG_ADMIN_URL = os.environ.get("DETENTE_TEST_PG",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def db_bytes(home: Path, pg_url: str | None) -> int:
    """Bytes the store takes: the SQLite files, or the PostgreSQL database's size."""
    if pg_url is None:
        return sum(p.stat().st_size for p in home.glob("store.db*"))
    engine = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("CHECKPOINT"))
            return int(conn.execute(sa.text(
                "SELECT pg_database_size(current_database())")).scalar_one())
    finally:
        engine.dispose()


def checkpoint(home: Path, pg_url: str | None) -> None:
    if pg_url is None:
        with sqlite3.connect(home / "store.db") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def new_pg_database() -> str:
    """A fresh database on the PostgreSQL server; its URL."""
    name = f"detente_hub_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def vm_hwm_mb(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
        return int(text.split("VmHWM:")[1].split()[0]) / 1024
    except (OSError, IndexError, ValueError):
        return float("nan")


def quantiles(ms: list[float]) -> tuple[float, float]:
    """p50 and p99 (nan when nothing was measured)."""
    lat = sorted(ms)
    if not lat:
        return float("nan"), float("nan")
    return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


def floor_rate(rows: int, tmp: Path, pg_url: str | None = None) -> float:
    """Raw inserts of one index row per release, 500 a transaction, same pragmas and
    indexes as the releases table (partner, seq) and (partner, object, version); on
    PostgreSQL, in a table of the hub's own database."""
    if pg_url is not None:
        return pg_floor_rate(rows, pg_url)
    conn = sqlite3.connect(tmp / "floor.db", isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "cache_size=-65536"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, partner TEXT, object_id TEXT, "
                 "version TEXT)")
    conn.execute("CREATE INDEX r_ps ON r (partner, seq)")
    conn.execute("CREATE INDEX r_po ON r (partner, object_id, version)")
    data = [(i, f"p{i % 3}", f"indicator--{uuid.uuid4()}", "2026-01-01T00:00:00.000Z")
            for i in range(rows)]
    t0 = time.perf_counter()
    for start in range(0, rows, 500):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO r VALUES (?, ?, ?, ?)", data[start:start + 500])
        conn.execute("COMMIT")
    rate = rows / (time.perf_counter() - t0)
    conn.close()
    return rate


def pg_floor_rate(rows: int, pg_url: str) -> float:
    engine = sa.create_engine(pg_url)
    meta = sa.MetaData()
    r = sa.Table("hub_floor", meta, sa.Column("seq", sa.BigInteger, primary_key=True),
                 sa.Column("partner", sa.Text), sa.Column("object_id", sa.Text),
                 sa.Column("version", sa.Text),
                 sa.Index("hub_floor_ps", "partner", "seq"),
                 sa.Index("hub_floor_po", "partner", "object_id", "version"))
    meta.create_all(engine)
    data = [{"seq": i, "partner": f"p{i % 3}", "object_id": f"indicator--{uuid.uuid4()}",
             "version": "2026-01-01T00:00:00.000Z"} for i in range(rows)]
    t0 = time.perf_counter()
    for start in range(0, rows, 500):
        with engine.begin() as conn:
            conn.execute(r.insert(), data[start:start + 500])
    rate = rows / (time.perf_counter() - t0)
    meta.drop_all(engine)
    engine.dispose()
    return rate


def page_all(base: str, auth: tuple[str, str]) -> int:
    """The number of distinct objects a client pages out of its collection (an id twice
    fails: each object is served once, at its latest released version)."""
    seen: set[str] = set()
    params: dict[str, Any] = {"limit": 1000}
    with httpx.Client(base_url=base, headers=HEADERS, timeout=120, auth=auth) as client:
        while True:
            env_ = client.get(OBJECTS, params=params).json()
            for obj in env_.get("objects", []):
                assert obj["id"] not in seen, f"{obj['id']} served twice to {auth[0]}"
                seen.add(obj["id"])
            if not env_.get("more"):
                return len(seen)
            params = {"limit": 1000, "next": env_["next"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 objects x 3 partners")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--partners", type=int, default=None,
                    help="partner i is in policy class i %% classes")
    ap.add_argument("--classes", type=int, default=None, choices=range(1, len(CLASSES) + 1),
                    metavar=f"1-{len(CLASSES)}",
                    help="policy classes the partners fill (default: 3 quick, 4 full)")
    ap.add_argument("--timeout", type=float, default=1800, help="longest catch-up waited")
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both",
                    help="the hub's store (both: SQLite, then PostgreSQL, one RESULT line "
                         "with the PostgreSQL figures prefixed pg_)")
    args = ap.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    np_ = args.partners or (3 if args.quick else 20)
    classes = min(np_, args.classes or (3 if args.quick else 4))
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    fields: list[str] = []
    for backend in backends:
        got = run(n, np_, classes, backend, args.timeout)
        prefix = "pg_" if backend == "postgresql" and len(backends) > 1 else ""
        fields += [f"{prefix}{k}={v}" for k, v in got.items()
                   if not (prefix and k == "backend")]
    print("RESULT hub " + " ".join(fields))


def run(n: int, np_: int, classes: int, backend: str, timeout: float) -> dict[str, str]:
    """One hub on ``backend``: its figures for the RESULT line (printed as it goes)."""
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="detente-hub-"))
    port = free_port()
    home = tmp / "hub"
    pg_url = new_pg_database() if backend == "postgresql" else None
    try:
        return _run(n, np_, classes, timeout, load, tmp, port, home, pg_url)
    finally:
        if pg_url is not None:
            drop_pg_database(pg_url)


def _run(n: int, np_: int, classes: int, timeout: float, load: float, tmp: Path, port: int,
         home: Path, pg_url: str | None) -> dict[str, str]:
    hub = Node.init(home, "hub", url=f"http://127.0.0.1:{port}", communities="coalition",
                    store_url=pg_url)
    creds = []
    others: list[Node] = []  # the partner nodes: they sign their requests
    klass: dict[str, tuple[str, int, frozenset[str]]] = {}  # partner -> its class
    for i in range(np_):
        other = Node.init(tmp / f"p{i}", f"p{i}")
        klass[f"p{i}"] = _, tier, communities = CLASSES[i % classes]
        hub.partners.add(f"p{i}", url=f"http://127.0.0.1:{9000 + i}",
                         public_key=other.public_key_b64, tier=tier,
                         communities=communities, identity_id=other.identity_id)
        other.partners.add("hub", url=f"http://127.0.0.1:{port}",
                           public_key=hub.public_key_b64, tier=2,
                           communities=frozenset({"coalition"}), identity_id=hub.identity_id)
        others.append(other)
        creds.append((f"c{i}", hub.partners.add_client(f"c{i}", f"p{i}")[1]))
    # (1) ingest end to end, the function `detente ingest` runs (trust included)
    t0 = time.perf_counter()
    summary = ingest_local(hub, indicators(n, hub.identity_id))
    ingest_s = time.perf_counter() - t0
    assert summary.stored == n + len(tier_markings(hub.identity_id)), summary.as_dict()
    last = hub.store.last_added()
    hub.close()
    checkpoint(home, pg_url)
    before = db_bytes(home, pg_url)
    # (2) serve: its upkeep thread releases while partners read their first page
    env = {**os.environ, "DETENTE_RELEASE_INTERVAL_S": "1"}
    proc = subprocess.Popen([sys.executable, "-c", "from detente.cli import main; main()",
                             "serve", "--home", str(home), "--port", str(port)],
                            stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    latencies: list[float] = []
    signed: list[float] = []
    first: list[float] = []  # each client's first page: the argon2 check of its secret
    stop = threading.Event()
    peaks: dict[int, float] = {}

    def sample() -> None:
        for pid in [proc.pid, *children(proc.pid)]:
            peaks[pid] = max(peaks.get(pid, 0.0), vm_hwm_mb(pid))

    def signed_page(partner: PartnerClient) -> None:
        t = time.perf_counter()
        try:
            partner.get_reply(OBJECTS, {"limit": 100})
        except SyncError:
            time.sleep(0.05)  # not up yet
            return
        signed.append((time.perf_counter() - t) * 1000)

    def reader() -> None:
        partners = [open_partner_client(o, "hub", timeout_s=60) for o in others]
        with httpx.Client(base_url=base, headers=HEADERS, timeout=60) as client:
            i = 0
            while not stop.is_set():
                if i % 2:  # every other page: a partner node's signed request
                    signed_page(partners[i // 2 % len(partners)])
                    i += 1
                    stop.wait(0.05)
                    continue
                user, secret = creds[i // 2 % len(creds)]
                t = time.perf_counter()
                try:
                    r = client.get(OBJECTS, params={"limit": 100}, auth=(user, secret))
                except httpx.HTTPError:
                    time.sleep(0.05)
                    continue
                i += 1
                if r.status_code == 200:
                    ms = (time.perf_counter() - t) * 1000
                    (latencies if len(first) == len(creds) else first).append(ms)
                stop.wait(0.05)
        for partner in partners:
            partner.close()

    watcher = Node.open(home)
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        while True:
            cursors = watcher.releaser.cursors()
            sample()
            if len(cursors) == np_ and min(cursors.values()) >= (last or 0):
                break
            if time.perf_counter() - started > timeout or proc.poll() is not None:
                raise SystemExit(f"catch-up not done after {timeout:.0f} s "
                                 f"(serve exited: {proc.poll()})")
            time.sleep(0.25)
        catchup_s = time.perf_counter() - started
        stop.set()
        thread.join(30)
        # (3) every partner reads what its class may: page the whole collection of the
        # first member of each class (distinct ids, none twice)
        paged: dict[str, int] = {}
        for i in range(classes):
            paged[CLASSES[i][0]] = page_all(base, creds[i])
        sample()
    finally:
        stop.set()
        proc.terminate()
        proc.wait(30)
    with watcher.store.engine.connect() as conn:
        released = int(conn.execute(sa.select(sa.func.count()).select_from(releases)).scalar()
                       or 0)
        live = {str(p): int(c) for p, c in conn.execute(
            sa.select(releases.c.partner, sa.func.count()).where(
                releases.c.withdrawn.is_(False)).group_by(releases.c.partner))}
    watcher.close()
    for other in others:
        other.close()
    checkpoint(home, pg_url)
    per_release = (db_bytes(home, pg_url) - before) / max(released, 1)
    floor = floor_rate(released, tmp, pg_url)
    rate = released / catchup_s
    p50, p99 = quantiles(latencies)
    s50, s99 = quantiles(signed)
    store = "PostgreSQL" if pg_url else "SQLite"
    print(f"hub n={n:,} partners={np_} store={store} (load average {load:.1f} at start)")
    print(f"detente  ingest end to end: {n / ingest_s:,.0f} objects/s ({ingest_s:.1f} s)")
    print(f"detente  catch-up in serve: {released:,} releases in {catchup_s:.1f} s = "
          f"{rate:,.0f}/s; {classes} classes: "
          + ", ".join(f"{name} ({sum(1 for k in klass.values() if k[0] == name)} partners) "
                      f"paged {got:,} objects" for name, got in paged.items()))
    print(f"detente  100-object page during catch-up: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({len(latencies)} pages, Basic); signed: p50 {s50:.1f} ms, p99 {s99:.1f} ms "
          f"({len(signed)} pages)")
    server = peaks.pop(proc.pid, float("nan"))
    rss = server + sum(peaks.values())
    print(f"detente  first page of each client (argon2): "
          f"{', '.join(f'{ms:.0f}' for ms in first)} ms")
    print(f"detente  serve peak RSS {rss:.0f} MB (server {server:.0f} MB, releaser "
          f"{', '.join(f'{mb:.0f}' for mb in peaks.values()) or 'in-process'} MB); "
          f"{per_release:,.0f} bytes at rest per release")
    print(f"floor    one index row per release (raw {store} inserts): {floor:,.0f}/s; "
          f"detente/floor = {rate / floor:.3f}")
    wrong = {p: (live.get(p, 0), expected(n, k[1], k[2])) for p, k in klass.items()
             if live.get(p, 0) != expected(n, k[1], k[2])}
    assert not wrong, f"live releases (held, expected) differ: {wrong}"
    misread = {name: (got, expected(n, *CLASSES[i][1:])) for i, (name, got)
               in enumerate(paged.items()) if got != expected(n, *CLASSES[i][1:])}
    assert not misread, f"paged (read, expected) differ: {misread}"
    return {"backend": store.lower(), "ingest_e2e_per_s": f"{n / ingest_s:.0f}",
            "releases_per_s": f"{rate:.0f}", "page_p99_ms": f"{p99:.1f}",
            "signed_page_p99_ms": f"{s99:.1f}", "catchup_s": f"{catchup_s:.1f}",
            "serve_rss_mb": f"{rss:.0f}", "bytes_per_release": f"{per_release:.0f}",
            "floor_releases_per_s": f"{floor:.0f}"}


if __name__ == "__main__":
    main()
