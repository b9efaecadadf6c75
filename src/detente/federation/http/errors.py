"""Errors of the TAXII service and of request signatures, under :mod:`detente.errors`.

Each carries the HTTP status the one renderer
(:func:`detente.federation.http.render.error_response`)
uses, so a handler raises and never builds an error response itself.
"""

from __future__ import annotations

from detente.errors import AuthError, DetenteError, ForbiddenError, ValidationError

__all__ = [
    "BadTokenError",
    "ForbiddenError",
    "NonceReplayError",
    "NotAcceptableError",
    "RequestSignatureError",
    "TooLargeError",
    "UnsupportedMediaTypeError",
]


class RequestSignatureError(AuthError):
    """An HTTP Message Signature is missing, malformed, stale, or does not verify."""


class NonceReplayError(RequestSignatureError):
    """A signed request was seen before (its nonce is in the nonce cache)."""


class BadTokenError(ValidationError):
    """A TAXII ``next`` token is malformed, tampered with, or not the requester's."""


class NotAcceptableError(DetenteError):
    """The client does not accept the TAXII 2.1 media type."""

    http_status = 406


class UnsupportedMediaTypeError(DetenteError):
    """The request body is not of the TAXII 2.1 media type."""

    http_status = 415


class TooLargeError(DetenteError):
    """The request body is larger than ``max_request_bytes``."""

    http_status = 413
