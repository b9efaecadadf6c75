"""The clients of one process share one TLS context, and it still verifies servers."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest

from detente.federation.http.client import FeedClient, tls_context


def test_one_tls_context_that_verifies_certificates_and_host_names() -> None:
    ctx = tls_context()
    assert ctx is tls_context()
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The ``verify`` of every httpx client made while the test runs."""
    made: list[Any] = []
    real = httpx.Client.__init__

    def spy(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        made.append(kwargs.get("verify"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", spy)
    return made


def test_clients_without_a_test_transport_use_it(seen: list[Any]) -> None:
    with FeedClient("f", "https://feed.invalid/taxii2/"), \
            FeedClient("g", "https://other.invalid/taxii2/"):
        pass
    assert seen == [tls_context(), tls_context()]


def test_a_plain_http_client_loads_no_ca_and_would_verify_nothing(seen: list[Any]) -> None:
    """An http:// partner never gets TLS: its client does not pay for loading the CA
    bundle, and the context it holds verifies certificates against no CA at all (a TLS
    handshake, were one ever attempted, fails closed)."""
    with FeedClient("f", "http://feed.invalid/taxii2/"), \
            FeedClient("g", "HTTP://other.invalid/taxii2/"):
        pass
    (ctx, again) = seen
    assert ctx is again and ctx is not tls_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode is ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.get_ca_certs() == [] and ctx.cert_store_stats()["x509_ca"] == 0
