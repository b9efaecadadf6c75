"""Search benchmark: p95 latency of `detente search` at scale, beside a LIKE scan.

A store of N objects (1,000,000 full, 100,000 --quick): realistic indicators (IP, domain,
hash, URL patterns, ~700 B), SCOs (IPv4, domain, file with hashes) and named objects
(attack-patterns with ATT&CK ids, malware with aliases and descriptions).  The rows go in
by the raw floor path (orjson + executemany/COPY, as bench/ingest.py's floor) and the index
is built by ``SqlStore.rebuild_search`` — the code that backfills an existing home on open.
Then a fixed mix of queries, each timed through ``SqlStore.find`` — the function
``detente search`` and the Objects page call — 20 results, as the CLI:

  exact observables (IP, IPv6, domain, URL, e-mail, hash), a parent domain shared by a
  quarter of the store, ATT&CK ids, names, aliases, two-word text, a type-filtered search

anchor: the same observable queries as ``body LIKE '%value%'`` over the stored JSON (SQLite,
the obvious implementation without an index), on a sample of the queries.

    python bench/search.py [--quick] [--n N] [--no-pg] [--no-sqlite] [--queries Q]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stixgen import CREATOR, indicator
from detente.store import Find, SqlStore, open_store

PG_ADMIN = os.environ.get("DETENTE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_MALWARE_WORDS = ["loader", "stealer", "wiper", "backdoor", "dropper", "rat", "miner",
                  "ransomware", "botnet", "implant"]


def corpus(n: int, seed: int = 5) -> Iterator[dict[str, Any]]:
    """90% indicators, 7% SCOs, 3% named objects (ATT&CK techniques, malware)."""
    rng = random.Random(seed)
    for i in range(n):
        k = rng.random()
        if k < 0.90:
            yield indicator(rng)
        elif k < 0.97:
            yield _sco(rng)
        else:
            yield _named(rng, i)


def _sco(rng: random.Random) -> dict[str, Any]:
    kind = rng.randrange(3)
    base = {"spec_version": "2.1"}
    if kind == 0:
        value = ".".join(str(rng.randint(1, 254)) for _ in range(4))
        return {"type": "ipv4-addr",
                "id": f"ipv4-addr--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "value": value, **base}
    if kind == 1:
        return {"type": "domain-name",
                "id": f"domain-name--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "value": f"mx{rng.getrandbits(32):x}.mail-example.com", **base}
    return {"type": "file", "id": f"file--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "name": f"invoice-{rng.getrandbits(20)}.pdf.exe",
            "hashes": {"MD5": f"{rng.getrandbits(128):032x}"}, **base}


def _named(rng: random.Random, i: int) -> dict[str, Any]:
    ts = "2025-03-01T00:00:00.000Z"
    if rng.random() < 0.5:
        tid = f"T{1000 + i % 1000}" + (f".{i % 7:03d}" if i % 3 else "")
        return {"type": "attack-pattern", "spec_version": "2.1",
                "id": f"attack-pattern--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                "created": ts, "modified": ts, "created_by_ref": CREATOR,
                "name": f"Technique {i} {rng.choice(_MALWARE_WORDS)} execution",
                "description": "Adversaries may abuse interpreters and scripting to execute "
                               "commands; observed with " + rng.choice(_MALWARE_WORDS),
                "external_references": [{"source_name": "mitre-attack", "external_id": tid}]}
    word = rng.choice(_MALWARE_WORDS)
    return {"type": "malware", "spec_version": "2.1",
            "id": f"malware--{uuid.UUID(int=rng.getrandbits(128), version=4)}",
            "created": ts, "modified": ts, "created_by_ref": CREATOR, "is_family": True,
            "name": f"Zeta{i}{word}", "aliases": [f"zt-{i}", f"{word}-{i}"],
            "description": f"A {word} family seen in campaign {i % 500}."}


def _value(obj: dict[str, Any]) -> str | None:
    """The observable an analyst would paste for this object."""
    pattern = obj.get("pattern")
    if pattern:
        return str(pattern.split("'")[-2])
    if obj.get("value"):
        return str(obj["value"])
    if obj.get("hashes"):
        return str(next(iter(obj["hashes"].values())))
    return None


def load(url: str, n: int) -> tuple[SqlStore, list[dict[str, Any]], float]:
    """Raw floor insert of n objects, then the index built as an existing home's is."""
    store = open_store(url, create=True)
    pg = store.engine.dialect.name == "postgresql"
    cols = ("id, version, type, spec_version, created_by_ref, revoked, is_latest, is_first, "
            "date_added, digest, body, origin")
    sample: list[dict[str, Any]] = []
    rng = random.Random(3)
    added = time.time_ns() // 1000
    t = time.perf_counter()
    with store.transaction() as conn:
        raw = conn.connection.driver_connection
        assert raw is not None
        rows: list[tuple[Any, ...]] = []

        def flush() -> None:
            if pg:
                with raw.cursor() as cur, cur.copy(f"COPY stix_objects ({cols}) FROM STDIN") as cp:
                    for r in rows:
                        cp.write_row(r)
            else:
                cur = raw.cursor()
                cur.executemany(f"INSERT INTO stix_objects ({cols}) VALUES "
                                f"({', '.join(['?'] * 12)})", rows)
                cur.close()
            rows.clear()

        for obj in corpus(n):
            added += 1
            if rng.random() < 2000 / n:
                sample.append(obj)
            body = orjson.dumps(obj)
            rows.append((obj["id"], obj.get("modified", ""), obj["type"], "2.1",
                         obj.get("created_by_ref"), False, True, True, added, b"\0" * 32, body,
                         "local"))
            if len(rows) == 20_000:
                flush()
        flush()
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    store.rebuild_search()
    index_s = time.perf_counter() - t
    if pg:
        with store.engine.connect() as c:
            c.execute(sa.text("ANALYZE"))
            c.commit()
    print(f"  loaded {n:,} objects in {load_s:.0f} s, index built in {index_s:.0f} s "
          f"({n / index_s:,.0f} objects/s)")
    return store, sample, index_s


