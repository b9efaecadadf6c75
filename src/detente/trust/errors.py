"""Errors of the earned-trust engine."""

from __future__ import annotations

from detente.errors import NotFoundError, UsageError, ValidationError

__all__ = ["TrustConfigError", "TrustError", "UnknownObjectError"]


class TrustError(ValidationError):
    """Trust input that cannot be used (e.g. an empty reason for a refutation)."""


class UnknownObjectError(NotFoundError):
    """The object asked about was never observed by the trust engine."""


class TrustConfigError(UsageError):
    """A trust parameter is out of range."""
