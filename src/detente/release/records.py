"""Release records as evidence: what leak attribution and the trust engine read back."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa

from detente.release.schema import releases
from detente.store.engine import reader

__all__ = ["ReleaseRecord", "iter_release_records"]


@dataclass(frozen=True, slots=True)
class ReleaseRecord:
    """One view served to one partner (satisfies fingerprint's ReleaseRecordLike)."""

    partner: str
    object_id: str
    version: str
    released_at: int
    view_bytes: bytes
    fingerprint_id: str | None
    embed_record: str | None
    ledger_index: int | None
    withdrawn: bool

    @property
    def object_key(self) -> str:
        return f"{self.object_id}|{self.version}"

    @property
    def view(self) -> dict[str, Any]:
        value = orjson.loads(self.view_bytes)
        assert isinstance(value, dict)
        return value

    @property
    def fingerprint(self) -> dict[str, Any]:
        return orjson.loads(self.embed_record) if self.embed_record else {}


def iter_release_records(
    engine: sa.Engine, *, partner: str | None = None, include_withdrawn: bool = True,
    fingerprinted_only: bool = False, batch: int = 2000,
) -> Iterator[ReleaseRecord]:
    """Every release row (withdrawn ones too by default: a leak may predate withdrawal)."""
    cond: list[sa.ColumnElement[bool]] = []
    if partner is not None:
        cond.append(releases.c.partner == partner)
    if not include_withdrawn:
        cond.append(releases.c.withdrawn.is_(False))
    if fingerprinted_only:
        cond.append(releases.c.embed_record.is_not(None))
    cols = (releases.c.partner, releases.c.object_id, releases.c.version, releases.c.seq,
            releases.c.view, releases.c.fingerprint_id, releases.c.embed_record,
            releases.c.ledger_index, releases.c.withdrawn)
    after = -1
    while True:
        stmt = (sa.select(*cols).where(*cond, releases.c.seq > after)
                .order_by(releases.c.seq).limit(batch))
        with reader(engine).connect() as conn:
            rows = conn.execute(stmt).all()
        for r in rows:
            yield ReleaseRecord(r[0], r[1], r[2], int(r[3]), bytes(r[4]), r[5], r[6],
                                None if r[7] is None else int(r[7]), bool(r[8]))
        if len(rows) < batch:
            return
        after = int(rows[-1][3])
