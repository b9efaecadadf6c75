"""Starlette's TestClient, imported without its httpx deprecation warning (warnings are
errors in this suite; the federation tests use their own transport for the same reason)."""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

__all__ = ["TestClient"]
