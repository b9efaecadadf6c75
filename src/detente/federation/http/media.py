"""TAXII 2.1 media types: what a client accepts (406) and what it sends (415)."""

from __future__ import annotations

from detente.federation.http.errors import NotAcceptableError, UnsupportedMediaTypeError

__all__ = ["check_accept", "check_content_type", "parse_media"]

_TAXII = "application/taxii+json"
_ACCEPT_HINT = "send Accept: application/taxii+json;version=2.1"


def parse_media(value: str) -> tuple[str, dict[str, str]]:
    """``type/subtype`` in lowercase and its parameters (names lowercase, quotes removed)."""
    head, *params = value.split(";")
    out: dict[str, str] = {}
    for p in params:
        name, sep, val = p.partition("=")
        if sep:
            out[name.strip().lower()] = val.strip().strip('"')
    return head.strip().lower(), out


def _acceptable(item: str) -> bool:
    media, params = parse_media(item)
    if params.get("q", "1").strip() in {"0", "0.0", "0.00", "0.000"}:
        return False
    if media in {"*/*", "application/*"}:
        return True
    return media == _TAXII and params.get("version", "2.1") == "2.1"


def check_accept(header: str | None) -> None:
    """Refuse (406) a client that does not accept TAXII 2.1 JSON; no header means any."""
    if header is None or not header.strip():
        return
    if not any(_acceptable(item) for item in header.split(",")):
        raise NotAcceptableError(
            f"this server only answers application/taxii+json;version=2.1, not {header!r}",
            hint=_ACCEPT_HINT,
        )


def check_content_type(header: str | None) -> None:
    """Require (415) ``application/taxii+json;version=2.1`` on a request body."""
    media, params = parse_media(header or "")
    if media != _TAXII or params.get("version") != "2.1":
        raise UnsupportedMediaTypeError(
            f"request body must be application/taxii+json;version=2.1, not {header or 'untyped'}",
            hint="send Content-Type: application/taxii+json;version=2.1",
        )
