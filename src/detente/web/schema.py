"""The analyst UI's tables (operators, sessions): definitions only; created by
``detente.schema`` with every other package's tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: operators
operators_t = sa.Table(
    "web_operators", metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", sa.BigInteger, nullable=False),
)

#: sessions
sessions_t = sa.Table(
    "web_sessions", metadata,
    sa.Column("id_hash", sa.Text, primary_key=True),
    sa.Column("operator", sa.Text, nullable=False, index=True),
    sa.Column("csrf", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=False),
)
