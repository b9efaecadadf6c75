"""The release layout at rest: a home made before it is refused clearly (or, holding no
release, moved on), and what a release costs at rest stays small."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

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

            def embed(view: dict[str, object], partner: str, key: str, *,
                      record: bool = True, encoded: bytes | None = None,
                      other: Fingerprinter = other
                      ) -> tuple[dict[str, object], str | None, str | None]:
                result = other.embed(view, partner, object_key=key)
                return result.view, result.fingerprint_id, orjson.dumps(
                    result.record.to_json()).decode() if record else None

            wrong = read_releases(node.store.engine, "fr", q, ViewSource(embed))
            assert all(v.view == logged[v.id] for v in wrong.views)
            assert public["id"] in {v.id for v in wrong.views}
            refused += marked["id"] not in {v.id for v in wrong.views}
        assert refused >= 8, "other secrets derived the served bytes too often"
        # no source at all: the class view of a fingerprinted release is not served either
        # — unless it is the logged bytes (the node's own secret, like one in ~20, may
        # embed nothing in a view this small)
        from detente.release import iter_release_records

        plain = {r.object_id: r.view_bytes for r in iter_release_records(
            node.store.engine, partner="fr", derive=False)}
        bare = read_releases(node.store.engine, "fr", q, ViewSource(None))
        assert [v.id for v in bare.views] == [
            v.id for v in first.views if v.view == plain[v.id]]
        assert public["id"] in {v.id for v in bare.views}
    finally:
        node.close()


def _layout_3(engine: sa.Engine) -> None:
    """Put the class views of a layout-4 home back in layout 3 (what detente wrote
    before): the object id as text, ``removed`` NULL when none, indexed by object id."""
    postgres = engine.dialect.name == "postgresql"
    md = sa.MetaData()
    sa.Table(
        "release_views", md,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=False),
        sa.Column("chunk", sa.BigInteger, nullable=False),
        sa.Column("slot", sa.Integer, nullable=False),
        sa.Column("marked", sa.Boolean, nullable=False),
        sa.Column("digest", sa.LargeBinary, nullable=False),
        sa.Column("object_id", sa.Text, nullable=False),
        sa.Column("version", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("spec_version", sa.Text),
        sa.Column("removed", sa.Text),
        sa.Index("ix_release_views_object", "object_id").ddl_if(dialect="sqlite"),
        sa.Index("ix_release_views_object_hash", "object_id",
                 postgresql_using="hash").ddl_if(dialect="postgresql"),
        sa.Index("ix_release_views_marking", "type",
                 sqlite_where=sa.text("type = 'marking-definition'"),
                 postgresql_where=sa.text("type = 'marking-definition'")))
    with writer(engine).begin() as conn:
        conn.execute(sa.text("ALTER TABLE release_views RENAME TO l4"))
        if postgres:
            conn.execute(sa.text("ALTER TABLE l4 DROP CONSTRAINT release_views_pkey"))
        for name in ("ix_release_views_uuid", "ix_release_views_uuid_hash",
                     "ix_release_views_marking"):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        md.create_all(conn)
        conn.execute(sa.text(
            "INSERT INTO release_views (id, chunk, slot, marked, digest, object_id, version, "
            "type, spec_version, removed) SELECT id, chunk, slot, marked, digest, "
            "type || '--' || CAST(uuid AS TEXT), version, type, spec_version, "
            "nullif(removed, '') FROM l4"))
        conn.execute(sa.text("DROP TABLE l4"))
        conn.execute(sa.text("UPDATE release_meta SET value = '3' WHERE key = 'layout'"))


def _layout_2(engine: sa.Engine) -> None:
    """Put the release tables of a layout-4 home back in layout 2 (what detente wrote
    before layout 3): release_rows keyed by seq with a (partner, seq) index, 8-byte view
    and batch, and an index on every view's type."""
    _layout_3(engine)
    postgres = engine.dialect.name == "postgresql"
    md = sa.MetaData()
    sa.Table(
        "release_rows", md,
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  primary_key=True, autoincrement=False),
        sa.Column("view", sa.BigInteger, nullable=False),
        sa.Column("batch", sa.BigInteger),
        sa.Column("withdrawn", sa.Boolean, nullable=False),
        sa.Column("partner", sa.Text, nullable=False),
        sa.Column("view_hash", sa.LargeBinary, nullable=False),
        sa.Index("ix_release_rows_partner_seq", "partner", "seq"),
        sa.Index("ix_release_rows_view_partner", "view", "partner").ddl_if(dialect="sqlite"),
        sa.Index("ix_release_rows_view", "view").ddl_if(dialect="postgresql"))
    cols = "seq, view, batch, withdrawn, partner, view_hash"
    with writer(engine).begin() as conn:
        conn.execute(sa.text("ALTER TABLE release_rows RENAME TO l3"))
        if postgres:
            conn.execute(sa.text("ALTER TABLE l3 DROP CONSTRAINT release_rows_pkey"))
        for name in ("ix_release_rows_view_partner", "ix_release_rows_view",
                     "ix_release_views_marking"):
            conn.execute(sa.text(f"DROP INDEX IF EXISTS {name}"))
        md.create_all(conn)
        conn.execute(sa.text(f"INSERT INTO release_rows ({cols}) SELECT {cols} FROM l3"))
        conn.execute(sa.text("DROP TABLE l3"))
        conn.execute(sa.text("CREATE INDEX ix_release_views_type ON release_views (type)"))
        conn.execute(sa.text("UPDATE release_meta SET value = '2' WHERE key = 'layout'"))


