"""docs/cli.md is generated from the command tree: it must match the code."""

from __future__ import annotations

from pathlib import Path

from detente.cli.reference import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_cli_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), (
        "docs/cli.md is stale: run `python -m detente.cli.reference > docs/cli.md`")


def test_every_command_is_documented_with_help() -> None:
    text = render()
    for command in ("init", "ingest", "serve", "sync", "push", "trace", "demo", "grade",
                    "partner add", "policy matrix", "log verify", "deconflict budget",
                    "operator add", "evidence refute", "key rotate"):
        assert f"`detente {command}`" in text
    sections = text.split("\n## ")[1:]
    assert all(len(s.strip().splitlines()) >= 3 for s in sections), "a command without help"
