"""TAXII benchmark: detente serving a partner under policy vs medallion vs the raw floor.

Side by side in one run:
  detente    a node with N indicators under mixed markings (30% TLP:GREEN, 20% TLP:AMBER
             releasable to the partner with `description` redacted below tier 3, 25%
             TLP:AMBER not releasable, 25% TLP:RED); partner "fr" (tier 2) may see half,
             40% of that redacted.  `detente serve` (uvicorn) on 127.0.0.1; the partner's
             requests are signed (RFC 9421) and the responses signed and verified.
             Measured: paging the whole `releases` collection (limit=1000), the cost of
             page 1 vs page 100 (limit=100), GET object by id p50/p99 over 1,000 requests
             (signed, and with a Basic credential).
  floor      reading the same rows from the store and encoding envelopes with orjson:
             no HTTP, no policy, no signatures.
  medallion  3.0.0, memory backend, in bench/.venvs/medallion, serving the same kind of
             objects without any policy, at the sizes it can handle (1,000; the full run
             also times its first page at 2,000).

    python bench/taxii.py [--quick] [--n N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import _medallion_anchor as medallion
from _common import free_port, store_validated
from _stixgen import TLP_AMBER, TLP_GREEN, indicator
from detente.federation.http.signatures import NodeAuth
from detente.node import Node
from detente.partners import Partner
from detente.policy import releasability_marking
from detente.stix.validate import validate
from detente.store import Provenance, Query

TLP_RED = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}
RELEASES = "/taxii2/api1/collections/releases/objects/"


def objects(n: int, rel: str, seed: int = 11) -> Iterator[dict[str, Any]]:
    rng = random.Random(seed)
    for i in range(n):
        bucket = i % 20
        obj = indicator(rng)
        if bucket < 6:
            obj["object_marking_refs"] = [TLP_GREEN]
        elif bucket < 10:
            obj["object_marking_refs"] = [TLP_AMBER, rel]
        elif bucket < 15:
            obj["object_marking_refs"] = [TLP_RED]
        else:
            obj["object_marking_refs"] = [TLP_AMBER]
        yield obj


def build(home: Path, n: int, port: int) -> tuple[Node, Node, dict[str, float]]:
    us = Node.init(home / "us", "us", url=f"http://127.0.0.1:{port}", communities="coalition")
    fr = Node.init(home / "fr", "fr")
    us.partners.add("fr", url="http://127.0.0.1:9", public_key=fr.public_key_b64,
                    communities=frozenset({"coalition"}), tier=2, identity_id=fr.identity_id)
    rel = releasability_marking(releasable_to=["fr"], redact_below_tier={3: ["description"]},
                                created_by_ref=us.identity_id)
    us.store.put_many([validate(rel)], Provenance())
    t0 = time.perf_counter()
    store_validated(us.store, objects(n, rel["id"]))
    ingest_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    run = us.releaser.catch_up("fr")
    release_s = time.perf_counter() - t0
    info = {"ingest_s": ingest_s, "release_s": release_s, "released": float(run.released),
            "release_per_s": run.evaluated / release_s}
    return us, fr, info


@contextmanager
def serving(home: Path, port: int) -> Iterator[str]:
    code = "from detente.cli import main; main()"
    proc = subprocess.Popen([sys.executable, "-c", code, "serve", "--home", str(home),
                             "--port", str(port)], stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/taxii2/", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError("detente serve did not start") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def page_all(client: httpx.Client, limit: int) -> tuple[int, float, list[float]]:
    count, per_page = 0, []
    params: dict[str, Any] = {"limit": limit}
    t0 = time.perf_counter()
    while True:
        t = time.perf_counter()
        r = client.get(RELEASES, params=params)
        r.raise_for_status()
        env = orjson.loads(r.content)
        per_page.append(time.perf_counter() - t)
        count += len(env.get("objects", []))
        if not env["more"]:
            return count, time.perf_counter() - t0, per_page
        params = {"limit": limit, "next": env["next"]}


def page_cost(client: httpx.Client, page: int, limit: int = 100, reps: int = 20) -> float:
    """Median ms to fetch page ``page`` (1-based) of size ``limit``."""
    params: dict[str, Any] = {"limit": limit}
    for _ in range(page - 1):
        env = client.get(RELEASES, params=params).json()
        params = {"limit": limit, "next": env["next"]}
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        client.get(RELEASES, params=params).raise_for_status()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def get_by_id(client: httpx.Client, ids: list[str]) -> tuple[float, float]:
    times = []
    for oid in ids:
        t = time.perf_counter()
        client.get(f"{RELEASES}{oid}/").raise_for_status()
        times.append(time.perf_counter() - t)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def floor(us: Node, limit: int = 1000) -> tuple[int, float]:
    """Rows read from the store in pages and encoded as envelopes: no HTTP, no policy."""
    count, after = 0, None
    t0 = time.perf_counter()
    while True:
        page = us.store.list(Query(versions=("all",), limit=limit, added_after=after))
        orjson.dumps({"more": page.more,
                      "objects": [orjson.Fragment(o.raw) for o in page.objects]})
        count += len(page.objects)
        if not page.more:
            return count, time.perf_counter() - t0
        after = page.cursor


def detente_run(n: int) -> dict[str, float]:
    port = free_port()
    out: dict[str, float] = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        us, fr, info = build(home, n, port)
        out.update(info)
        rows, secs = floor(us)
        out["floor_objs_per_s"] = rows / secs
        _, secret = us.partners.add_client("bench-client", "fr")
        us_as_partner = Partner("us", us.identity_id, bytes(us.verify_key),
                                f"http://127.0.0.1:{port}", frozenset(), 0)
        visible = [v for v in _visible_ids(us)]
        us.close()
        with serving(home / "us", port) as base, httpx.Client(
                base_url=base, headers=ACCEPT, timeout=120,
                auth=NodeAuth(fr, us_as_partner)) as client:
            client.get(RELEASES, params={"limit": 1}).raise_for_status()  # warm up
            count, secs, per_page = page_all(client, 1000)
            out.update(served=count, page_all_s=secs, detente_objs_per_s=count / secs,
                       first_page_ms=per_page[0] * 1000, last_page_ms=per_page[-1] * 1000)
            out["page1_ms"] = page_cost(client, 1)
            out["page100_ms"] = page_cost(client, min(100, count // 100))
            sample = random.Random(5).choices(visible, k=1000)
            out["get_p50_ms"], out["get_p99_ms"] = get_by_id(client, sample)
            with httpx.Client(base_url=base, headers=ACCEPT, timeout=120,
                              auth=("bench-client", secret)) as basic:
                out["basic_get_p50_ms"], out["basic_get_p99_ms"] = get_by_id(basic, sample)
        fr.close()
    return out


def _visible_ids(us: Node) -> list[str]:
    from detente.release import read_releases

    page = read_releases(us.store.engine, "fr", Query(versions=("all",)), us.releaser.views)
    return [v.id for v in page.views if v.type == "indicator"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="~10,000 objects")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--no-medallion", action="store_true")
    args = ap.parse_args()
    n = args.n or (10_000 if args.quick else 100_000)
    d = detente_run(n)
    print(f"detente   n={n}: ingest {d['ingest_s']:.1f} s, release (policy + fingerprint) "
          f"{d['release_per_s']:,.0f} versions/s, {d['released']:,.0f} views for fr")
    print(f"detente   paging releases (limit=1000, signed): {d['served']:,.0f} objects in "
          f"{d['page_all_s']:.2f} s = {d['detente_objs_per_s']:,.0f} objects/s "
          f"(first page {d['first_page_ms']:.1f} ms, last {d['last_page_ms']:.1f} ms)")
    print(f"detente   page cost (limit=100): page 1 {d['page1_ms']:.2f} ms, page 100 "
          f"{d['page100_ms']:.2f} ms")
    print(f"detente   GET by id x1000: signed p50 {d['get_p50_ms']:.2f} ms, p99 "
          f"{d['get_p99_ms']:.2f} ms; Basic p50 {d['basic_get_p50_ms']:.2f} ms, p99 "
          f"{d['basic_get_p99_ms']:.2f} ms")
    print(f"floor     store rows + orjson envelopes: {d['floor_objs_per_s']:,.0f} objects/s; "
          f"detente/floor = {d['detente_objs_per_s'] / d['floor_objs_per_s']:.2f}")
    med_rate = float("nan")
    if not args.no_medallion:
        base = [o for o in objects(1000, TLP_GREEN, seed=12)]
        m = medallion.measure(medallion.fresh_ids(base), limit=1000, gets=50)
        med_rate = m["objs_per_s"]
        print(f"medallion n=1000: paged in {m['page_all_s']:.2f} s = {med_rate:,.0f} "
              f"objects/s; GET by id p50 {m['get_p50_ms']:.1f} ms (50 requests)")
        if not args.quick:
            more = medallion.fresh_ids([o for o in objects(2000, TLP_GREEN, seed=13)])
            m2 = medallion.measure(more, limit=1000, first_page_only=True)
            print(f"medallion n=2000: first page {m2['first_page_s']:.2f} s")
    print(f"RESULT taxii detente_objs_per_s={d['detente_objs_per_s']:.0f} "
          f"floor_objs_per_s={d['floor_objs_per_s']:.0f} "
          f"medallion_objs_per_s_at_1000={med_rate:.0f} detente_p99_ms={d['get_p99_ms']:.2f}")


if __name__ == "__main__":
    main()
