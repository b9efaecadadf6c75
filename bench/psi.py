"""Benchmark: detente's ECDH-PSI against openmined-psi 2.0.6, side by side in one run.

    python bench/psi.py [--quick] [--seed N]

Cases (same item sets from one seed, 1 % overlap, GCS, end to end, including serialising
every message to bytes and parsing it back):

* balanced 2^16 × 2^16: detente intersection mode on every core and on one thread,
  detente cardinality mode (the responder compares: the mode protected against a deviating
  requester), openmined-psi in one process and in as many processes as detente has threads
  (hash-partitioned halves run at once, so both get the same cores);
* balanced 2^20 × 2^20: the same without the one-thread run;
* unbalanced 2^12 requester × 2^20 responder with the responder's set prepared (and the
  requester holding its digest) beforehand: online time only (detente);
* coalition (``bench/_mpsi.py``): 5 live nodes on loopback, 10,000 items each, T = 2, end
  to end, reconstructed by a participant (``mpsi_n5_10k_s``, with group operations and
  protocol bytes per participant) and by a sixth node holding no items
  (``mpsi_n5r_10k_s``, with that reconstructor's bytes); the full run adds T = 3 over
  5 × 1,000 (``mpsi_n5_1k_t3_s``, a non-holding reconstructor: T >= 3 requires one).
  ``--mpsi-only`` runs just these.

Every run is timed twice: wall clock, and CPU seconds (``time.process_time``, all threads of
the process; the anchor reports its own). On a shared machine the wall clock depends on how
many cores the scheduler lends each run; the CPU seconds are the work done, so their ratio is
the comparison on equal cores that the load does not move.

Also printed: the CPU cost of every candidate primitive measured now on one core
(ristretto255, Ed25519 with Elligator 2, the Ed25519 → X25519 conversion, X25519 from
libsodium and from OpenSSL), what one balanced element costs in each candidate group (4
multiplications and 2 hashes to the group), the floor = group operations × the cost of one
operation measured in this run ÷ threads, the best ratio against openmined-psi each candidate
could reach at its floor, and bytes on the wire. openmined-psi runs in a venv this script
creates under bench/.venvs/openmined. ``--quick`` runs the 2^16 comparison only. The last
line is the machine-readable RESULT (``load*`` = 1-min load average when that size ended).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import rbcl

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from _openmined_anchor import item_sets  # noqa: E402
from detente.deconflict import (  # noqa: E402
    Budget,
    Budgets,
    Item,
    MemoryBudgetBook,
    Mode,
    OpeningMessage,
    QueryMessage,
    Requester,
    Responder,
    ResponseMessage,
    RevealMessage,
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


def openmined(n_client: int, n_server: int, seed: int, processes: int = 1) -> dict[str, float]:
    """One openmined-psi session, or ``processes`` of them on hash-partitioned buckets run
    at once (wall time of the slowest, results and bytes summed)."""
    cmd = [str(anchor_python()), str(BENCH / "_openmined_anchor.py")]
    args = [str(n_client), str(n_server), str(seed), str(FPR)]
    extra = [[str(b), str(processes)] for b in range(processes)] if processes > 1 else [[]]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([*cmd, *args, *e], stdout=subprocess.PIPE, text=True)
             for e in extra]  # fmt: skip
    outs = [p.communicate()[0] for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise SystemExit("the openmined-psi anchor failed")
    parts = [json.loads(o.strip().splitlines()[-1]) for o in outs]
    keys = ("found", "bytes", "setup_bytes", "cpu")
    result = {k: float(sum(p[k] for p in parts)) for k in keys}
    result["seconds"] = max(p["seconds"] for p in parts) if processes > 1 else parts[0]["seconds"]
    result["wall"] = wall
    return result


_LIB = ctypes.CDLL(rbcl._sodium._name)  # the libsodium detente's _group calls


def _per_op(fn: object, samples: int) -> float:
    """CPU seconds per call (one thread: the pool is idle while this runs)."""
    t0 = time.process_time()
    for i in range(samples):
        fn(i)  # type: ignore[operator]
    return (time.process_time() - t0) / samples


def primitives(samples: int = 2000) -> dict[str, float]:
    """CPU seconds per operation on one core, measured now, for every candidate group."""
    from cryptography.hazmat.primitives.asymmetric import x25519

    out = ctypes.create_string_buffer(32)
    hashes = [hashlib.sha512(b"bench\x00%d" % i).digest() for i in range(samples)]
    rist = _group.hash_to_group([b"x"])
    edw = ctypes.create_string_buffer(32)
    _LIB.crypto_core_ed25519_from_uniform(edw, hashes[0][:32])
    scalar = _group.random_scalar()
    mont = ctypes.create_string_buffer(32)
    _LIB.crypto_sign_ed25519_pk_to_curve25519(mont, edw.raw)
    clamped = bytes([hashes[1][0] & 248, *hashes[1][1:31], (hashes[1][31] & 127) | 64])
    priv = x25519.X25519PrivateKey.from_private_bytes(clamped)
    pub_bytes = mont.raw
    rates: dict[str, float] = {}
    for _ in range(3):  # keep the best of three rounds of each (the machine is shared)
        for name, fn in {
            "ristretto255 hash (from_hash)": lambda i: _LIB.crypto_core_ristretto255_from_hash(
                out, hashes[i]),
            "ristretto255 scalar mult": lambda i: _LIB.crypto_scalarmult_ristretto255(
                out, scalar, rist),
            "ed25519 hash (Elligator 2, from_uniform)": lambda i:
                _LIB.crypto_core_ed25519_from_uniform(out, hashes[i][:32]),
            "ed25519 scalar mult (noclamp)": lambda i: _LIB.crypto_scalarmult_ed25519_noclamp(
                out, scalar, edw.raw),
            "ed25519 -> X25519 (pk_to_curve25519)": lambda i:
                _LIB.crypto_sign_ed25519_pk_to_curve25519(out, edw.raw),
            "X25519 scalar mult (libsodium)": lambda i: _LIB.crypto_scalarmult_curve25519(
                out, clamped, pub_bytes),
            "X25519 scalar mult (OpenSSL)": lambda i: priv.exchange(
                x25519.X25519PublicKey.from_public_bytes(pub_bytes)),
        }.items():  # fmt: skip
            t = _per_op(fn, samples)
            rates[name] = min(rates.get(name, t), t)
    return rates


def _items(values: list[str]) -> list[Item]:
    return [Item("bench", v) for v in values]


def _responder(items: list[Item]) -> Responder:
    budget = Budget(items_per_query=1 << 21, queries_per_day=1000, max_set_ratio=1 << 20)
    return Responder(
        items, book=MemoryBudgetBook(), budgets=Budgets(budget), false_positive_rate=FPR
    )


@dataclass(frozen=True)
class Run:
    """One detente session: wall and CPU seconds (all threads), matches, bytes on the wire,
    and the 1-min load average when it ended."""

    wall: float
    cpu: float
    found: int
    wire: int
    load: float


def detente_run(
    client: list[Item], responder: Responder, known: SetDigest | None = None,
    mode: Mode = Mode.INTERSECTION,
) -> Run:
    """One session over bytes (every message serialised and parsed back)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    requester = Requester(client, mode=mode, partner="bench", known=known)
    query = requester.start().to_bytes()
    response = responder.answer(QueryMessage.from_bytes(query), partner="requester").to_bytes()
    wire = len(query) + len(response)
    if mode is Mode.INTERSECTION:
        result = requester.finish(ResponseMessage.from_bytes(response))
    else:
        reveal = requester.reveal(ResponseMessage.from_bytes(response)).to_bytes()
        _, opening = responder.conclude(RevealMessage.from_bytes(reveal), partner="requester")
        result = requester.conclude(OpeningMessage.from_bytes(opening.to_bytes()))
        wire += len(reveal) + len(opening.to_bytes())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return Run(wall, cpu, result.count, wire, os.getloadavg()[0])


