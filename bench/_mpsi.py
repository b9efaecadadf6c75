"""The coalition case of bench/psi.py: N live nodes on loopback (each served by uvicorn in a
thread of this process, as `detente serve` would), each holding ``size`` of its own
observables, one of them running ``detente deconflict --with … --threshold T`` end to end;
with ``reconstructor=True`` one more node, ``desk``, holding no items, reconstructs
(``--reconstructor desk``, required at T >= 3), else a participant drawn from the run id.

Sets: participant ``p`` holds addresses ``[p·d, p·d + size)`` of one numbering with
``d = size / T``, so the initiator's last ``size/T`` items are held by T participants
(T = 2: neighbours share half their sets). The timed part
is :func:`run_coalition` only (seeding the stores is not). Reported per participant, from
each one's ledger entry: group operations (ristretto255 multiplications; hashes to the group)
and protocol bytes sent and received (the initiator's figure includes what it relays); and
the non-holding reconstructor's bytes from its own entry.
"""

from __future__ import annotations

import ipaddress
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from detente.assembly import build_app
from detente.deconflict import observable
from detente.federation.psi.coalition import run_coalition
from detente.federation.psi.remote import ItemsSpec
from detente.node import Node
from detente.scenario.live import LiveServer, listening_socket, serve_app, url_of
from detente.stix.validate import validate
from detente.store import Provenance

NAMES = ("de", "fr", "it", "ru", "us", "uk", "pl", "nl", "es", "be")
DESK = "desk"  # the reconstructor holding no items


def _address(k: int) -> str:
    return str(ipaddress.IPv4Address(0x0A000000 + k))


@contextmanager
def coalition(tmp: Path, n: int, size: int, step: int,
              reconstructor: bool = False) -> Iterator[dict[str, Node]]:
    holders = sorted(NAMES[:n])
    names = [*holders, DESK] if reconstructor else holders
    socks = {name: listening_socket() for name in names}
    nodes = {name: Node.init(tmp / name, name, url=url_of(socks[name])) for name in names}
    for name, node in nodes.items():
        for other in names:
            if other != name:
                peer = nodes[other]
                node.partners.add(other, url=str(peer.settings["url"]),
                                  public_key=peer.public_key_b64, tier=3,
                                  identity_id=peer.identity_id)
    served: list[LiveServer] = []
    try:
        for p, name in enumerate(holders):
            node = nodes[name]
            if p:  # the initiator (the first) runs from the CLI: it serves nothing
                objs = [validate({"type": "ipv4-addr", "spec_version": "2.1",
                                  "id": f"ipv4-addr--{uuid.uuid4()}",
                                  "value": _address(p * step + k)}) for k in range(size)]
                node.store.put_many(objs, Provenance())
                served.append(serve_app(build_app(node), socks[name]))
        if reconstructor:
            served.append(serve_app(build_app(nodes[DESK]), socks[DESK]))
        yield nodes
    finally:
        for s in served:
            s.stop()
        for node in nodes.values():
            node.close()


def _entry(node: Node) -> dict[str, Any]:
    for _i, e in reversed(list(node.ledger.entries())):
        doc = orjson.loads(e.detail or "{}")
        if e.kind == "deconfliction" and doc.get("role") == "coalition":
            return dict(doc)
    return {}


def run_case(n: int, size: int, threshold: int,
             reconstructor: bool = False) -> dict[str, float]:
    step = size // threshold
    with tempfile.TemporaryDirectory() as tmp, \
            coalition(Path(tmp), n, size, step, reconstructor) as nodes:
        first, *others = sorted(name for name in nodes if name != DESK)
        mine = ItemsSpec("observables", tuple(
            i for k in range(size) for i in observable("ipv4-addr", _address(k))))
        started = time.perf_counter()
        outcome = run_coalition(nodes[first], others, threshold, mine,
                                reconstructor=DESK if reconstructor else None)
        seconds = time.perf_counter() - started
        entries = {name: _entry(node) for name, node in nodes.items()}
    desk = entries.pop(DESK, {})
    expected = sum(1 for k in range(size)
                   if sum(p * step <= k < p * step + size for p in range(n)) >= threshold)
    if len(outcome.matched) != expected:
        raise SystemExit(f"coalition case wrong: {len(outcome.matched)} matched, "
                         f"expected {expected}")
    mults = [int(e["multiplications"]) for e in entries.values()]
    sent = [int(e["bytes_sent"]) for e in entries.values()]
    received = [int(e["bytes_received"]) for e in entries.values()]
    return {"s": seconds, "mults_max": max(mults), "mults_mean": sum(mults) / n,
            "bytes_mean": (sum(sent) + sum(received)) / (2 * n),
            "bytes_initiator": float(entries[first]["bytes_sent"]
                                     + entries[first]["bytes_received"]),
            "matched": float(len(outcome.matched)),
            "bytes_reconstructor": float(desk.get("bytes_sent", 0)
                                         + desk.get("bytes_received", 0))}
