"""The trust engine's own tables (prefixed ``trust_``), in the node's store database.

Assertions are per (partner, object id): later versions of one object add claims to the
same assertion, so a partner cannot multiply evidence by re-versioning.  ``seq`` is the
store's ``date_added`` (intake order, the order the receipt ledger records), ``time`` the
provenance ``received_at``; both integer microseconds.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["assertions", "claims", "derived", "extrefs", "grades", "links", "metadata",
           "opinions", "released_claims", "released_cursor", "reviews", "tier_log", "tiers",
           "topics"]

metadata = sa.MetaData()

assertions = sa.Table(
    "trust_assertions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("importance", sa.Float, nullable=False),
    # the whole object is an echo (flagged by federation, or an id we released to it)
    sa.Column("echo", sa.Boolean, nullable=False),
    sa.Column("echo_reason", sa.Text),
    sa.Column("revoked", sa.Boolean, nullable=False),
    sa.Column("valid_until", sa.BigInteger),
    # confirmed / refuted / expired, when and why
    sa.Column("outcome", sa.Text),
    sa.Column("outcome_at", sa.BigInteger),
    sa.Column("outcome_why", sa.Text),
    sa.UniqueConstraint("partner", "object_id", name="uq_trust_assertion"),
    sa.Index("ix_trust_assertions_object", "object_id"),
)

claims = sa.Table(
    "trust_claims", metadata,
    sa.Column("assertion_id", sa.Integer, nullable=False),
    sa.Column("key", sa.String(40), nullable=False),
    sa.Column("claim", sa.Text, nullable=False),
    # this claim was released by us to the asserting partner before it sent it
    sa.Column("echo", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("assertion_id", "key"),
    sa.Index("ix_trust_claims_key", "key"),
)

topics = sa.Table(
    "trust_topics", metadata,
    sa.Column("assertion_id", sa.Integer, nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("assertion_id", "topic"),
)

extrefs = sa.Table(
    "trust_extrefs", metadata,
    sa.Column("assertion_id", sa.Integer, nullable=False),
    sa.Column("ref", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("assertion_id", "ref"),
)

# an earlier and a later assertion of a shared claim, by different sources
links = sa.Table(
    "trust_links", metadata,
    sa.Column("first", sa.Integer, nullable=False),
    sa.Column("later", sa.Integer, nullable=False),
    sa.Column("independent", sa.Boolean, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("first", "later"),
    sa.Index("ix_trust_links_later", "later"),
)

# declared derived-from relationships between two objects
derived = sa.Table(
    "trust_derived", metadata,
    sa.Column("source_id", sa.Text, nullable=False),
    sa.Column("target_id", sa.Text, nullable=False),
    sa.PrimaryKeyConstraint("source_id", "target_id"),
)

# claims of what we released to each partner (an index of the release records)
released_claims = sa.Table(
    "trust_released_claims", metadata,
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("key", sa.String(40), nullable=False),
    sa.Column("first_seq", sa.BigInteger, nullable=False),
    sa.Column("importance", sa.Float, nullable=False),
    sa.PrimaryKeyConstraint("partner", "key"),
)

released_cursor = sa.Table(
    "trust_released_cursor", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

reviews = sa.Table(
    "trust_reviews", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("opened_at", sa.BigInteger, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("tier_before", sa.Integer, nullable=False),
    sa.Column("tier_cap", sa.Integer, nullable=False),
    sa.Column("closed_at", sa.BigInteger),
    sa.Column("closed_why", sa.Text),
)

#: protocol deviations by a partner (e.g. a deconfliction session left after it learned the
#: result and before we did): evidence, and a review once they repeat
deviations = sa.Table(
    "trust_deviations", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("at", sa.BigInteger, nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.UniqueConstraint("partner", "subject", name="uq_trust_deviation"),
    sa.Index("ix_trust_deviations_partner_at", "partner", "at"),
)

#: one row, bumped by every transaction that changes what the trust model is built from,
#: so an engine in another process (a second ``serve`` worker, the CLI) knows its cached
#: model is stale
generation = sa.Table(
    "trust_generation", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("value", sa.BigInteger, nullable=False),
)

tiers = sa.Table(
    "trust_tiers", metadata,
    sa.Column("partner", sa.Text, primary_key=True),
    sa.Column("tier", sa.Integer, nullable=False),
    sa.Column("previous", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("since", sa.BigInteger, nullable=False),
    # the change was not yet handed to the caller (tier_changes) for re-evaluation
    sa.Column("announced", sa.Boolean, nullable=False),
)

tier_log = sa.Table(
    "trust_tier_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("old", sa.Integer, nullable=False),
    sa.Column("new", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
)

# a partner's overall reliability each time tiers are refreshed and it moved (the trend)
reliability_log = sa.Table(
    "trust_reliability_log", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.Column("mean", sa.Float, nullable=False),
    sa.Column("low", sa.Float, nullable=False),
    sa.Column("high", sa.Float, nullable=False),
    sa.Column("n", sa.Float, nullable=False),
    sa.Index("ix_trust_reliability_log_partner", "partner", "time"),
)

# the latest grade of each object, kept beside (never inside) the partner's object
grades = sa.Table(
    "trust_grades", metadata,
    sa.Column("object_id", sa.Text, primary_key=True),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("credibility", sa.Integer, nullable=False),
    sa.Column("confidence", sa.Integer),
    sa.Column("source_grade", sa.Text, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("graded_at", sa.BigInteger, nullable=False),
)

#: opinions (STIX ``opinion``) about objects we hold: a partner's are evidence about that
#: partner (see ``opinions/``); ours (partner ``local``) are shown beside them.
#: One row per (opinion, object it names); a later version of the opinion replaces it.
opinions = sa.Table(
    "trust_opinions", metadata,
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("object_id", sa.Text, nullable=False),
    sa.Column("version", sa.Text, nullable=False),
    sa.Column("partner", sa.Text, nullable=False),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("stance", sa.Integer, nullable=False),
    sa.Column("explanation", sa.Text, nullable=False),
    sa.Column("time", sa.BigInteger, nullable=False),
    sa.PrimaryKeyConstraint("id", "object_id"),
    sa.Index("ix_trust_opinions_object", "object_id"),
    sa.Index("ix_trust_opinions_partner", "partner"),
)
