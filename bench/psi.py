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
  requester holding its digest) beforehand: online time only (detente).

Also printed: the rate of every candidate primitive measured now on one core (ristretto255,
Ed25519 with Elligator 2, X25519 from libsodium and from OpenSSL), bytes on the wire, and
the floor = group operations × the cost of one operation measured in this run ÷ threads.
openmined-psi runs in a venv this script creates under bench/.venvs/openmined.
``--quick`` runs the 2^16 comparison only. The last line is the machine-readable RESULT.
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
    result = {k: float(sum(p[k] for p in parts)) for k in ("found", "bytes", "setup_bytes")}
    result["seconds"] = max(p["seconds"] for p in parts) if processes > 1 else parts[0]["seconds"]
    result["wall"] = wall
    return result


_LIB = ctypes.CDLL(rbcl._sodium._name)  # the libsodium detente's _group calls


def _per_op(fn: object, samples: int) -> float:
    t0 = time.perf_counter()
    for i in range(samples):
        fn(i)  # type: ignore[operator]
    return (time.perf_counter() - t0) / samples


def primitives(samples: int = 2000) -> dict[str, float]:
    """Seconds per operation on one core, measured now, for every candidate group."""
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
    for _ in range(2):  # keep the better of two rounds of each (the machine is shared)
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


def detente_run(
    client: list[Item], responder: Responder, known: SetDigest | None = None,
    mode: Mode = Mode.INTERSECTION,
) -> tuple[float, int, int]:
    """One session over bytes; returns (seconds, matches, bytes on the wire)."""
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
    wall = time.perf_counter() - t0
    load = os.getloadavg()[0]
    print(f"  (cores busy on average: {(time.process_time() - cpu0) / wall:.2f} of "
          f"{_group.cores()}; 1-min load average {load:.2f})")  # fmt: skip
    return wall, result.count, wire


def balanced(log2n: int, seed: int, mode: Mode = Mode.INTERSECTION) -> tuple[float, int, int]:
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
    seconds, found, wire = detente_run(_items(client), responder, known=digest)
    return seconds, found, wire, offline, setup_bytes


def floor_seconds(n_req: int, n_resp: int, t_mult: float, t_hash: float, threads: int) -> float:
    mults = 3 * n_req + n_resp  # blind, re-blind, unblind; the responder's set once
    hashes = n_req + n_resp
    return (mults * t_mult + hashes * t_hash) / threads


def compare(log2n: int, seed: int, t_mult: float, t_hash: float, single: bool
            ) -> dict[str, float]:
    """Every detente and openmined-psi run at one size, printed side by side."""
    n, threads = 1 << log2n, _group.cores()
    tag = f"2^{log2n} x 2^{log2n}"
    out: dict[str, float] = {}
    secs, found, wire = balanced(log2n, seed)
    fl = floor_seconds(n, n, t_mult, t_hash, threads)
    out.update(t=secs, floor=fl, bytes=wire)
    print(f"{tag}  detente intersection, {threads} threads {secs:7.2f} s  {wire / n:5.1f} B/el"
          f"  found {found}  floor {fl:.2f} s ({secs / fl:.2f}x)")  # fmt: skip
    om = openmined(n, n, seed)  # the anchor right after, so both see about the same load
    out["om"] = om["seconds"]
    print(f"{tag}  openmined 1 process {om['seconds']:7.2f} s  {om['bytes'] / n:5.1f} B/el  "
          f"found {om['found']:.0f}  (1-min load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    om2 = openmined(n, n, seed, processes=threads)
    out["om2"] = om2["seconds"]
    print(f"{tag}  openmined {threads} processes (hash buckets) {om2['seconds']:7.2f} s  "
          f"found {om2['found']:.0f}  (1-min load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    if single:
        _group.set_threads(1)
        try:
            one, found1, _ = balanced(log2n, seed)
        finally:
            _group.set_threads(None)
        out["t_1t"] = one
        print(f"{tag}  detente intersection, 1 thread  {one:7.2f} s  found {found1}  floor "
              f"{floor_seconds(n, n, t_mult, t_hash, 1):.2f} s")  # fmt: skip
    card, found_c, wire_c = balanced(log2n, seed, Mode.CARDINALITY)
    out["card"] = card
    print(f"{tag}  detente cardinality (responder compares), {threads} threads {card:7.2f} s "
          f" {wire_c / n:5.1f} B/el  count {found_c}")  # fmt: skip
    print(f"{tag}  ratios: {threads} threads vs 1 process {om['seconds'] / secs:.2f}x; "
          f"equal cores ({threads} vs {threads}) {om2['seconds'] / secs:.2f}x"
          + (f"; 1 thread vs 1 process {om['seconds'] / out['t_1t']:.2f}x" if single else "")
          + f"; cardinality vs 1 process {om['seconds'] / card:.2f}x")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2^16 × 2^16 comparison only")
    parser.add_argument("--seed", type=int, default=2015)
    args = parser.parse_args()
    keys = ["t16_s", "t16_1t_s", "card16_s", "openmined_t16_s", "openmined2p_t16_s", "t20_s",
            "card20_s", "openmined_t20_s", "openmined2p_t20_s", "unbalanced_online_s",
            "bytes20", "floor20_s", "load"]
    fields: dict[str, str] = dict.fromkeys(keys, "na")
    rates = primitives()
    print(f"one core, this run (1-min load average {os.getloadavg()[0]:.2f}):")
    for name, t in rates.items():
        print(f"  {name:42s} {t * 1e6:7.1f} µs")
    t_mult = rates["ristretto255 scalar mult"]
    t_hash = rates["ristretto255 hash (from_hash)"]
    x_mult = min(rates["X25519 scalar mult (libsodium)"], rates["X25519 scalar mult (OpenSSL)"])
    x_hash = rates["ed25519 hash (Elligator 2, from_uniform)"]
    print(f"  per balanced element: ristretto255 {(4 * t_mult + 2 * t_hash) * 1e6:.0f} µs "
          f"(used); X25519 + Elligator 2 would be >= {(4 * x_mult + 2 * x_hash) * 1e6:.0f} µs")

    r16 = compare(16, args.seed, t_mult, t_hash, single=True)
    fields.update(t16_s=f"{r16['t']:.2f}", t16_1t_s=f"{r16['t_1t']:.2f}",
                  card16_s=f"{r16['card']:.2f}", openmined_t16_s=f"{r16['om']:.2f}",
                  openmined2p_t16_s=f"{r16['om2']:.2f}")  # fmt: skip

    if not args.quick:
        r20 = compare(20, args.seed, t_mult, t_hash, single=False)
        fields.update(t20_s=f"{r20['t']:.1f}", card20_s=f"{r20['card']:.1f}",
                      openmined_t20_s=f"{r20['om']:.1f}", openmined2p_t20_s=f"{r20['om2']:.1f}",
                      bytes20=str(int(r20["bytes"])), floor20_s=f"{r20['floor']:.1f}")  # fmt: skip
        online, found, wire, offline, setup = unbalanced(args.seed)
        print(f"2^12 x 2^20 prepared  online {online:.3f} s  found {found}  online bytes {wire}  "
              f"(offline: prepare+decode {offline:.1f} s, digest {setup} B)")  # fmt: skip
        fields["unbalanced_online_s"] = f"{online:.3f}"
    fields["load"] = f"{os.getloadavg()[0]:.2f}"
    print("RESULT psi " + " ".join(f"{k}={v}" for k, v in fields.items()))


if __name__ == "__main__":
    main()
