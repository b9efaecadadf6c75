"""Sync benchmark: node A releases N objects to node B over loopback HTTP; B syncs from empty.

A serves with `detente serve` in its own process; B syncs in another (`sync_all`, the code
behind `detente sync`), so B's peak resident memory is its own.  The figure is end to end
on B: discovery, signed requests, verified and bounded responses, validation, echo
checks, storage with provenance, ledger receipts, cursors, trust observation.  A's release
(policy, views, fingerprints, ledger entries) happens before and is reported apart.

    python bench/sync.py [--quick] [--n N]

Last line: ``RESULT sync objs_per_s=… peak_rss_mb=… fed_objs_per_s=… fed_peak_rss_mb=…
cpu_per_s=… server_cpu_s=… fed_cpu_per_s=… intake_s=… wait_s=… other_s=…
serve_floor_per_s=…`` (end to end as `detente sync` runs, then the federation path with
the trust engine off; ``cpu_per_s`` is objects per CPU second of B, the steadier figure
on a shared machine, ``server_cpu_s`` what A spent serving).  Where B's time went:
``intake_s`` in the intake path (store, receipts, trust), ``wait_s`` waiting for A's next
page (A's page is fetched while B stores the previous one), ``other_s`` everything but
the intake path.  ``serve_floor_per_s``: A's TAXII reader alone, objects per CPU second —
the ceiling of any pull from A whatever B does.
Target: ≥ 15,000 objects/s end to end (issue 13 item 6).
For scale: MISP users report pulls at 2–3 s per event (MISP issue 10439), OpenCTI ingest at
20–30 bundles/s (OpenCTI issue 6716).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from _common import free_port, store_validated  # noqa: E402
from _stixgen import TLP_GREEN, indicators  # noqa: E402
from detente.federation.http.client import Limits  # noqa: E402
from detente.node import Node  # noqa: E402

START_WAIT_S = 60.0


def build(tmp: Path, n: int, port: int) -> tuple[Node, Node, float, float]:
    a = Node.init(tmp / "a", "a", url=f"http://127.0.0.1:{port}", communities="bench")
    b = Node.init(tmp / "b", "b", url="http://127.0.0.1:1")
    a.partners.add("b", url="http://127.0.0.1:1", public_key=b.public_key_b64, tier=2,
                   communities=frozenset({"bench"}), identity_id=b.identity_id)
    b.partners.add("a", url=f"http://127.0.0.1:{port}", public_key=a.public_key_b64, tier=2,
                   identity_id=a.identity_id)
    t = time.perf_counter()
    store_validated(a.store, (dict(obj, object_marking_refs=[TLP_GREEN]) for obj in indicators(n)))
    ingest_s = time.perf_counter() - t
    t = time.perf_counter()
    run = a.releaser.catch_up("b")
    release_s = time.perf_counter() - t
    assert run.released == n, (run.released, run.denied)
    a.close()
    b.close()
    return a, b, ingest_s, release_s


def serve(home: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "detente.cli", "serve", "--home", str(home),
           "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/taxii2/", timeout=1.0)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("node A did not start")


def peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM: unlike ru_maxrss on Linux, it does not
    inherit the parent's peak across fork + exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def child_sync(home: str, trust: bool) -> None:
    """Runs in B's own process: sync from empty, print the figures as JSON."""
    from detente.federation.exchange.pull import sync_all

    node = Node.open(Path(home))
    t, cpu = time.perf_counter(), time.process_time()
    (summary,) = sync_all(node, limits=Limits(request_timeout_s=120.0, trust=trust))
    elapsed = time.perf_counter() - t
    cpu = time.process_time() - cpu
    rss_kb = peak_rss_kb()
    print(json.dumps({"elapsed": elapsed, "cpu": cpu, "new": summary.new, "pages": summary.pages,
                      "timings": summary.timings,
                      "duplicates": summary.duplicates, "rejected": summary.rejected,
                      "error": summary.error, "warnings": summary.warnings,
                      "stored": node.store.count(), "peak_rss_mb": rss_kb / 1024}))


