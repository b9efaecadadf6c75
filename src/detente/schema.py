"""Every table of a node, created in one place: :func:`create_schema`, at ``init`` and
``open``.

Each package owns its tables and is the only one to read or write them (see
docs/architecture.md); this module only gathers their definitions so that a node's
database is complete before anything runs, and no read path ever issues DDL.
"""

from __future__ import annotations

import sqlalchemy as sa

from detente.deconflict.budget import _metadata as deconflict_metadata
from detente.federation.schema import metadata as federation_metadata
from detente.ledger.schema import metadata as ledger_metadata
from detente.partners.book import metadata as partners_metadata
from detente.priority.book import metadata as priority_metadata
from detente.release.layout import check_layout as check_release_layout
from detente.release.layout import layout_current as release_layout_current
from detente.release.schema import metadata as release_metadata
from detente.rfi.book import metadata as rfi_metadata
from detente.store.base import Store
from detente.store.engine import writer
from detente.trust.schema import metadata as trust_metadata
from detente.web.schema import metadata as web_metadata

__all__ = ["create_schema"]

#: the owners' table definitions, in creation order
METADATA: tuple[sa.MetaData, ...] = (
    partners_metadata,
    ledger_metadata,
    release_metadata,
    trust_metadata,
    deconflict_metadata,
    federation_metadata,
    web_metadata,
    priority_metadata,
    rfi_metadata,
)


def create_schema(store: Store) -> None:
    """Create whatever tables are missing (the store's first, with its schema version),
    and move release tables of an earlier layout to this one (``docs/release.md``).

    A complete database is recognised by reads, so opening a node takes no write lock."""
    wanted = {name for md in METADATA for name in md.tables}
    present = set(sa.inspect(store.engine).get_table_names())
    if wanted <= present and store.current():
        with store.engine.connect() as conn:
            if release_layout_current(conn):
                return
    store.create()
    with writer(store.engine).begin() as conn:
        for md in METADATA:
            md.create_all(conn)
        check_release_layout(conn)
