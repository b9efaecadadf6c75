"""The release layout at rest: a home made before it is refused clearly (or, holding no
release, moved on), and what a release costs at rest stays small."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from tests.store.helpers import indicator

from detente.errors import StoreError
from detente.node import Node
from detente.release.schema import LEGACY_TABLE, chunks, releases, views
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance
from detente.store.engine import writer


def _key() -> str:
    return base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()


def _legacy(home: Path, rows: int) -> None:
    """Make ``home`` look like a home of release layout 1."""
    node = Node.open(home)
    with writer(node.store.engine).begin() as conn:
        for t in ("release_rows", "release_views", "release_chunks", "release_batches",
                  "release_meta"):
            conn.execute(sa.text(f"DROP TABLE {t}"))
        conn.execute(sa.text(f"CREATE TABLE {LEGACY_TABLE} (seq BIGINT PRIMARY KEY, "
                             "partner TEXT, view BLOB)"))
        for i in range(rows):
            conn.execute(sa.text(f"INSERT INTO {LEGACY_TABLE} VALUES ({i}, 'fr', x'7b7d')"))
    node.close()


def test_a_home_with_releases_of_the_old_layout_is_refused(tmp_path: Path) -> None:
    Node.init(tmp_path / "us", "us").close()
    _legacy(tmp_path / "us", rows=2)
    node = Node.open(tmp_path / "us")  # the store is opened on first use
    with pytest.raises(StoreError, match="2 releases in the release layout 1") as err:
        _ = node.store
    assert err.value.hint and "new home" in err.value.hint


def test_a_home_with_no_release_of_the_old_layout_opens(tmp_path: Path) -> None:
    Node.init(tmp_path / "us", "us").close()
    _legacy(tmp_path / "us", rows=0)
    node = Node.open(tmp_path / "us")
    try:
        assert not sa.inspect(node.store.engine).has_table(LEGACY_TABLE)
        assert sa.inspect(node.store.engine).has_table("release_rows")
    finally:
        node.close()


def test_partners_of_one_class_share_one_class_view(tmp_path: Path) -> None:
    """Three partners of one class: one class view per object version, kept once; each
    partner's own bytes are derived when served, and differ (fingerprinted)."""
    node = Node.init(tmp_path / "us", "us", communities="coalition")
    try:
        for name in ("fr", "de", "nl"):
            node.partners.add(name, url="http://127.0.0.1:9001", public_key=_key(),
                              communities=frozenset({"coalition"}), tier=2)
        objs = [indicator(labels=["isis", "c2", "syria", "financing", f"n{i}"],
                          object_marking_refs=[TLP_2_0_IDS["green"]]) for i in range(20)]
        node.store.put_many([validate(o) for o in objs], Provenance())
        for name in ("fr", "de", "nl"):
            node.releaser.catch_up(name)
        with node.store.engine.connect() as conn:
            n_rows = conn.execute(sa.select(sa.func.count()).select_from(releases)).scalar()
            n_views = conn.execute(sa.select(sa.func.count()).select_from(views)).scalar()
            n_chunks = conn.execute(sa.select(sa.func.count()).select_from(chunks)).scalar()
            hashes = {bytes(r[0]) for r in conn.execute(sa.select(releases.c.view_hash))}
        marking = 0  # TLP definitions are known to every node: not released as support
        assert n_rows == 3 * (len(objs) + marking)
        assert n_views == len(objs) + marking and n_chunks == 1
        assert len(hashes) > len(objs) + marking, "each partner's bytes are its own"
    finally:
        node.close()


def test_served_bytes_derive_again_identically_and_fail_closed_under_another_secret(
        tmp_path: Path) -> None:
    """The served bytes are derived on each read: a fresh source (another process, an
    empty cache) derives the very same bytes; a source keyed with another secret derives
    other bytes, and those are never served (they are not what the ledger holds)."""
    import orjson

    from detente.fingerprint import Fingerprinter
    from detente.release import ViewSource, read_releases
    from detente.store import Query

    node = Node.init(tmp_path / "us", "us", communities="coalition")
    try:
        node.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                          communities=frozenset({"coalition"}), tier=2)
        marked = indicator(labels=["isis", "c2", "syria", "financing"],
                           object_marking_refs=[TLP_2_0_IDS["green"]])
        public = indicator(labels=["isis", "c2"], object_marking_refs=[TLP_2_0_IDS["clear"]])
        node.store.put_many([validate(marked), validate(public)], Provenance())
        node.releaser.catch_up("fr")
        q = Query(versions=("all",))
        first = read_releases(node.store.engine, "fr", q, node.releaser.views)
        fresh = ViewSource(node.releaser.views.embedder)
        again = read_releases(node.store.engine, "fr", q, fresh)
        assert [v.view for v in first.views] == [v.view for v in again.views]
        assert {v.id for v in first.views} == {marked["id"], public["id"]}
        assert {v.id for v in first.views if v.fingerprint_id} == {marked["id"]}

        # Sixteen other secrets: what any of them derives is served only where it is the
        # logged bytes. A small view carries few fingerprint bits, so one secret in ~20
        # derives the very same bytes for it (and serving those is serving what the ledger
        # holds); the others' views of the marked indicator are refused.
        logged = {v.id: v.view for v in first.views}
        refused = 0
        for n in range(1, 17):
            other = Fingerprinter(bytes([n]) * 32)

            def embed(view: dict[str, object], partner: str, key: str,
                      other: Fingerprinter = other
                      ) -> tuple[dict[str, object], str | None, str | None]:
                result = other.embed(view, partner, object_key=key)
                return result.view, result.fingerprint_id, orjson.dumps(
                    result.record.to_json()).decode()

            wrong = read_releases(node.store.engine, "fr", q, ViewSource(embed))
            assert all(v.view == logged[v.id] for v in wrong.views)
            assert public["id"] in {v.id for v in wrong.views}
            refused += marked["id"] not in {v.id for v in wrong.views}
        assert refused >= 8, "other secrets derived the served bytes too often"
        # no source at all: the class view of a fingerprinted release is not served either
        bare = read_releases(node.store.engine, "fr", q, ViewSource(None))
        assert [v.id for v in bare.views] == [public["id"]]
    finally:
        node.close()
