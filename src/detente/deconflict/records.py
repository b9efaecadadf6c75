"""What each node records about a deconfliction session: mode, sizes, counts, never items.

The ledger (built elsewhere) stores these; this package only produces them. A record is
written for every session a node takes part in, including refused and aborted ones, so a
partner's probing shows up in the node's own log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["Outcome", "Role", "SessionRecord"]


class Role(StrEnum):
    REQUESTER = "requester"
    RESPONDER = "responder"


class Outcome(StrEnum):
    COMPLETED = "completed"
    REFUSED = "refused"  # a budget said no; ``reason`` names the limit
    ABORTED = "aborted"  # a message was malformed, replayed, out of order or inconsistent
    PENDING = "pending"  # waiting for the partner's reveal; ends completed or aborted


@dataclass(frozen=True)
class SessionRecord:
    """One node's account of one session. ``matches`` is what *this* node learned (if any)."""

    session_id: str  # hex
    role: Role
    partner: str
    mode: str
    protocol_version: int
    at: datetime
    local_size: int  # how many items this node put in
    remote_size: int | None  # how many the partner put in, as far as this node saw
    matches: int | None  # None when this node learns no count (e.g. the responder)
    outcome: Outcome
    step: int  # the last protocol step this node completed
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for the ledger."""
        out = asdict(self)
        out["role"] = self.role.value
        out["outcome"] = self.outcome.value
        out["at"] = self.at.isoformat()
        return out
