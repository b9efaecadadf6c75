"""The openmined-psi 2.0.6 side of bench/psi.py (run by subprocess in its own venv).

Stdlib plus openmined-psi only, so bench/psi.py can also import :func:`item_sets` from here
and both sides intersect exactly the same sets.

    python _openmined_anchor.py N_CLIENT N_SERVER SEED FPR [BUCKET OF]   → one JSON line

The line holds wall seconds and CPU seconds (``time.process_time``: the work done, whatever
the machine's load), matches and bytes on the wire.

With ``BUCKET OF`` the process intersects only the items whose SHA-256 is ``BUCKET`` mod
``OF`` on both sides (a hash partition: the union of the buckets' results is the whole
intersection, and the work splits evenly). bench/psi.py runs ``OF`` such processes at once to
give openmined-psi the same cores detente's thread pool gets.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time


def item_sets(n_client: int, n_server: int, seed: int) -> tuple[list[str], list[str]]:
    """Random 16-hex-digit items; the server holds 1 % of the client's (of the smaller set)."""
    rng = random.Random(seed)
    client = [f"{rng.getrandbits(64):016x}" for _ in range(n_client)]
    overlap = max(1, min(n_client, n_server) // 100)
    server = client[:overlap] + [f"{rng.getrandbits(64):016x}" for _ in range(n_server - overlap)]
    rng.shuffle(server)
    return client, server


def in_bucket(item: str, bucket: int, of: int) -> bool:
    return int.from_bytes(hashlib.sha256(item.encode()).digest()[:8], "big") % of == bucket


def run(
    n_client: int, n_server: int, seed: int, fpr: float, bucket: int = 0, of: int = 1
) -> dict[str, float | int]:
    import private_set_intersection.python as psi  # only installed in the anchor venv

    client_items, server_items = item_sets(n_client, n_server, seed)
    if of > 1:
        client_items = [i for i in client_items if in_bucket(i, bucket, of)]
        server_items = [i for i in server_items if in_bucket(i, bucket, of)]
    t0, cpu0 = time.perf_counter(), time.process_time()
    client = psi.client.CreateWithNewKey(True)
    server = psi.server.CreateWithNewKey(True)
    setup = server.CreateSetupMessage(
        fpr, len(client_items), server_items, psi.DataStructure.GCS
    )
    request = client.CreateRequest(client_items)
    wire_setup, wire_request = setup.SerializeToString(), request.SerializeToString()
    response = server.ProcessRequest(request)
    wire_response = response.SerializeToString()
    found = client.GetIntersection(setup, response)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "seconds": seconds,
        "cpu": cpu,
        "found": len(found),
        "bytes": len(wire_setup) + len(wire_request) + len(wire_response),
        "setup_bytes": len(wire_setup),
    }


if __name__ == "__main__":
    a = sys.argv[1:]
    extra = (int(a[4]), int(a[5])) if len(a) > 4 else (0, 1)
    print(json.dumps(run(int(a[0]), int(a[1]), int(a[2]), float(a[3]), *extra)))
