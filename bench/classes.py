"""Decide once per policy class: the decision step of catch-up, by class and per partner.

Times exactly what ``Releaser.catch_up_from`` does to decide a chunk — one judge per
partner per chunk (``_judges([partner], by_class=True)``), ``judge.decide`` for each
version of the chunk, partners in turn as ``release_pending`` serves them — beside the
anchor, the same loop with every partner decided on its own (``by_class=False``: what
catch-up did before).  Both runs are checked to give the same decisions.

Content: TLP:GREEN indicators, TLP:AMBER indicators with a releasability marking naming
one partner (decided alone for it), relationships between indicators (reference checks),
and a tenth received from a partner.  Partners: ``--partners`` in ``--classes`` classes
(tier and communities).  ``--quick``: 2,000 versions x 8 partners in 2 classes (<1 min);
full: 50,000 x 20 in 4.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import store_validated
from detente.node import Node
from detente.policy import releasability_marking
from detente.policy.model import Decision
from detente.release.path import BATCH
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

T0 = "2026-01-01T00:00:00.000Z"


def _id(kind: str, n: int) -> str:
    return f"{kind}--{uuid.UUID(int=n + 1, version=4)}"


def content(n: int, named: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(local objects, objects received from a partner)."""
    marking = releasability_marking(releasable_to=[named])
    local: list[dict[str, Any]] = [marking]
    received: list[dict[str, Any]] = []
    for i in range(n):
        kind = "relationship" if i % 5 == 4 else "indicator"
        body: dict[str, Any] = {"type": kind, "spec_version": "2.1", "id": _id(kind, i),
                                "created": T0, "modified": T0}
        if kind == "indicator":
            amber = i % 7 == 3
            body.update(name=f"C2 node {i}", pattern_type="stix", valid_from=T0,
                        pattern=f"[ipv4-addr:value = '10.{i >> 16 & 255}.{i >> 8 & 255}."
                                f"{i & 255}']",
                        description="Command and control address seen in the campaign.",
                        object_marking_refs=[TLP_2_0_IDS["amber"], marking["id"]] if amber
                        else [TLP_2_0_IDS["green"]])
        else:
            body.update(relationship_type="related-to", source_ref=_id("indicator", i - 1),
                        target_ref=_id("indicator", i - 2),
                        object_marking_refs=[TLP_2_0_IDS["green"]])
        (received if i % 10 == 9 else local).append(body)
    return local, received


def decide_all(node: Node, versions: list[Any], by_class: bool) -> tuple[float, list[Decision]]:
    """The decision step of catch-up for every partner, chunk by chunk, round-robin."""
    releaser = node.releaser
    partners = node.partners.all()
    out: list[Decision] = []
    t0 = time.perf_counter()
    for start in range(0, len(versions), BATCH):
        chunk = versions[start:start + BATCH]
        for partner in partners:
            [judge] = releaser._judges([partner], by_class=by_class)
            out.extend(judge.decide(obj) for obj in chunk)
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 versions x 8 partners")
    args = ap.parse_args()
    n, np_, nc = (2_000, 8, 2) if args.quick else (50_000, 20, 4)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        node = Node.init(Path(tmp) / "hub", "hub", communities="coalition")
        for i in range(np_):
            key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
            node.partners.add(f"p{i}", url=f"http://127.0.0.1:{9000 + i}", public_key=key,
                              tier=1 + i % nc, communities=frozenset({"coalition"}),
                              identity_id=f"identity--{uuid.UUID(int=10_000 + i, version=4)}")
        local, received = content(n, "p1")
        store_validated(node.store, local)
        node.store.put_many([validate(o) for o in received], Provenance(origin="p0"))
        versions = list(node.store.iter_all(Query(versions=("all",))))
        anchor_s, alone = decide_all(node, versions, by_class=False)
        memo = node.releaser._memo
        classes_s, shared = decide_all(node, versions, by_class=True)
        assert shared == alone, "decisions by class differ from per-partner decisions"
        node.close()
    decisions = len(alone)
    print(f"classes versions={len(versions):,} partners={np_} classes={nc} "
          f"(load average {load:.1f} at start)")
    print(f"anchor   per partner: {decisions:,} decisions in {anchor_s:.2f} s = "
          f"{decisions / anchor_s:,.0f}/s")
    print(f"detente  by class:    {decisions:,} decisions in {classes_s:.2f} s = "
          f"{decisions / classes_s:,.0f}/s (memo: {memo.misses:,} taken, {memo.hits:,} "
          f"reused or checked); identical: yes")
    print(f"RESULT classes decisions_per_s={decisions / classes_s:.0f} "
          f"anchor_per_partner_per_s={decisions / anchor_s:.0f} "
          f"speedup={anchor_s / classes_s:.2f}")


if __name__ == "__main__":
    main()