def _shape(engine: sa.Engine) -> tuple[str, list[str], set[str], set[str], list[str]]:
    """(layout, release_rows' key, its indexes, release_views' indexes, and columns)."""
    insp = sa.inspect(engine)
    with engine.connect() as conn:
        layout = conn.execute(sa.text(
            "SELECT value FROM release_meta WHERE key = 'layout'")).scalar_one()
    return (layout, insp.get_pk_constraint("release_rows")["constrained_columns"],
            {str(i["name"]) for i in insp.get_indexes("release_rows")},
            {str(i["name"]) for i in insp.get_indexes("release_views")},
            [str(c["name"]) for c in insp.get_columns("release_views")])


def _served(node: Node) -> dict[str, list[tuple[int, bytes]]]:
    from detente.release import read_releases
    from detente.store import Query

    return {p: [(v.date_added, v.view) for v in read_releases(
        node.store.engine, p, Query(versions=("all",)), node.releaser.views).views]
        for p in ("fr", "de")}


def _records(node: Node) -> list[tuple[Any, ...]]:
    """What trace reads of each release: partner, object id, version, seq, bytes,
    fingerprint and embed record, batch, withdrawn, hash."""
    from detente.release import iter_release_records

    return sorted((r.partner, r.object_id, r.version, r.released_at, r.view_bytes,
                   r.fingerprint_id, r.embed_record, r.ledger_index, r.withdrawn, r.view_hash)
                  for r in iter_release_records(node.store.engine))


@pytest.mark.parametrize("start", ["2", "3"])
def test_a_home_of_an_earlier_layout_is_moved_to_the_current_one_on_open(
        tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture, start: str) -> None:
    """A layout-2 home (release rows keyed by seq) or a layout-3 one (class views holding
    their object id as text) is moved, in one transaction when the node opens its store,
    to layout 4 (rows keyed by (partner, seq) — on SQLite a WITHOUT ROWID table — and
    each class view's object id kept as its UUID): the same releases are served the same
    bytes, proved by the same batches, trace reads the same records, release goes on
    after them — and a move cut short leaves the old layout as it was."""
    from detente.release.proofs import batch_entries

    home = tmp_path / "us"
    node = Node.init(home, "us", communities="coalition", store_url=store_url)
    for name, tier in (("fr", 2), ("de", 3)):
        node.partners.add(name, url="http://127.0.0.1:9001", public_key=_key(),
                          communities=frozenset({"coalition"}), tier=tier)
    objs = [indicator(labels=["c2", f"n{i}"], object_marking_refs=[TLP_2_0_IDS["green"]])
            for i in range(12)]
    node.store.put_many([validate(o) for o in objs[:8]], Provenance())
    for name in ("fr", "de"):
        node.releaser.catch_up(name)
    before = _served(node)
    records = _records(node)
    with node.store.engine.connect() as conn:
        batch_ids = [int(b) for b in conn.execute(sa.text(
            "SELECT DISTINCT batch FROM release_rows ORDER BY batch")).scalars()]
    assert node.ledger is not None
    proofs = [batch_entries(node.store.engine, node.ledger, b) for b in batch_ids]
    assert len(before["fr"]) == len(before["de"]) == 8
    assert {r[1] for r in records} == {o["id"] for o in objs[:8]}
    new_layout = _shape(node.store.engine)
    assert "uuid" in new_layout[4] and "object_id" not in new_layout[4]
    engine = node.store.engine
    (_layout_2 if start == "2" else _layout_3)(engine)
    old_layout = _shape(engine)
    assert "object_id" in old_layout[4] and "uuid" not in old_layout[4]
    if start == "2":
        assert old_layout[:3] == ("2", ["seq"], {"ix_release_rows_partner_seq",
                                                "ix_release_rows_view_partner"
                                                if "sqlite" in store_url else
                                                "ix_release_rows_view"})
    else:
        assert old_layout[:4] == ("3", *new_layout[1:3], {"ix_release_views_marking",
                                                         "ix_release_views_object"
                                                         if "sqlite" in store_url else
                                                         "ix_release_views_object_hash"})
    node.close()

    # a move that fails part-way changes nothing
    from detente.release import layout

    real = layout._from_3

    def broken(conn: sa.Connection) -> None:
        real(conn)
        raise RuntimeError("cut short")

    layout._from_3 = broken
    try:
        node = Node.open(home)
        with pytest.raises(RuntimeError, match="cut short"):
            _ = node.store
    finally:
        layout._from_3 = real
        node.close()
    check = sa.create_engine(engine.url)
    try:
        assert _shape(check) == old_layout
    finally:
        check.dispose()

    node = Node.open(home)
    try:
        caplog.clear()
        moved = _shape(node.store.engine)
        if start == "2":
            assert "moving 16 release rows to the release layout 4" in caplog.text
        assert "moving 8 class views to the release layout 4" in caplog.text
        assert moved == new_layout
        assert moved[:2] == ("4", ["partner", "seq"])
        if "sqlite" in store_url:
            with node.store.engine.connect() as conn:
                ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE "
                                           "name = 'release_rows'")).scalar_one()
            assert "WITHOUT ROWID" in ddl
        assert _served(node) == before
        assert _records(node) == records
        assert [batch_entries(node.store.engine, node.ledger, b) for b in batch_ids] \
            == proofs
        # release goes on after the moved rows (seq still increases node-wide), finding
        # the moved class views again (the partner of the other class shares them)
        node.store.put_many([validate(o) for o in objs[8:]], Provenance())
        node.releaser.catch_up("fr")
        node.releaser.catch_up("de")
        after = _served(node)
        assert after["fr"][:8] == before["fr"] and len(after["fr"]) == 12
        assert min(s for s, _v in after["fr"][8:]) > max(
            s for p in before.values() for s, _v in p)
        with node.store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(views)).scalar() == 12
    finally:
        node.close()
    node = Node.open(home)  # a second open finds layout 4: nothing to do
    try:
        assert _shape(node.store.engine) == new_layout
        assert _served(node)["fr"] == after["fr"]
    finally:
        node.close()