def serve_floor(home: Path, n: int, page: int) -> tuple[float, float]:
    """(wall, CPU) seconds of A's TAXII reader producing every page B reads — the function
    the server calls for ``GET …/objects/`` (released rows, class views, each view derived
    for B and checked against its logged hash), without HTTP or signatures: the most A
    can serve, whatever B does."""
    from detente.federation.http.auth import Kind, Principal
    from detente.federation.taxii.collections import RELEASES, Reader
    from detente.store.base import Query

    node = Node.open(home)
    reader, who = Reader(node), Principal(Kind.PARTNER, "b")
    t, cpu = time.perf_counter(), time.process_time()
    after, served = None, 0
    while True:
        listing = reader.read(RELEASES, who, Query(versions=("all",), added_after=after,
                                                   limit=page))
        served += len(listing.rows)
        if not listing.more:
            break
        after = listing.cursor
    wall, cpu = time.perf_counter() - t, time.process_time() - cpu
    node.close()
    assert served == n, (served, n)
    return wall, cpu


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def run_child(home: Path, trust: bool, server_pid: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child-sync", str(home)]
    if not trust:
        cmd.append("--child-no-trust")
    before = cpu_seconds(server_pid)
    out = subprocess.run(cmd, capture_output=True, check=True, text=True)
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["server_cpu"] = cpu_seconds(server_pid) - before
    return figures


def report(title: str, figures: dict[str, Any], n: int) -> None:
    assert figures["error"] is None and figures["new"] == n, figures
    print(f"{title}: synced {figures['new']} objects in {figures['pages']} pages in "
          f"{figures['elapsed']:.1f} s ({n / figures['elapsed']:,.0f} objects/s), peak RSS "
          f"{figures['peak_rss_mb']:.0f} MB; store holds {figures['stored']} versions; CPU "
          f"{figures['cpu']:.2f} s in B ({n / figures['cpu']:,.0f} objects per CPU second), "
          f"{figures['server_cpu']:.2f} s in A")
    t = figures["timings"]
    other = figures["elapsed"] - t["wait_s"] - t["intake_s"] - t["pager_s"]
    print(f"  B's wall time: {t['intake_s']:.2f} s in the intake path "
          f"({t['intake_cpu_s']:.2f} s CPU), {t['wait_s']:.2f} s waiting for A's next page, "
          f"{t['pager_s']:.2f} s paging (parse, checks, cursors), {other:.2f} s discovery, "
          f"tier refresh and witnessing")
    for w in figures["warnings"]:
        print(f"  note: {w}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="10,000 objects")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--child-sync", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--child-no-trust", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_sync:
        child_sync(args.child_sync, trust=not args.child_no_trust)
        return
    n = args.n or (10_000 if args.quick else 100_000)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        port = free_port()
        _, _, ingest_s, release_s = build(tmp, n, port)
        print(f"A: stored {n} indicators in {ingest_s:.1f} s; released them to B "
              f"(policy, view, fingerprint, ledger) in {release_s:.1f} s "
              f"({n / release_s:,.0f}/s)")
        shutil.copytree(tmp / "b", tmp / "b-fed")  # the same empty node B, twice
        server = serve(tmp / "a", port)
        try:
            fed = run_child(tmp / "b-fed", trust=False, server_pid=server.pid)
            report("B, federation path only (no trust engine)", fed, n)
            figures = run_child(tmp / "b", trust=True, server_pid=server.pid)
            report("B, end to end (with trust observation)", figures, n)
        finally:
            server.terminate()
            server.wait(30)
        floor_wall, floor_cpu = serve_floor(tmp / "a", n, Limits().page_size)
        print(f"A's TAXII reader alone (derive and check B's views, no HTTP): "
              f"{floor_wall:.2f} s, {floor_cpu:.2f} s CPU ({n / floor_cpu:,.0f} objects per "
              f"CPU second): the most A serves")
    rate = n / figures["elapsed"]
    t = figures["timings"]
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"RESULT sync objs_per_s={rate:.0f} peak_rss_mb={figures['peak_rss_mb']:.0f} "
          f"fed_objs_per_s={n / fed['elapsed']:.0f} fed_peak_rss_mb={fed['peak_rss_mb']:.0f} "
          f"cpu_per_s={n / figures['cpu']:.0f} "
          f"server_cpu_s={figures['server_cpu']:.2f} fed_cpu_per_s={n / fed['cpu']:.0f} "
          f"intake_s={t['intake_s']:.2f} wait_s={t['wait_s']:.2f} "
          f"other_s={figures['elapsed'] - t['intake_s']:.2f} "
          f"serve_floor_per_s={n / floor_cpu:.0f}")


if __name__ == "__main__":
    main()
