"""Errors of the release policy.

``decide`` never raises on hostile input: a malformed marking becomes a DENY with the
reason.  These errors are for the builders (``releasability_marking``) and callers that
hand the policy something that cannot be a marking at all.
"""

from __future__ import annotations

from detente.errors import DetenteError, ValidationError

__all__ = ["MalformedMarkingError", "PolicyError"]


class PolicyError(DetenteError):
    """The release policy could not do what was asked."""


class MalformedMarkingError(PolicyError, ValidationError):
    """A marking (e.g. a detente releasability marking) breaks its schema."""