def balanced(log2n: int, seed: int, mode: Mode = Mode.INTERSECTION) -> Run:
    client, server = item_sets(1 << log2n, 1 << log2n, seed)
    return detente_run(_items(client), _responder(_items(server)), mode=mode)


def unbalanced(seed: int) -> tuple[float, int, int, float, int]:
    client, server = item_sets(1 << 12, 1 << 20, seed)
    responder = _responder(_items(server))
    t0 = time.perf_counter()
    digest = responder.prepare("requester")
    digest.contains([0])  # the requester decodes the digest once, offline
    offline = time.perf_counter() - t0
    setup_bytes = len(digest.golomb.quotients) + len(digest.golomb.remainders)
    run = detente_run(_items(client), responder, known=digest)
    return run.wall, run.found, run.wire, offline, setup_bytes


def floor_seconds(n_req: int, n_resp: int, t_mult: float, t_hash: float, threads: int) -> float:
    mults = 3 * n_req + n_resp  # blind, re-blind, unblind; the responder's set once
    hashes = n_req + n_resp
    return (mults * t_mult + hashes * t_hash) / threads


def candidates(rates: dict[str, float]) -> dict[str, float]:
    """CPU seconds per balanced element (4 multiplications, 2 hashes to the group) in each
    candidate group, from the primitive costs of this run. X25519 needs an Edwards point from
    Elligator 2 converted to a Montgomery u-coordinate: libsodium's only conversion is
    ``crypto_sign_ed25519_pk_to_curve25519``, which checks the subgroup on the way."""
    x_mult = min(rates["X25519 scalar mult (libsodium)"], rates["X25519 scalar mult (OpenSSL)"])
    h_ed = rates["ed25519 hash (Elligator 2, from_uniform)"]
    conv = rates["ed25519 -> X25519 (pk_to_curve25519)"]
    return {
        "ristretto255 (used)": 4 * rates["ristretto255 scalar mult"]
        + 2 * rates["ristretto255 hash (from_hash)"],
        "Ed25519 + Elligator 2": 4 * rates["ed25519 scalar mult (noclamp)"] + 2 * h_ed,
        "X25519, libsodium's hash + conversion": 4 * x_mult + 2 * (h_ed + conv),
        "X25519, a conversion of our own (not done)": 4 * x_mult + 2 * h_ed,
    }


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}"


