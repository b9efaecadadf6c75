"""The one error tree of detente.

Every failure a user, a partner or an operator can cause is a :class:`DetenteError`.
Untrusted input (STIX from partners, TAXII requests, proofs, PSI messages) must never
surface as a bare ``KeyError``/``ValueError``: wrap it in the subclass that names what was
wrong.  Each error carries a one-line ``message`` (what, where) and an optional ``hint``
(how to fix), which the CLI prints without a traceback and the TAXII service renders as a
TAXII error message.
"""

from __future__ import annotations


class DetenteError(Exception):
    """Base of every detente error. ``exit_code`` is what the CLI exits with."""

    exit_code = 1
    http_status = 500

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(DetenteError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2
    http_status = 400


class ConfigError(DetenteError):
    """The node home or a setting is missing or wrong."""

    exit_code = 2


class NotFoundError(DetenteError):
    """The thing asked for does not exist (or may not be seen: the same answer)."""

    http_status = 404


class ValidationError(DetenteError):
    """Input is malformed: not JSON, not STIX 2.1, a bad envelope, a bad message."""

    http_status = 400


class ConflictError(DetenteError):
    """The input contradicts what is stored (e.g. two contents for one id and version)."""

    http_status = 409


class StoreError(DetenteError):
    """The store could not do what was asked (connection, schema, transaction)."""


class AuthError(DetenteError):
    """Authentication or authorization failed. Security decisions fail closed."""

    http_status = 401


class ForbiddenError(AuthError):
    """Authenticated, but not allowed."""

    http_status = 403