def test_a_class_view_whose_id_is_no_uuid_stops_the_move(tmp_path: Path,
                                                          store_url: str) -> None:
    """A layout-3 view whose object id is not ``<type>--<lower-case UUID>`` (the validator
    never admitted one) cannot be kept as a UUID: the move stops with a clear error and
    the home stays in layout 3."""
    home = tmp_path / "us"
    node = Node.init(home, "us", communities="coalition", store_url=store_url)
    node.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                      communities=frozenset({"coalition"}), tier=2)
    obj = indicator(labels=["c2"], object_marking_refs=[TLP_2_0_IDS["green"]])
    node.store.put_many([validate(obj)], Provenance())
    node.releaser.catch_up("fr")
    engine = node.store.engine
    _layout_3(engine)
    with writer(engine).begin() as conn:
        conn.execute(sa.text("UPDATE release_views SET object_id = upper(object_id)"))
    node.close()
    node = Node.open(home)
    try:
        with pytest.raises(StoreError, match="is not '<type>--<lower-case UUID>'"):
            _ = node.store
    finally:
        node.close()
    check = sa.create_engine(engine.url)
    try:
        assert _shape(check)[0] == "3"
    finally:
        check.dispose()


def test_object_ids_are_kept_as_uuids_and_found_exactly(tmp_path: Path,
                                                        store_url: str) -> None:
    """A class view keeps its object's UUID; the id comes back whole, and a lookup by id
    finds that object only — not another type's object with the same UUID.  An id that
    is no ``<type>--<UUID>`` cannot be kept (and finds nothing)."""
    from detente.release.ids import object_id_of, object_in, object_uuid

    assert object_uuid("indicator--" + "0" * 8 + "-0000-4000-8000-" + "0" * 12,
                       "indicator") == "0" * 8 + "-0000-4000-8000-" + "0" * 12
    for bad, kind in (("indicator--ABCDEF00-0000-4000-8000-000000000000", "indicator"),
                      ("malware--00000000-0000-4000-8000-000000000000", "indicator"),
                      ("indicator--not-a-uuid", "indicator")):
        with pytest.raises(StoreError, match="is not '<type>--<lower-case UUID>'"):
            object_uuid(bad, kind)
    node = Node.init(tmp_path / "us", "us", communities="coalition", store_url=store_url)
    try:
        node.partners.add("fr", url="http://127.0.0.1:9001", public_key=_key(),
                          communities=frozenset({"coalition"}), tier=2)
        one = indicator(labels=["c2"], object_marking_refs=[TLP_2_0_IDS["green"]])
        twin = {**indicator(labels=["c2"], object_marking_refs=[TLP_2_0_IDS["green"]]),
                "type": "malware", "is_family": False, "name": "twin",
                "id": "malware--" + one["id"].split("--")[1]}
        for k in ("pattern", "pattern_type", "valid_from", "indicator_types"):
            twin.pop(k, None)
        node.store.put_many([validate(one), validate(twin)], Provenance())
        node.releaser.catch_up("fr")
        v = views.c
        with node.store.engine.connect() as conn:
            assert sorted(conn.execute(sa.select(object_id_of(v))).scalars()) == sorted(
                [one["id"], twin["id"]])
            for oid in (one["id"], twin["id"]):
                assert list(conn.execute(sa.select(object_id_of(v)).where(
                    object_in(v, [oid]))).scalars()) == [oid]
            assert not conn.execute(sa.select(v.id).where(
                object_in(v, ["indicator--x", "nothing"]))).first()
        assert node.releaser.recipients_of(twin["id"]) == {"fr"}
    finally:
        node.close()
