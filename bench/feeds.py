"""Feed pull benchmark: `detente feed pull` from medallion vs taxii2-client paging it.

Side by side, the same medallion 3.0.0 (memory backend, bench/.venvs/medallion) serving N
indicators on 127.0.0.1, pages of 100 (medallion's memory backend slows down steeply with
size: N stays at the 1,000 it handles, see bench/taxii.py):
  anchor   taxii2-client 2.3.0 pages the whole collection (`as_pages`): HTTP and JSON only,
           nothing validated or stored — the floor of any TAXII consumer.
  detente  `pull_feed` (what `detente feed pull` and `detente sync` run): the same pages,
           then validation, the intake rules, storage with provenance and a ledger receipt
           per object, in one transaction a page; once with earned trust off (the
           federation path alone) and once end to end (trust observing every object).

    python bench/feeds.py [--quick] [--n N]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import _medallion_anchor as medallion
from _stixgen import indicator
from detente.federation.exchange.feeds import add_feed, pull_feed
from detente.federation.http.client import Limits
from detente.node import Node

PAGE = 100


def anchor(url: str, n: int) -> float:
    from taxii2client.v21 import Collection, as_pages

    started = time.perf_counter()
    collection = Collection(url.removesuffix("objects/"), user=medallion.USER,
                            password=medallion.PASSWORD)
    got = sum(len(env.get("objects", [])) for env in as_pages(collection.get_objects,
                                                                per_request=PAGE))
    assert got == n, (got, n)
    return n / (time.perf_counter() - started)


def detente(url: str, n: int, *, trust: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.init(Path(tmp) / "us", "us")
        discovery = url.split("/api1/")[0] + "/taxii2/"
        add_feed(node, "m", discovery, user=medallion.USER, password=medallion.PASSWORD)
        started = time.perf_counter()
        summary = pull_feed(node, "m", limits=Limits(page_size=PAGE, trust=trust))
        seconds = time.perf_counter() - started
        assert summary.error is None and summary.new == n, summary
        node.close()
    return n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 objects (< 1 min)")
    parser.add_argument("--n", type=int, default=None)
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 1_000)
    rng = random.Random(5)
    objs = [indicator(rng) for _ in range(n)]
    with medallion.serve(objs, page_size=PAGE) as url:
        a = anchor(url, n)
        fed = detente(url, n, trust=False)
        full = detente(url, n, trust=True)
    print(f"n={n}: taxii2-client paging {a:,.0f} objects/s; detente feed pull "
          f"{fed:,.0f} objects/s (federation path), {full:,.0f} objects/s (with trust)")
    print(f"RESULT feeds n={n} anchor_taxii2client_objs_per_s={a:.0f} "
          f"detente_pull_objs_per_s={fed:.0f} detente_pull_with_trust_objs_per_s={full:.0f}")


if __name__ == "__main__":
    main()
