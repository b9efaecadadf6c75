"""Benchmark of the ledger: persisted batched appends and proofs, side by side with pymerkle.

    python bench/ledger.py [--quick] [--size N] [--large M] [--url sqlite:///PATH]

(1) Appends N entries (default 1,000,000; --quick 50,000) to a fresh SQLite ledger through
``Ledger.append_many`` in batches of 10,000 -- the function the release path and intake
call, timed end to end (type checks, hashing, writes, commit) -- and times inclusion and
consistency proofs at N. (2) In the same run, pymerkle 7.0 appends the *same entry bytes* in
the same batches, each batch one transaction, with the same hash (SHA-256, RFC 9162 leaf
prefix) and on a connection set to the *same SQLite pragmas* as detente's engine (read back
from a detente connection: WAL, synchronous, cache size, autocheckpoint), in a separate venv
(bench/.venvs/pymerkle, created on first use) through bench/_pymerkle_anchor.py, with its
SQLite and in-memory backends; the roots must agree (an independent RFC 9162
implementation). (3) Both sides then append entries one at a time, one transaction each
(``Ledger.append`` against pymerkle's ``append_entry``). (4) The detente ledger grows on to M
entries (default 10,000,000; --quick 500,000), and proofs and the process's peak RSS are
measured there. Entries are built before the timed regions on both sides (detente's Entry
validation and canonical encoding is reported separately as build_per_s).

The last line is ``RESULT ledger appends_per_s=… pymerkle_appends_per_s=… ratio=…
proof_ms_<N>=… proof_ms_<M>=… rss_mb_<M>=…`` with sizes written as 1m, 10m, 50k, 500k.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

from detente.ledger import Entry, Ledger, verify_consistency, verify_inclusion  # noqa: E402
from detente.store.engine import make_engine  # noqa: E402

VENV = HERE / ".venvs" / "pymerkle"
OUT = HERE / "out"
BATCH = 10_000
PRAGMAS = ("journal_mode", "synchronous", "cache_size", "wal_autocheckpoint")


def make_entry(i: int) -> Entry:
    return Entry(
        kind="release",
        time="2025-01-01T00:00:00.000Z",
        partner=f"identity--00000000-0000-4000-8000-{i % 3:012d}",
        object_id=f"indicator--00000000-0000-4000-8000-{i:012d}",
        object_version="2025-01-01T00:00:00.000Z",
        view_hash=f"{i:064x}",
    )


def template() -> str:
    """make_entry's canonical JSON with markers, so pymerkle appends identical bytes."""
    probe = make_entry(123_456_789).canonical.decode()
    text = probe.replace(f'{123_456_789 % 3:012d}"', '@P@"', 1)
    text = text.replace(f"{123_456_789:012d}", "@I@").replace(f"{123_456_789:064x}", "@H@")
    for i in (0, 7, 99_999):
        mine = make_entry(i).canonical.decode()
        theirs = text.replace("@P@", f"{i % 3:012d}").replace("@I@", f"{i:012d}")
        assert mine == theirs.replace("@H@", f"{i:064x}"), "template drifted from Entry"
    return text


