"""Errors of the STIX layer, under :class:`detente.errors.ValidationError`.

Every message names the object (its id, or its type when the id itself is unusable) and the
property path that was wrong, e.g. ``indicator--… pattern: expected ']' at offset 31``, so the
CLI and the TAXII status resource can report a refusal without a traceback.
"""

from __future__ import annotations

from detente.errors import ValidationError

__all__ = ["PatternError", "StixValidationError"]


class StixValidationError(ValidationError):
    """A STIX object was refused; ``where`` is the object, ``path`` the property path."""

    def __init__(self, where: str, path: str, reason: str, *, hint: str | None = None) -> None:
        message = f"{where} {path}: {reason}" if path else f"{where}: {reason}"
        super().__init__(message, hint=hint)
        self.where = where
        self.path = path
        self.reason = reason


class PatternError(StixValidationError):
    """An indicator's STIX pattern is not a valid STIX 2.1 pattern."""
