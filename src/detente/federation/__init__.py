"""Federation: the TAXII 2.1 service, request signatures, authentication and intake.

Others call: :func:`create_app` (the ASGI app; mount more routes with ``extra_routes``),
:func:`authenticate` (the principal of any request to the app), :func:`receive` (the one
intake path, shared with the sync client), and the signing helpers :func:`sign_request`,
:class:`NodeAuth` (httpx), :func:`verify_response`.
"""

from detente.federation.auth import Gate, Kind, Principal, authenticate
from detente.federation.intake import IntakeHook, IntakeResult, Received, receive
from detente.federation.server import API_ROOT, create_app
from detente.federation.signatures import (
    NodeAuth,
    VerifiedRequest,
    sign_request,
    sign_response_headers,
    verify_request,
    verify_response,
)

__all__ = [
    "API_ROOT",
    "Gate",
    "IntakeHook",
    "IntakeResult",
    "Kind",
    "NodeAuth",
    "Principal",
    "Received",
    "VerifiedRequest",
    "authenticate",
    "create_app",
    "receive",
    "sign_request",
    "sign_response_headers",
    "verify_request",
    "verify_response",
]