def label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def log(msg: str) -> None:
    print(msg, flush=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def sqlite_pragmas(url: str) -> dict[str, str]:
    """The pragmas detente's engine sets, read back from one of its connections."""
    engine = make_engine(url)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        out = {}
        for name in PRAGMAS:
            cur.execute(f"PRAGMA {name}")
            out[name] = str(cur.fetchone()[0])
        return out
    finally:
        raw.close()
        engine.dispose()


class Detente:
    """The detente side: one ledger grown in batches, timed and probed at given sizes."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.ledger = Ledger(self.engine, "bench.example/ledger")
        self.spent = self.build = 0.0
        self.appended = 0
        self.cpu_rate = float("nan")

    def grow(self, size: int) -> float:
        """Append entries up to ``size``; returns the append rate of this stretch.

        The rate per CPU second of the same stretch is kept in ``cpu_rate``."""
        spent, cpu, first = 0.0, 0.0, self.ledger.size()
        for start in range(first, size, BATCH):
            t0 = time.perf_counter()
            batch = [make_entry(i) for i in range(start, min(start + BATCH, size))]
            c1 = time.process_time()
            t1 = time.perf_counter()
            self.ledger.append_many(batch)
            spent += time.perf_counter() - t1
            cpu += time.process_time() - c1
            self.build += t1 - t0
            done = start + len(batch)
            if (done // BATCH) % 50 == 0 or done == size:
                log(f"detente: {done:,} appended ({(done - first) / spent:,.0f}/s)")
        self.spent += spent
        self.appended += size - first
        self.cpu_rate = (size - first) / cpu
        return (size - first) / spent

    def single(self, count: int) -> float:
        first = self.ledger.size()
        extra = [make_entry(i) for i in range(first, first + count)]
        t0 = time.perf_counter()
        for entry in extra:
            self.ledger.append(entry)
        return count / (time.perf_counter() - t0)

    def proofs(self, samples: int) -> dict[str, float]:
        ledger, size = self.ledger, self.ledger.size()
        root = ledger.root()
        rng = random.Random(1)
        inc, con, cpu = [], [], []
        for k in range(samples):
            index = rng.randrange(size)
            t0, c0 = time.perf_counter(), time.process_time()
            proof = ledger.inclusion_proof(index, size)
            inc.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            old = rng.randrange(1, size)
            t0 = time.perf_counter()
            cproof = ledger.consistency_proof(old, size)
            con.append(time.perf_counter() - t0)
            if k < 20:  # verify a sample (not timed)
                verify_inclusion(make_entry(index).leaf_hash, index, size, proof, root)
                verify_consistency(old, size, ledger.root(old), root, cproof)
        inc.sort()
        return {
            "proof_ms": statistics.median(inc) * 1e3,
            "proof_p99_ms": inc[int(len(inc) * 0.99) - 1] * 1e3,
            "proof_cpu_ms": statistics.fmean(cpu) * 1e3,
            "consistency_ms": statistics.median(con) * 1e3,
        }


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        log("creating bench/.venvs/pymerkle (pymerkle==7.0.0)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pymerkle==7.0.0"], check=True)
    return python


def run_pymerkle(
    backend: str, size: int, samples: int, pragmas: dict[str, str], single: int
) -> dict[str, float | str]:
    python = ensure_venv()
    db = OUT / "pymerkle.db"
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    cmd = [
        str(python),
        str(HERE / "_pymerkle_anchor.py"),
        "--backend",
        backend,
        "--size",
        str(size),
        "--batch",
        str(BATCH),
        "--db",
        str(db),
        "--template",
        template(),
        "--samples",
        str(samples),
        "--pragmas",
        json.dumps(pragmas),
        "--single",
        str(single if backend == "sqlite" else 0),
    ]
    log(f"pymerkle {backend}: appending {size:,}")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    for line in done.stderr.splitlines():
        if "pragmas" in line:
            log(line)
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    log(
        f"pymerkle {backend}: {result['append_per_s']:,.0f} appends/s "
        f"({result['append_cpu_per_s']:,.0f} per CPU second), "
        f"proof {result['proof_ms']:.3f} ms, consistency {result['consistency_ms']:.3f} ms, "
        f"peak RSS {result['rss_mb']:.0f} MB"
    )
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="50,000 then 500,000 entries")
    ap.add_argument("--size", type=int, help="entries compared with pymerkle (default 1M)")
    ap.add_argument("--large", type=int, help="entries the ledger grows to (default 10M)")
    ap.add_argument("--url", help="store URL (default: a fresh SQLite file in bench/out)")
    ap.add_argument("--samples", type=int, default=500, help="proofs timed per kind")
    ap.add_argument("--single", type=int, help="one-entry appends timed (default 2,000)")
    ap.add_argument("--no-pymerkle", action="store_true", help="skip the pymerkle anchor")
    args = ap.parse_args()
    size = args.size or (50_000 if args.quick else 1_000_000)
    large = max(size, args.large or (500_000 if args.quick else 10_000_000))
    single = args.single if args.single is not None else (500 if args.quick else 2_000)
    OUT.mkdir(exist_ok=True)
    url = args.url
    path = OUT / "ledger.db"
    if url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    log(f"ledger bench: {size:,} then {large:,} entries, batches of {BATCH:,}, {url}")
    # (1) detente at N
    mine = Detente(url)
    rate = mine.grow(size)
    cpu_rate = mine.cpu_rate
    root = mine.ledger.root().hex()
    at_size = mine.proofs(args.samples)
    log(
        f"detente: {rate:,.0f} appends/s ({cpu_rate:,.0f} per CPU second; entry build "
        f"{mine.appended / mine.build:,.0f}/s), "
        f"inclusion {at_size['proof_ms']:.3f} ms (p99 {at_size['proof_p99_ms']:.3f}, CPU "
        f"{at_size['proof_cpu_ms']:.3f}), consistency {at_size['consistency_ms']:.3f} ms "
        f"at {size:,}"
    )
    # (2) pymerkle at N, same bytes, batches and pragmas
    nan = float("nan")
    theirs: dict[str, float | str] = {
        "append_per_s": nan,
        "append_cpu_per_s": nan,
        "single_per_s": nan,
    }
    if not args.no_pymerkle and shutil.which("python3"):
        pragmas = sqlite_pragmas(url) if url.startswith("sqlite") else {}
        theirs = run_pymerkle("sqlite", size, min(args.samples, 200), pragmas, single)
        memory = run_pymerkle("memory", size, min(args.samples, 200), pragmas, 0)
        for name, other in (("sqlite", theirs), ("memory", memory)):
            same = other["root"] == root
            log(f"root agrees with pymerkle {name}: {same}")
            if not same:
                raise SystemExit("ROOT MISMATCH with pymerkle")
    # (3) one entry per transaction
    mine_single = mine.single(single) if single else float("nan")
    log(
        f"single appends: detente {mine_single:,.0f}/s, "
        f"pymerkle sqlite {float(theirs['single_per_s']):,.0f}/s"
    )
    # (4) grow to M; proofs and peak RSS there
    large_rate = float("nan")
    at_large = at_size
    if large > mine.ledger.size():
        large_rate = mine.grow(large)
        at_large = mine.proofs(args.samples)
        log(
            f"detente at {large:,}: {large_rate:,.0f} appends/s on the way, inclusion "
            f"{at_large['proof_ms']:.3f} ms (p99 {at_large['proof_p99_ms']:.3f}, CPU "
            f"{at_large['proof_cpu_ms']:.3f}), consistency {at_large['consistency_ms']:.3f} ms"
        )
    peak = rss_mb()
    db_mb = sum(p.stat().st_size for p in OUT.glob("ledger.db*")) / 2**20 if args.url is None else 0
    log(
        f"detente peak RSS {peak:.0f} MB (now {current_rss_mb():.0f} MB), "
        f"store {db_mb:,.0f} MB for {mine.ledger.size():,} entries"
    )
    mine.engine.dispose()
    if args.url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    ratio = rate / float(theirs["append_per_s"])
    ratio_cpu = cpu_rate / float(theirs["append_cpu_per_s"])
    small, big = label(size), label(large)
    print(
        f"RESULT ledger appends_per_s={rate:.0f} "
        f"pymerkle_appends_per_s={float(theirs['append_per_s']):.0f} ratio={ratio:.2f} "
        f"ratio_cpu={ratio_cpu:.2f} "
        f"single_per_s={mine_single:.0f} "
        f"pymerkle_single_per_s={float(theirs['single_per_s']):.0f} "
        f"proof_ms_{small}={at_size['proof_ms']:.3f} proof_ms_{big}={at_large['proof_ms']:.3f} "
        f"consistency_ms_{big}={at_large['consistency_ms']:.3f} "
        f"proof_cpu_ms_{small}={at_size['proof_cpu_ms']:.3f} "
        f"proof_cpu_ms_{big}={at_large['proof_cpu_ms']:.3f} rss_mb_{big}={peak:.0f} "
        f"load={os.getloadavg()[0]:.1f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
