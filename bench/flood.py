"""A legitimate TAXII client's latency while a flood of bad credentials hits the server.

    python bench/flood.py [--quick] [--threads N] [--seconds S] [--store URL]

A real ``detente serve`` (the CLI's own command, in a child process, with argon2's
``PasswordHasher.verify`` wrapped to count its runs) listens on 127.0.0.1.  (1) The anchor:
the legitimate client — one TAXII client credential, ``GET /taxii2/`` with HTTP Basic, one
request after another, from 127.0.0.1 — with no flood.  (2) The same client while a second
process runs the flood from 127.0.0.2 (another loopback address, as an attacker's would
be): N threads (default 40; --quick 16) for S seconds (default 25; --quick 8), half sending
wrong Basic passwords to ``/taxii2/`` and half posting wrong passwords to the UI's
``/login`` under random operator names, each as fast as the server answers.  Failed
attempts are counted per address in the database *before* hashing
(``federation/http/throttle.py``), so the flood runs a bounded number of argon2 checks.

Reported: the legitimate client's p50/p99 with and without the flood, the flood's requests
and how they were answered, argon2 runs in the server (by caller: TAXII credentials, UI
logins), the server's peak RSS, and the load average of the machine (shared: other work
on it moves the latencies).  The last line is ``RESULT flood legit_p99_ms=…
legit_p99_ms_noflood=… argon2_runs=… …``.
"""

from __future__ import annotations

import argparse
import atexit
import multiprocessing as mp
import os
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from detente.node import Node  # noqa: E402

TAXII = {"Accept": "application/taxii+json;version=2.1"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


# -- the server (child process): the CLI's serve, argon2 runs counted ----------------------

def serve_counting(home: str, port: str, count_file: str) -> None:
    """``detente serve`` exactly as the CLI runs it, with argon2 verifications counted by
    caller module and written to ``count_file`` when the server exits."""
    import argon2

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    real = argon2.PasswordHasher.verify

    def verify(self: argon2.PasswordHasher, hash: str | bytes, password: str | bytes) -> Any:
        caller = sys._getframe(1).f_globals.get("__name__", "?")
        with lock:
            counts[caller] += 1
        return real(self, hash, password)

    argon2.PasswordHasher.verify = verify  # type: ignore[method-assign]

    def write() -> None:
        Path(count_file).write_text("\n".join(f"{k} {v}" for k, v in counts.items()))

    atexit.register(write)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from detente.cli import main

    sys.argv = ["detente", "serve", "--home", home, "--host", "127.0.0.1", "--port", port]
    main()


# -- the flood (its own process, so its threads do not share the client's GIL) -------------

def flood(base: str, user: str, threads: int, seconds: float, out: Any) -> None:
    stop_at = time.monotonic() + seconds
    answers: Counter[str] = Counter()
    lock = threading.Lock()
    transport = {"local_address": "127.0.0.2"}

    def taxii(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30,
                          transport=httpx.HTTPTransport(**transport)) as c:
            j = 0
            while time.monotonic() < stop_at:
                r = c.get("/taxii2/", headers=TAXII, auth=(user, f"wrong-{i}-{j}"))
                j += 1
                with lock:
                    answers[f"taxii_{r.status_code}"] += 1

    def login(i: int) -> None:
        with httpx.Client(base_url=base, timeout=30,
                          transport=httpx.HTTPTransport(**transport)) as c:
            page = c.get("/login")
            while time.monotonic() < stop_at:
                found = CSRF.search(page.text)  # each answer carries a fresh form token
                page = c.post("/login", data={"name": f"op-{secrets.token_hex(4)}",
                                              "password": "wrong password!", "next": "/",
                                              "csrf_token": found.group(1) if found else ""})
                with lock:
                    answers[f"login_{page.status_code}"] += 1

    workers = [threading.Thread(target=taxii if i % 2 == 0 else login, args=(i,))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(dict(answers))


# -- the legitimate client -------------------------------------------------------------

def legit(base: str, user: str, secret: str, *, until: float | None = None,
          count: int | None = None) -> list[float]:
    """Milliseconds per request, one after another (statuses other than 200 fail)."""
    times: list[float] = []
    with httpx.Client(base_url=base, timeout=30) as c:
        while (count is None or len(times) < count) and (until is None or
                                                         time.monotonic() < until):
            t0 = time.perf_counter()
            r = c.get("/taxii2/", headers=TAXII, auth=(user, secret))
            times.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise SystemExit(f"the legitimate client was answered {r.status_code}: "
                                 f"{r.text[:200]}")
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--store", help="store URL of the served node (default: SQLite)")
    ap.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_counting(*args.serve)
        return
    threads = args.threads or (16 if args.quick else 40)
    seconds = args.seconds or (8.0 if args.quick else 25.0)
    tmp = Path(tempfile.mkdtemp(prefix="detente-flood-"))
    node = Node.init(tmp / "us", "us", store_url=args.store)
    fr = Node.init(tmp / "fr", "fr")
    node.partners.add("fr", url="http://127.0.0.1:9", tier=3, public_key=fr.public_key_b64)
    fr.close()
    client, secret = node.partners.add_client("cli", "fr")
    node.close()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    count_file = tmp / "argon2-runs"
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(tmp / "us"),
                               str(port), str(count_file)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/login", timeout=5)
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("detente serve did not start") from None
                time.sleep(0.1)
        # (1) the anchor: the same client, no flood
        legit(base, client.user, secret, count=20)  # warm up (its credential checked once)
        quiet = legit(base, client.user, secret, count=100 if args.quick else 300)
        # (2) under the flood
        queue: Any = mp.get_context("spawn").Queue()
        attacker = mp.get_context("spawn").Process(
            target=flood, args=(base, client.user, threads, seconds, queue))
        attacker.start()
        time.sleep(0.5)  # the flood is running
        loud = legit(base, client.user, secret, until=time.monotonic() + seconds - 1.0)
        answers: dict[str, int] = queue.get(timeout=seconds + 120)
        attacker.join(30)
        rss = peak_rss_mb(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()
    runs = Counter({k: int(v) for k, v in (line.split() for line in
                                           count_file.read_text().splitlines() if line)})
    taxii_runs = runs.get("detente.partners.book", 0)
    login_runs = runs.get("detente.web.operators", 0)
    load = os.getloadavg()
    print(f"flood: {threads} threads from 127.0.0.2 for {seconds:.0f} s: "
          f"{sum(answers.values()):,} requests, {answers}")
    print(f"argon2 runs in serve: {sum(runs.values())} (TAXII credentials {taxii_runs}, "
          f"UI logins {login_runs}); serve peak RSS {rss:.0f} MB")
    print(f"legitimate client, no flood:    {len(quiet)} requests, p50 {p(quiet, .5):.1f} ms, "
          f"p99 {p(quiet, .99):.1f} ms")
    print(f"legitimate client, under flood: {len(loud)} requests, p50 {p(loud, .5):.1f} ms, "
          f"p99 {p(loud, .99):.1f} ms, max {max(loud):.1f} ms")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cpus "
          "(shared machine)")
    print(f"RESULT flood legit_p99_ms={p(loud, .99):.1f} "
          f"legit_p99_ms_noflood={p(quiet, .99):.1f} argon2_runs={sum(runs.values())} "
          f"argon2_taxii={taxii_runs} argon2_login={login_runs} "
          f"flood_requests={sum(answers.values())} serve_rss_mb={rss:.0f} "
          f"legit_p50_ms={statistics.median(loud):.1f} load1={load[0]:.2f}")


if __name__ == "__main__":
    main()
