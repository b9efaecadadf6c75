"""The tables of the federation layer (nonces, TAXII status resources, sync cursors,
collected cosignatures, PSI budgets and planned operations): definitions only.

Each is read and written only by the module named beside it; ``detente.schema``
creates them with every other package's tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: cosignatures
cosignatures = sa.Table(
    "ledger_cosignatures",
    metadata,
    sa.Column("size", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("witness", sa.String(256), primary_key=True),
    sa.Column("root", sa.LargeBinary, nullable=False),
    sa.Column("key_hash", sa.LargeBinary, nullable=False),
    sa.Column("timestamp", sa.BigInteger, nullable=False),
    sa.Column("signature", sa.LargeBinary, nullable=False),
)

#: budgets
budgets_table = sa.Table(
    "deconflict_budgets",
    metadata,
    sa.Column("partner", sa.String(200), primary_key=True),
    sa.Column("items_per_query", sa.Integer, nullable=False),
    sa.Column("queries_per_day", sa.Integer, nullable=False),
    sa.Column("max_set_ratio", sa.Float, nullable=False),
)

#: sets
operations_table = sa.Table(
    "deconflict_operations",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("handle", sa.String(64), nullable=False, unique=True),
    sa.Column("latitude", sa.Float, nullable=False),
    sa.Column("longitude", sa.Float, nullable=False),
    sa.Column("radius_m", sa.Float, nullable=False),
    sa.Column("start", sa.String(40), nullable=False),
    sa.Column("end", sa.String(40), nullable=False),
    sa.Column("contact", sa.String(160), nullable=True),
)

#: nonces
seen_nonces = sa.Table(
    "seen_nonces", metadata,
    sa.Column("keyid", sa.Text, primary_key=True),
    sa.Column("nonce", sa.Text, primary_key=True),
    # unix seconds after which the row may be forgotten
    sa.Column("expires_at", sa.BigInteger, nullable=False),
    sa.Index("ix_seen_nonces_expires", "expires_at"),
)

#: status
taxii_status = sa.Table(
    "taxii_status", metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("requester", sa.Text, nullable=False),
    sa.Column("collection", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
)

#: cursors
sync_cursors = sa.Table(
    "sync_cursors", metadata,
    sa.Column("partner", sa.Text, primary_key=True),
    sa.Column("direction", sa.Text, primary_key=True),
    # TAXII added_after, integer microseconds (None: from the beginning)
    sa.Column("added_after", sa.BigInteger),
    # a `next` token continuing from added_after, when the partner gives no dates
    sa.Column("next_token", sa.Text),
    sa.Column("last_run", sa.BigInteger),
    sa.Column("last_error", sa.Text),
)

#: http.throttle: password attempts per key, counted before hashing, shared by workers
auth_failures = sa.Table(
    "auth_failures",
    metadata,
    # "<scope>:<key>": a client address (taxii, web-client) or an operator name (web-user)
    sa.Column("address", sa.Text, primary_key=True),
    # unix seconds when the key's window opened (its first attempt counted in it)
    sa.Column("window", sa.BigInteger, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)

#: exchange.intake: writes refused for an object the sender may not see (the operator's
#: record; the sender was answered exactly as for an unknown id)
refused_writes = sa.Table(
    "refused_writes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False, index=True),
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
)

#: exchange.intake: objects each partner pushed per day (the push budget)
push_budget = sa.Table(
    "push_budget",
    metadata,
    sa.Column("partner", sa.Text, primary_key=True),
    sa.Column("day", sa.BigInteger, nullable=False),
    sa.Column("objects", sa.BigInteger, nullable=False),
)

#: exchange.feeds: TAXII feeds this node pulls (credentials are kept apart, in owner-only
#: files of the node's home)
feeds = sa.Table(
    "feeds",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    # a collection id, alias or title (None: the server's only readable collection)
    sa.Column("collection", sa.Text),
    # none | basic | bearer
    sa.Column("auth", sa.Text, nullable=False),
    sa.Column("user", sa.Text),
    sa.Column("accept_corrections", sa.Boolean, nullable=False),
    sa.Column("added_at", sa.BigInteger, nullable=False),
)
