"""The TAXII collection aliases partners exchange through, named once: ``releases`` (what a
node released to the caller; pulled by ``sync``) and ``inbox`` (where partners push)."""

from __future__ import annotations

__all__ = ["INBOX", "RELEASES"]

RELEASES = "releases"
INBOX = "inbox"