def compare(log2n: int, seed: int, t_mult: float, t_hash: float, single: bool,
            per_element: dict[str, float]) -> dict[str, float]:
    """Every detente and openmined-psi run at one size, printed side by side."""
    n, threads = 1 << log2n, _group.cores()
    tag = f"2^{log2n} x 2^{log2n}"
    out: dict[str, float] = {}
    run = balanced(log2n, seed)
    fl = floor_seconds(n, n, t_mult, t_hash, threads)
    out.update(t=run.wall, cpu=run.cpu, floor=fl, bytes=run.wire)
    print(f"{tag}  detente intersection, {threads} threads {run.wall:7.2f} s wall "
          f"{run.cpu:7.2f} s CPU  {run.wire / n:5.1f} B/el  found {run.found}  floor {fl:.2f} s "
          f"wall, {fl * threads:.2f} s CPU ({run.cpu / (fl * threads):.2f}x)  "
          f"(load {run.load:.2f})")  # fmt: skip
    om = openmined(n, n, seed)  # the anchor right after, so both see about the same load
    out.update(om=om["seconds"], om_cpu=om["cpu"])
    print(f"{tag}  openmined 1 process {om['seconds']:7.2f} s wall {om['cpu']:7.2f} s CPU  "
          f"{om['bytes'] / n:5.1f} B/el  found {om['found']:.0f}  "
          f"(load {os.getloadavg()[0]:.2f})")  # fmt: skip
    om2 = openmined(n, n, seed, processes=threads)
    out.update(om2=om2["seconds"])
    print(f"{tag}  openmined {threads} processes (hash buckets) {om2['seconds']:7.2f} s wall "
          f"{om2['cpu']:7.2f} s CPU  found {om2['found']:.0f}  "
          f"(load {os.getloadavg()[0]:.2f})")  # fmt: skip
    if single:
        _group.set_threads(1)
        try:
            one = balanced(log2n, seed)
        finally:
            _group.set_threads(None)
        out.update(t_1t=one.wall)
        print(f"{tag}  detente intersection, 1 thread  {one.wall:7.2f} s wall {one.cpu:7.2f} s "
              f"CPU  found {one.found}  floor {floor_seconds(n, n, t_mult, t_hash, 1):.2f} s  "
              f"(load {one.load:.2f})")  # fmt: skip
    card = balanced(log2n, seed, Mode.CARDINALITY)
    out.update(card=card.wall, card_cpu=card.cpu, load=os.getloadavg()[0])
    print(f"{tag}  detente cardinality (responder compares), {threads} threads {card.wall:7.2f} s"
          f" wall {card.cpu:7.2f} s CPU  {card.wire / n:5.1f} B/el  count {card.found}  "
          f"(load {card.load:.2f})")  # fmt: skip
    print(f"{tag}  ratios (openmined / detente): wall, {threads} threads vs 1 process "
          f"{_ratio(om['seconds'], run.wall)}x; wall, equal cores ({threads} vs {threads}) "
          f"{_ratio(om2['seconds'], run.wall)}x"
          + (f"; wall, 1 thread vs 1 process {_ratio(om['seconds'], one.wall)}x" if single else "")
          + f"; CPU (work, equal cores, load-independent) {_ratio(om['cpu'], run.cpu)}x; "
          f"cardinality: wall vs 1 process {_ratio(om['seconds'], card.wall)}x, "
          f"CPU {_ratio(om['cpu'], card.cpu)}x")  # fmt: skip
    print(f"{tag}  best CPU ratio each group could reach at its floor (x{threads} threads "
          f"against 1 process, if the cores were free):")
    for name, t in per_element.items():
        best = om["cpu"] / (n * t)
        print(f"    {name:44s} {best:5.2f}x  ({best * threads:5.2f}x)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2^16 × 2^16 comparison only")
    parser.add_argument("--seed", type=int, default=2015)
    parser.add_argument("--mpsi-only", action="store_true", help="the coalition case only")
    args = parser.parse_args()
    keys = ["t16_s", "t16_1t_s", "card16_s", "openmined_t16_s", "openmined2p_t16_s",
            "cpu16_s", "openmined_cpu16_s", "ratio16", "ratio16_eq", "ratio16_cpu", "load16",
            "t20_s", "card20_s", "openmined_t20_s", "openmined2p_t20_s", "cpu20_s",
            "openmined_cpu20_s", "ratio20", "ratio20_eq", "ratio20_cpu", "load20",
            "unbalanced_online_s", "bytes20", "floor16_s", "floor20_s",
            "mpsi_n5_10k_s", "mpsi_mults_per_participant", "mpsi_bytes_per_participant",
            "mpsi_initiator_bytes", "mpsi_n5r_10k_s", "mpsi_reconstructor_bytes",
            "mpsi_n5_1k_t3_s", "load"]
    fields: dict[str, str] = dict.fromkeys(keys, "na")
    if args.mpsi_only:
        coalition_cases(fields, full=not args.quick)
        fields["load"] = f"{os.getloadavg()[0]:.2f}"
        print("RESULT psi " + " ".join(f"{k}={v}" for k, v in fields.items()))
        return
    rates = primitives()
    print(f"one core, CPU per operation, this run (1-min load average {os.getloadavg()[0]:.2f}):")
    for name, t in rates.items():
        print(f"  {name:42s} {t * 1e6:7.1f} µs")
    per_element = candidates(rates)
    print("  per balanced element (4 multiplications, 2 hashes to the group), CPU:")
    for name, t in per_element.items():
        print(f"    {name:44s} {t * 1e6:6.0f} µs")
    t_mult = rates["ristretto255 scalar mult"]
    t_hash = rates["ristretto255 hash (from_hash)"]

    def record(size: int, r: dict[str, float], digits: int) -> None:
        f = f"{{:.{digits}f}}"
        fields.update({
            f"t{size}_s": f.format(r["t"]), f"card{size}_s": f.format(r["card"]),
            f"openmined_t{size}_s": f.format(r["om"]),
            f"openmined2p_t{size}_s": f.format(r["om2"]),
            f"cpu{size}_s": f.format(r["cpu"]), f"openmined_cpu{size}_s": f.format(r["om_cpu"]),
            f"ratio{size}": _ratio(r["om"], r["t"]), f"ratio{size}_eq": _ratio(r["om2"], r["t"]),
            f"ratio{size}_cpu": _ratio(r["om_cpu"], r["cpu"]), f"load{size}": f"{r['load']:.2f}",
            f"floor{size}_s": f.format(r["floor"]),
        })  # fmt: skip

    r16 = compare(16, args.seed, t_mult, t_hash, single=True, per_element=per_element)
    record(16, r16, 2)
    fields["t16_1t_s"] = f"{r16['t_1t']:.2f}"

    if not args.quick:
        r20 = compare(20, args.seed, t_mult, t_hash, single=False, per_element=per_element)
        record(20, r20, 1)
        fields["bytes20"] = str(int(r20["bytes"]))
        online, found, wire, offline, setup = unbalanced(args.seed)
        print(f"2^12 x 2^20 prepared  online {online:.3f} s  found {found}  online bytes {wire}  "
              f"(offline: prepare+decode {offline:.1f} s, digest {setup} B)")  # fmt: skip
        fields["unbalanced_online_s"] = f"{online:.3f}"
    coalition_cases(fields, full=not args.quick)
    fields["load"] = f"{os.getloadavg()[0]:.2f}"
    print("RESULT psi " + " ".join(f"{k}={v}" for k, v in fields.items()))


