"""Benchmark of the ledger: persisted batched appends and proofs, side by side with pymerkle.

    python bench/ledger.py [--quick] [--size N] [--url sqlite:///PATH]

Appends N entries (default 1,000,000; --quick 50,000) to a fresh SQLite ledger in batches,
then times inclusion and consistency proofs at that size. In the same run, pymerkle 7.0 (its
SQLite and in-memory backends) appends the *same entry bytes* in the same batches, in a
separate venv (bench/.venvs/pymerkle, created on first use) through bench/_pymerkle_anchor.py;
the roots must agree (an independent RFC 9162 implementation). Entries are built before the
timed region on both sides (detente's Entry validation + RFC 8785 encoding is reported
separately as build_per_s). Peak RSS is detente's process (resource.getrusage).
"""

from __future__ import annotations

import argparse
import json
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


def log(msg: str) -> None:
    print(msg, flush=True)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_detente(size: int, url: str, samples: int) -> dict[str, float | str]:
    engine = make_engine(url)
    ledger = Ledger(engine, "bench.example/ledger")
    spent = build = 0.0
    for start in range(0, size, BATCH):
        t0 = time.perf_counter()
        batch = [make_entry(i) for i in range(start, min(start + BATCH, size))]
        t1 = time.perf_counter()
        ledger.append_many(batch)
        spent += time.perf_counter() - t1
        build += t1 - t0
        if (start // BATCH) % 10 == 0 or start + BATCH >= size:
            log(f"detente: {start + len(batch)} appended ({(start + len(batch)) / spent:,.0f}/s)")
    root = ledger.root()
    rng = random.Random(1)
    inc, con = [], []
    for _ in range(samples):
        index = rng.randrange(size)
        t0 = time.perf_counter()
        proof = ledger.inclusion_proof(index, size)
        inc.append(time.perf_counter() - t0)
        old = rng.randrange(1, size)
        t0 = time.perf_counter()
        cproof = ledger.consistency_proof(old, size)
        con.append(time.perf_counter() - t0)
        if len(inc) <= 20:  # verify a sample (not timed)
            verify_inclusion(make_entry(index).leaf_hash, index, size, proof, root)
            verify_consistency(old, size, ledger.root(old), root, cproof)
    inc.sort()
    engine.dispose()
    return {
        "append_per_s": size / spent,
        "build_per_s": size / build,
        "proof_ms": statistics.median(inc) * 1e3,
        "proof_p99_ms": inc[int(len(inc) * 0.99) - 1] * 1e3,
        "consistency_ms": statistics.median(con) * 1e3,
        "root": root.hex(),
        "rss_mb": rss_mb(),
    }


def ensure_venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        log("creating bench/.venvs/pymerkle (pymerkle==7.0.0)")
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "pymerkle==7.0.0"], check=True)
    return python


def run_pymerkle(backend: str, size: int, samples: int) -> dict[str, float | str]:
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
    ]
    log(f"pymerkle {backend}: appending {size:,}")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result: dict[str, float | str] = json.loads(done.stdout.strip().splitlines()[-1])
    log(
        f"pymerkle {backend}: {result['append_per_s']:,.0f} appends/s, "
        f"proof {result['proof_ms']:.3f} ms"
    )
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="50,000 entries (about a minute)")
    ap.add_argument("--size", type=int, help="number of entries (default 1,000,000)")
    ap.add_argument("--url", help="store URL (default: a fresh SQLite file in bench/out)")
    ap.add_argument("--samples", type=int, default=500, help="proofs timed per kind")
    ap.add_argument("--no-pymerkle", action="store_true", help="skip the pymerkle anchor")
    args = ap.parse_args()
    size = args.size or (50_000 if args.quick else 1_000_000)
    OUT.mkdir(exist_ok=True)
    url = args.url
    if url is None:
        path = OUT / "ledger.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        url = f"sqlite:///{path}"
    log(f"ledger bench: {size:,} entries, batches of {BATCH:,}, {url}")
    mine = run_detente(size, url, args.samples)
    log(
        f"detente: {mine['append_per_s']:,.0f} appends/s (entry build {mine['build_per_s']:,.0f}/s)"
        f", inclusion {mine['proof_ms']:.3f} ms (p99 {mine['proof_p99_ms']:.3f}), "
        f"consistency {mine['consistency_ms']:.3f} ms, peak RSS {mine['rss_mb']:.0f} MB"
    )
    sqlite_r: dict[str, float | str] = {"append_per_s": float("nan"), "proof_ms": float("nan")}
    if not args.no_pymerkle and shutil.which("python3"):
        sqlite_r = run_pymerkle("sqlite", size, min(args.samples, 200))
        memory_r = run_pymerkle("memory", size, min(args.samples, 200))
        for name, other in (("sqlite", sqlite_r), ("memory", memory_r)):
            same = other["root"] == mine["root"]
            log(f"root agrees with pymerkle {name}: {same}")
            if not same:
                raise SystemExit("ROOT MISMATCH with pymerkle")
        log(
            f"pymerkle memory: consistency {memory_r['consistency_ms']:.3f} ms, "
            f"RSS {memory_r['rss_mb']:.0f} MB; sqlite: consistency "
            f"{sqlite_r['consistency_ms']:.3f} ms, p99 proof {sqlite_r['proof_p99_ms']:.3f} ms"
        )
    print(
        f"RESULT ledger append_per_s={mine['append_per_s']:.0f} "
        f"pymerkle_sqlite_append_per_s={float(sqlite_r['append_per_s']):.0f} "
        f"proof_ms={float(mine['proof_ms']):.3f} "
        f"pymerkle_sqlite_proof_ms={float(sqlite_r['proof_ms']):.3f} "
        f"rss_mb={float(mine['rss_mb']):.0f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
