"""The ``detente`` command: a thin edge over the capability packages."""

from detente.cli.app import app, main

__all__ = ["app", "main"]