def coalition_cases(fields: dict[str, str], *, full: bool) -> None:
    from _mpsi import run_case

    r = run_case(5, 10_000, 2)
    print(f"coalition N=5 T=2 10k each  {r['s']:.1f} s  matched {int(r['matched'])}  "
          f"multiplications/participant mean {r['mults_mean']:.0f} max {int(r['mults_max'])}  "
          f"protocol bytes/participant {r['bytes_mean'] / 1e6:.2f} MB "
          f"(initiator, relaying: {r['bytes_initiator'] / 1e6:.2f} MB)")  # fmt: skip
    fields.update({"mpsi_n5_10k_s": f"{r['s']:.1f}",
                   "mpsi_mults_per_participant": f"{r['mults_mean']:.0f}",
                   "mpsi_bytes_per_participant": f"{r['bytes_mean']:.0f}",
                   "mpsi_initiator_bytes": f"{r['bytes_initiator']:.0f}"})
    rr = run_case(5, 10_000, 2, reconstructor=True)
    print(f"coalition N=5 T=2 10k each + reconstructor holding no items  {rr['s']:.1f} s  "
          f"matched {int(rr['matched'])}  multiplications/participant mean "
          f"{rr['mults_mean']:.0f}  protocol bytes/participant {rr['bytes_mean'] / 1e6:.2f} MB "
          f"(reconstructor: {rr['bytes_reconstructor'] / 1e6:.2f} MB)")
    fields.update({"mpsi_n5r_10k_s": f"{rr['s']:.1f}",
                   "mpsi_reconstructor_bytes": f"{rr['bytes_reconstructor']:.0f}"})
    if full:
        t3 = run_case(5, 1_000, 3, reconstructor=True)
        print(f"coalition N=5 T=3 1k each + reconstructor holding no items  {t3['s']:.1f} s")
        fields["mpsi_n5_1k_t3_s"] = f"{t3['s']:.1f}"


if __name__ == "__main__":
    main()
