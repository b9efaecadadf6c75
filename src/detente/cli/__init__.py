"""The ``detente`` command: a thin edge over the capability packages."""

import time

#: when the CLI package was first imported (a fallback for the whole command's wall time)
IMPORTED_AT = time.perf_counter()

from detente.cli.app import app, main  # noqa: E402

__all__ = ["IMPORTED_AT", "app", "main"]
