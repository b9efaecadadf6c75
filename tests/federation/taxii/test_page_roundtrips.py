"""A TAXII page on PostgreSQL: no connection ping (its reads retry once on a fresh
connection instead), and pages still served after the server dropped every connection."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from nacl.signing import SigningKey
from tests.federation.fed_fixtures import client_for
from tests.store.helpers import indicator

from detente.federation.taxii.server import create_app
from detente.node import Node
from detente.stix.validate import validate
from detente.stix.vocab import TLP_2_0_IDS
from detente.store import Provenance

OBJECTS = "/taxii2/api1/collections/releases/objects/"


def test_a_page_pings_no_connection_and_survives_a_restart(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    node = Node.init(tmp_path / "us", "us", communities="coalition", store_url=pg_url)
    try:
        key = base64.b64encode(bytes(SigningKey.generate().verify_key)).decode()
        node.partners.add("fr", url="http://127.0.0.1:9001", public_key=key,
                          communities=frozenset({"coalition"}), tier=2)
        _client, secret = node.partners.add_client("fr-misp", "fr")
        objs = [indicator(labels=["c2", f"n{i}"], object_marking_refs=[TLP_2_0_IDS["green"]])
                for i in range(3)]
        node.store.put_many([validate(o) for o in objs], Provenance())
        node.releaser.catch_up("fr")
        engine = node.store.engine
        pings: list[int] = []
        real = engine.dialect.do_ping

        def counted(dbapi_conn: Any) -> bool:
            pings.append(1)
            return bool(real(dbapi_conn))

        monkeypatch.setattr(engine.dialect, "do_ping", counted)
        with client_for(create_app(node), httpx.BasicAuth("fr-misp", secret)) as client:
            first = client.get(OBJECTS)
            assert first.status_code == 200
            ids = {o["id"] for o in first.json()["objects"]}
            assert ids == {o["id"] for o in objs}
            pings.clear()
            assert client.get(OBJECTS).json() == first.json()
            assert pings == [], "a page pinged its connections"
            # the server drops every connection of the node (what a restart does)
            admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    dropped = conn.execute(sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )).scalar_one()
            finally:
                admin.dispose()
            assert dropped >= 1
            again = client.get(OBJECTS)
            assert again.status_code == 200
            assert again.json() == first.json()
    finally:
        node.close()
