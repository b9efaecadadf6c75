"""Benchmark: detente's ECDH-PSI against openmined-psi 2.0.6, side by side in one run.

    python bench/psi.py [--quick] [--seed N]

Cases (same item sets from one seed, 1 % overlap, intersection mode, GCS, end to end,
including serialising every message to bytes and parsing it back):

* balanced 2^16 × 2^16 (both libraries);
* balanced 2^20 × 2^20 (both libraries);
* unbalanced 2^12 requester × 2^20 responder with the responder's set prepared (and the
  requester holding its digest) beforehand: online time only (detente).

Also printed: bytes on the wire, and the floor = group operations × the cost of one
operation measured in this run ÷ cores (scalar multiplications and hash-to-group, each at
its own cost). openmined-psi runs in a venv this script creates under bench/.venvs/openmined.
``--quick`` runs the 2^16 comparison only. The last line is the machine-readable RESULT.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _openmined_anchor import item_sets  # noqa: E402
from detente.deconflict import (  # noqa: E402
    Budget,
    Budgets,
    Item,
    MemoryBudgetBook,
    Mode,
    QueryMessage,
    Requester,
    Responder,
    ResponseMessage,
    SetDigest,
    _group,
)

FPR = 1e-9
ANCHOR_VENV = BENCH / ".venvs" / "openmined"


def anchor_python() -> Path:
    """The openmined venv's interpreter, created (and openmined-psi installed) on first use."""
    python = ANCHOR_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(ANCHOR_VENV)], check=True)
    probe = [str(python), "-c", "import private_set_intersection.python"]
    if subprocess.run(probe, capture_output=True).returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", "openmined-psi==2.0.6"]
        subprocess.run(pip, check=True)
    return python


def openmined(n_client: int, n_server: int, seed: int) -> dict[str, float]:
    cmd = [str(anchor_python()), str(BENCH / "_openmined_anchor.py")]
    out = subprocess.run(
        [*cmd, str(n_client), str(n_server), str(seed), str(FPR)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def op_costs(samples: int = 3000) -> tuple[float, float]:
    """Seconds per scalar multiplication and per hash-to-group, one core, measured now."""
    items = [b"bench\x00%d" % i for i in range(samples)]
    chunk = samples // _group.cores() // 2  # below the threading threshold: runs inline
    chunk = min(chunk, 255)
    t0 = time.perf_counter()
    points = b"".join(_group.hash_to_group(items[i : i + chunk]) for i in range(0, samples, chunk))
    t1 = time.perf_counter()
    scalar = _group.random_scalar()
    for i in range(0, len(points), chunk * 32):
        _group.multiply(scalar, points[i : i + chunk * 32])
    t2 = time.perf_counter()
    return (t2 - t1) / samples, (t1 - t0) / samples


def _items(values: list[str]) -> list[Item]:
    return [Item("bench", v) for v in values]


def _responder(items: list[Item]) -> Responder:
    budget = Budget(items_per_query=1 << 21, queries_per_day=1000, max_set_ratio=1 << 20)
    return Responder(
        items, book=MemoryBudgetBook(), budgets=Budgets(budget), false_positive_rate=FPR
    )


def detente_run(
    client: list[Item], responder: Responder, known: SetDigest | None = None
) -> tuple[float, int, int]:
    """One intersection session over bytes; returns (seconds, matches, bytes on the wire)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    requester = Requester(client, mode=Mode.INTERSECTION, partner="bench", known=known)
    query = requester.start().to_bytes()
    response = responder.answer(QueryMessage.from_bytes(query), partner="requester").to_bytes()
    result = requester.finish(ResponseMessage.from_bytes(response))
    wall = time.perf_counter() - t0
    load = os.getloadavg()[0]
    print(f"  (cores busy on average: {(time.process_time() - cpu0) / wall:.2f} of "
          f"{_group.cores()}; 1-min load average {load:.2f})")  # fmt: skip
    return wall, result.count, len(query) + len(response)


def balanced(log2n: int, seed: int) -> tuple[float, int, int]:
    client, server = item_sets(1 << log2n, 1 << log2n, seed)
    return detente_run(_items(client), _responder(_items(server)))


def unbalanced(seed: int) -> tuple[float, int, int, float, int]:
    client, server = item_sets(1 << 12, 1 << 20, seed)
    responder = _responder(_items(server))
    t0 = time.perf_counter()
    digest = responder.prepare("requester")
    digest.contains([0])  # the requester decodes the digest once, offline
    offline = time.perf_counter() - t0
    setup_bytes = len(digest.golomb.quotients) + len(digest.golomb.remainders)
    seconds, found, wire = detente_run(_items(client), responder, known=digest)
    return seconds, found, wire, offline, setup_bytes


def floor_seconds(n_req: int, n_resp: int, t_mult: float, t_hash: float) -> float:
    mults = 3 * n_req + n_resp  # blind, re-blind, unblind; the responder's set once
    hashes = n_req + n_resp
    return (mults * t_mult + hashes * t_hash) / _group.cores()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2^16 × 2^16 comparison only")
    parser.add_argument("--seed", type=int, default=2015)
    args = parser.parse_args()
    fields: dict[str, str] = dict.fromkeys(
        ["t16_s", "openmined_t16_s", "t20_s", "unbalanced_online_s", "bytes20", "floor20_s"], "na"
    )
    t_mult, t_hash = op_costs()
    print(f"cores={_group.cores()}  scalar mult {t_mult * 1e6:.1f} µs  "
          f"hash-to-group {t_hash * 1e6:.1f} µs (one core, this run)")  # fmt: skip

    n = 1 << 16
    secs, found, wire = balanced(16, args.seed)
    om = openmined(n, n, args.seed)
    fl = floor_seconds(n, n, t_mult, t_hash)
    print(f"2^16 x 2^16  detente {secs:7.2f} s  {wire / n:5.1f} B/el  found {found}  "
          f"floor {fl:.2f} s ({secs / fl:.2f}x)")  # fmt: skip
    print(f"2^16 x 2^16  openmined {om['seconds']:7.2f} s  {om['bytes'] / n:5.1f} B/el  "
          f"found {om['found']}  -> detente is {om['seconds'] / secs:.2f}x faster")  # fmt: skip
    fields.update(t16_s=f"{secs:.2f}", openmined_t16_s=f"{om['seconds']:.2f}")

    if not args.quick:
        n = 1 << 20
        secs, found, wire = balanced(20, args.seed)
        fl = floor_seconds(n, n, t_mult, t_hash)
        smult_only = 4 * n * t_mult / _group.cores()
        print(f"2^20 x 2^20  detente {secs:7.2f} s  {wire / n:5.1f} B/el  found {found}  "
              f"floor {fl:.1f} s ({secs / fl:.2f}x; "
              f"scalar mults alone {smult_only:.1f} s)")  # fmt: skip
        om = openmined(n, n, args.seed)
        print(f"2^20 x 2^20  openmined {om['seconds']:7.2f} s  {om['bytes'] / n:5.1f} B/el  "
              f"found {om['found']}  -> detente is {om['seconds'] / secs:.2f}x faster")  # fmt: skip
        fields.update(t20_s=f"{secs:.1f}", bytes20=str(wire), floor20_s=f"{fl:.1f}")
        online, found, wire, offline, setup = unbalanced(args.seed)
        print(f"2^12 x 2^20 prepared  online {online:.3f} s  found {found}  online bytes {wire}  "
              f"(offline: prepare+decode {offline:.1f} s, digest {setup} B)")  # fmt: skip
        fields["unbalanced_online_s"] = f"{online:.3f}"

    print("RESULT psi " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
