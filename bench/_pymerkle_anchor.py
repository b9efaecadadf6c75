"""pymerkle 7.0 anchor for bench/ledger.py; runs inside bench/.venvs/pymerkle.

Appends the same entry bytes as detente (built from the template detente passes in), in the
same batch size, on a SQLite connection set to the same pragmas as detente's engine (passed
in as JSON: journal mode, synchronous, cache size, WAL autocheckpoint), then times inclusion
and consistency proofs at the final size and, with ``--single N``, N more appends of one
entry each (one transaction each, like ``Ledger.append``); prints one JSON object. Entry
generation is outside the timed region, as on detente's side.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import time

from pymerkle import InmemoryTree, SqliteTree


def entries(template: str, start: int, end: int) -> list[bytes]:
    out = []
    for i in range(start, end):
        text = template.replace("@P@", f"{i % 3:012d}").replace("@I@", f"{i:012d}")
        out.append(text.replace("@H@", f"{i:064x}").encode())
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "memory"], required=True)
    ap.add_argument("--size", type=int, required=True)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--db", default=":memory:")
    ap.add_argument("--template", required=True)
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--pragmas", default="{}", help="JSON: SQLite pragma name -> value")
    ap.add_argument("--single", type=int, default=0, help="single appends timed at the end")
    args = ap.parse_args()
    tree = SqliteTree(args.db) if args.backend == "sqlite" else InmemoryTree()
    if args.backend == "sqlite":
        for name, value in json.loads(args.pragmas).items():
            tree.con.execute(f"PRAGMA {name}={value}")
        applied = {n: tree.con.execute(f"PRAGMA {n}").fetchone() for n in json.loads(args.pragmas)}
        print(f"pymerkle sqlite pragmas: {applied}", file=sys.stderr)
    spent = cpu = 0.0
    for start in range(0, args.size, args.batch):
        chunk = entries(args.template, start, min(start + args.batch, args.size))
        c0 = time.process_time()
        t0 = time.perf_counter()
        if args.backend == "sqlite":
            tree.append_entries(chunk)
        else:
            for data in chunk:
                tree.append_entry(data)
        spent += time.perf_counter() - t0
        cpu += time.process_time() - c0
        print(f"pymerkle {args.backend}: {start + len(chunk)} appended", file=sys.stderr)
    rng = random.Random(1)
    size = args.size
    inc, con = [], []
    for _ in range(args.samples):
        index = rng.randrange(1, size + 1)
        t0 = time.perf_counter()
        tree.prove_inclusion(index, size)
        inc.append(time.perf_counter() - t0)
        old = rng.randrange(1, size)
        t0 = time.perf_counter()
        tree.prove_consistency(old, size)
        con.append(time.perf_counter() - t0)
    inc.sort()
    root = tree.get_root(size).hex()
    single = float("nan")
    if args.single:
        extra = entries(args.template, size, size + args.single)
        t0 = time.perf_counter()
        for data in extra:
            tree.append_entry(data)
        single = args.single / (time.perf_counter() - t0)
    print(
        json.dumps(
            {
                "backend": args.backend,
                "size": size,
                "append_per_s": size / spent,
                "append_cpu_per_s": size / cpu,
                "proof_ms": statistics.median(inc) * 1e3,
                "proof_p99_ms": inc[int(len(inc) * 0.99) - 1] * 1e3,
                "consistency_ms": statistics.median(con) * 1e3,
                "root": root,
                "single_per_s": single,
                "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


if __name__ == "__main__":
    main()
