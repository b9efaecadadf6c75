"""``match[version]`` on a partner's releases, paged: ``last``/``first`` are decided on the
rows a page reads (release.serve), not as a filter inside its query.

The oracle is the rule itself, applied to every live release of the partner read with
``all``: a view is served under ``last`` (``first``) when its version is the latest
(earliest) among the versions of that object the partner holds live — so a version
withdrawn from the partner (its tier lowered below what that version's marking asks)
makes the one before it the partner's ``last``.  Paging with small limits crosses the
page's read-on loop (versions passed over) and the ``added_after`` cursor, on both
backends.
"""

from __future__ import annotations

import base64
import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey

from detente.node import Node
from detente.policy import releasability_marking
from detente.release import read_releases
from detente.stix.timestamps import normalise
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance, Query

GREEN = TLP_2_0_IDS["green"]
TIER3 = releasability_marking(min_tier=3)


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _version(n: int) -> str:
    return f"2024-01-0{n}T00:00:00.000Z"


def _indicator(i: int, v: int, tier3: bool) -> dict[str, Any]:
    marks = [GREEN, TIER3["id"]] if tier3 else [GREEN]
    return {"type": "indicator", "spec_version": "2.1",
            "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
            "created": _version(1), "modified": _version(v), "name": f"i{i} v{v}",
            "pattern_type": "stix", "pattern": f"[ipv4-addr:value = '198.51.100.{i}']",
            "valid_from": "2024-01-01T00:00:00Z", "object_marking_refs": marks}


def _page_all(node: Node, versions: tuple[str, ...], limit: int | None
              ) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    after: int | None = None
    for _ in range(1000):
        page = read_releases(node.store.engine, "fr",
                             Query(versions=versions, limit=limit, added_after=after))
        out += [(v.id, v.version, v.date_added) for v in page.views]
        if not page.more:
            return out
        assert page.cursor is not None and page.cursor != after
        after = page.cursor
    raise AssertionError("paging did not end")


def _oracle(live: list[tuple[str, str, int]], versions: tuple[str, ...]
            ) -> list[tuple[str, str, int]]:
    held: dict[str, list[str]] = {}
    for oid, version, _ in live:
        held.setdefault(oid, []).append(version)
    exact = {normalise(s) for s in versions if s not in ("last", "first", "all")}
    return [(oid, version, seq) for oid, version, seq in live
            if "all" in versions or version in exact
            or ("last" in versions and version == max(held[oid]))
            or ("first" in versions and version == min(held[oid]))]


def _world(seed: int) -> list[tuple[int, list[bool]]]:
    """Each object: its number of versions (1-3) and which versions carry the tier-3
    marking — drawn from ``seed``."""
    rnd = random.Random(seed)
    return [(rnd.randint(1, 3), [rnd.random() < 0.4 for _ in range(3)])
            for _ in range(rnd.randint(4, 12))]


@pytest.mark.parametrize("lower", [False, True], ids=["live", "withdrawn"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_paged_versions_equal_the_rule(tmp_path: Path, store_url: str, seed: int,
                                       lower: bool) -> None:
    objects = _world(seed)
    node = Node.init(tmp_path / "us", "us", communities="coalition", store_url=store_url)
    try:
        node.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                          communities=frozenset({"coalition"}), tier=3)
        bodies = [TIER3] + [_indicator(i, v, marks[v - 1])
                            for i, (n, marks) in enumerate(objects) for v in range(1, n + 1)]
        node.store.put_many([validate(b) for b in bodies], Provenance())
        node.releaser.catch_up("fr")
        if lower:  # versions with the tier-3 marking are withdrawn from fr
            node.partners.update("fr", base_tier=2)
            node.releaser.reevaluate("fr")
        live = _page_all(node, ("all",), None)
        assert live == sorted(live, key=lambda row: row[2])
        if lower:
            assert all(not objects[int(oid.rsplit("-", 1)[1], 16) - 1][1][
                int(version[9]) - 1] for oid, version, _ in live if oid.startswith("indicator"))
        for versions in (("last",), ("first",), ("first", "last"),
                         ("last", _version(2)), (_version(1),), ("all",)):
            want = _oracle(live, versions)
            for limit in (1, 2, 5, None):
                assert _page_all(node, versions, limit) == want, (versions, limit)
    finally:
        node.close()


def test_a_page_of_last_reads_on_past_versions_it_passes_over(tmp_path: Path) -> None:
    """Ten objects of three live versions each, a page of two under ``last``: the first
    rows read are older versions (released first), which the page passes over and reads on
    to fill itself; ``more`` and the cursor stay exact."""
    node = Node.init(tmp_path / "us", "us", communities="coalition")
    try:
        node.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                          communities=frozenset({"coalition"}), tier=3)
        for v in (1, 2, 3):  # each version stored (and released) after the one before
            node.store.put_many([validate(_indicator(i, v, False)) for i in range(10)],
                                Provenance())
            node.releaser.catch_up("fr")
        first = read_releases(node.store.engine, "fr", Query(limit=2))
        assert [v.version for v in first.views] == [normalise(_version(3))] * 2 and first.more
        assert len(_page_all(node, ("last",), 2)) == 10
        assert len(_page_all(node, ("all",), 7)) == 30
        assert {v for _, v, _ in _page_all(node, ("first",), 3)} == {normalise(_version(1))}
    finally:
        node.close()


def test_a_bad_exact_version_is_a_clear_error(tmp_path: Path) -> None:
    node = Node.init(tmp_path / "us", "us")
    try:
        with pytest.raises(Exception, match="match\\[version\\]"):
            read_releases(node.store.engine, "fr", Query(versions=("last", "not-a-time")))
    finally:
        node.close()
