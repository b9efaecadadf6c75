"""Errors of private deconfliction, under detente's one error tree.

Every hostile or broken input (a malformed, truncated, replayed or out-of-order message, an
item that cannot be canonicalised) ends here with a message naming what was wrong.
"""

from __future__ import annotations

from detente.errors import DetenteError, ForbiddenError, UsageError, ValidationError

__all__ = [
    "BudgetExceeded",
    "DeconflictError",
    "EncodingError",
    "ProtocolError",
    "ReplayError",
    "UnsupportedVersion",
    "WrongModeError",
]


class DeconflictError(DetenteError):
    """Base of every deconfliction error."""


class ProtocolError(DeconflictError, ValidationError):
    """A PSI message is malformed, truncated, out of order or inconsistent: the session aborts."""


class UnsupportedVersion(ProtocolError):
    """The message speaks a protocol version this node does not."""


class ReplayError(ProtocolError):
    """A message (or a session id) was seen before."""


class EncodingError(DeconflictError, ValidationError):
    """An item (observable, name, place-and-time) cannot be put in canonical form."""


class WrongModeError(DeconflictError, UsageError):
    """An API call that does not belong to the session's mode."""


class BudgetExceeded(DeconflictError, ForbiddenError):
    """The partner's query budget refuses this query; ``reason`` says which limit."""

    http_status = 429

    def __init__(self, message: str, *, reason: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.reason = reason