def queries(sample: list[dict[str, Any]], count: int) -> list[tuple[str, Find]]:
    rng = random.Random(9)
    out: list[tuple[str, Find]] = []
    values = [v for v in (_value(o) for o in sample) if v]
    named = [o for o in sample if o["type"] in ("attack-pattern", "malware")]
    while len(out) < count:
        k = rng.random()
        if k < 0.5 or not named:
            out.append(("observable", Find(text=rng.choice(values), limit=20)))
        elif k < 0.6:
            o = rng.choice(named)
            tid = (o.get("external_references") or [{}])[0].get("external_id")
            out.append(("attack-id", Find(text=tid or o["name"], limit=20)))
        elif k < 0.75:
            o = rng.choice(named)
            out.append(("name", Find(text=o["name"], limit=20)))
        elif k < 0.8:
            o = rng.choice(named)
            alias = (o.get("aliases") or [o["name"]])[0]
            out.append(("alias", Find(text=alias, limit=20)))
        elif k < 0.9:
            out.append(("words", Find(text=rng.choice(["beaconing infected", "command server",
                                                       "campaign reported", "wiper family",
                                                       "scripting interpreters"]), limit=20)))
        elif k < 0.95:
            out.append(("parent-domain", Find(text="example.net", limit=20)))
        else:
            out.append(("typed", Find(text=rng.choice(_MALWARE_WORDS), types=("malware",),
                                      limit=20)))
    # the IPv6 and e-mail kinds are rare in the corpus: one of each, present
    return out


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[18] if len(xs) >= 20 else max(xs)


def time_queries(store: SqlStore, qs: list[tuple[str, Find]]) -> dict[str, list[float]]:
    for _, q in qs[:10]:  # warm the cache as a running node's is
        store.find(q)
    by_kind: dict[str, list[float]] = {}
    misses = 0
    for kind, q in qs:
        t = time.perf_counter()
        found = store.find(q)
        by_kind.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        misses += not found.hits
    if misses:
        raise SystemExit(f"{misses} queries found nothing: the index is wrong")
    return by_kind


def report(name: str, by_kind: dict[str, list[float]]) -> float:
    every = [x for xs in by_kind.values() for x in xs]
    print(f"  {name}: p50 {statistics.median(every):.1f} ms, p95 {p95(every):.1f} ms, "
          f"max {max(every):.0f} ms over {len(every)} queries")
    for kind, xs in sorted(by_kind.items()):
        print(f"    {kind:14} n={len(xs):4}  p50 {statistics.median(xs):7.1f} ms  "
              f"p95 {p95(xs):7.1f} ms")
    return p95(every)


def anchor(store: SqlStore, qs: list[tuple[str, Find]], k: int) -> float:
    """body LIKE '%value%' over the stored JSON, 20 results, as a store without an index."""
    times = []
    obs = [q for kind, q in qs if kind == "observable"][:k]
    with store.engine.connect() as conn:
        for q in obs:
            t = time.perf_counter()
            conn.execute(sa.text("SELECT id FROM stix_objects WHERE is_latest AND "
                                 "CAST(body AS TEXT) LIKE :v LIMIT 20"),
                         {"v": f"%{q.text}%"}).all()
            times.append((time.perf_counter() - t) * 1000)
    return p95(times)


def pg_url() -> tuple[str, sa.Engine, str]:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"bench_search_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, admin, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 objects, 200 queries")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--queries", type=int, default=None)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="PostgreSQL only (no anchor)")
    args = ap.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    nq = args.queries or (200 if args.quick else 500)
    print(f"search over {n:,} objects, {nq} queries each, 20 results a query")
    sqlite_p95 = anchor_p95 = float("nan")
    if not args.no_sqlite:
        tmp = Path(tempfile.mkdtemp(prefix="detente-bench-search-"))
        store, sample, _ = load(f"sqlite:///{tmp / 'store.db'}", n)
        qs = queries(sample, nq)
        sqlite_p95 = report("SQLite FTS5", time_queries(store, qs))
        anchor_p95 = anchor(store, qs, 10 if n >= 500_000 else 30)
        print(f"  anchor (SQLite body LIKE, observables): p95 {anchor_p95:.0f} ms")
        store.close()
    pg_p95 = float("nan")
    if not args.no_pg:
        url, admin, name = pg_url()
        try:
            store, sample, _ = load(url, n)
            qs = queries(sample, nq)
            pg_p95 = report("PostgreSQL GIN", time_queries(store, qs))
            store.close()
        finally:
            with admin.connect() as c:
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(f"RESULT search p95_ms_sqlite={sqlite_p95:.1f} p95_ms_pg={pg_p95:.1f} "
          f"anchor_p95_ms={anchor_p95:.1f} n={n}")


if __name__ == "__main__":
    main()
