"""TAXII status resources, persisted (table ``taxii_status``), readable by their requester.

Intake is synchronous, so every status is ``complete`` when first returned; the resource
stays readable so a client polling it (as TAXII clients do) gets the same answer.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import sqlalchemy as sa

from detente.errors import NotFoundError
from detente.federation.exchange.intake import IntakeResult
from detente.federation.schema import taxii_status
from detente.stix.timestamps import format_micros
from detente.store.engine import writer

__all__ = ["StatusBook", "status_resource"]




def status_resource(status_id: str, result: IntakeResult) -> dict[str, Any]:
    """The TAXII 2.1 status resource of one intake (§2: a list property with no values is
    omitted, never ``[]``)."""
    doc: dict[str, Any] = {
        "id": status_id,
        "status": "complete",
        "request_timestamp": format_micros(result.received_at),
        "total_count": result.total,
        "success_count": len(result.successes),
        "failure_count": len(result.failures),
        "pending_count": 0,
    }
    if result.successes:
        doc["successes"] = [d.to_json() for d in result.successes]
    if result.failures:
        doc["failures"] = [d.to_json() for d in result.failures]
    return doc


class StatusBook:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def record(self, requester: str, collection: str, result: IntakeResult) -> bytes:
        """Persist the status of an intake; returns its JSON."""
        status_id = str(uuid.uuid4())
        body = orjson.dumps(status_resource(status_id, result))
        with writer(self.engine).begin() as conn:
            conn.execute(taxii_status.insert().values(
                id=status_id, requester=requester, collection=collection,
                created_at=result.received_at, body=body))
        return body

    def get(self, status_id: str, requester: str | None) -> bytes:
        """The status JSON; ``requester`` None (the operator) may read any."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(taxii_status.c.requester, taxii_status.c.body)
                               .where(taxii_status.c.id == status_id)).first()
        if row is None or (requester is not None and row[0] != requester):
            raise NotFoundError(f"no status {status_id}")
        return bytes(row[1])
