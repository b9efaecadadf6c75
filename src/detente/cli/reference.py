"""The CLI reference (docs/cli.md), generated from the command tree itself.

`python -m detente.cli.reference > docs/cli.md` writes it; a test fails when the file and
the code disagree, so the reference never drifts.
"""

from __future__ import annotations

import sys
from typing import Any

from detente.cli.app import full_command

__all__ = ["render"]


def _params(command: Any) -> list[str]:
    lines = []
    for p in command.params:
        if p.name == "help":
            continue
        if p.param_type_name == "argument":
            lines.append(f"- `{p.name.upper()}`" + (f": {p.help}" if getattr(p, "help", None)
                                                      else ""))
            continue
        flags = ", ".join(f"`{o}`" for o in [*p.opts, *p.secondary_opts])
        text = getattr(p, "help", None) or ""
        default = p.default if p.default not in (None, False, (), []) and \
            not callable(p.default) else None
        extra = f" (default: {default})" if default is not None else ""
        lines.append(f"- {flags}: {text}{extra}".rstrip(": "))
    return lines


def _walk(command: Any, path: list[str], out: list[str]) -> None:
    sub = getattr(command, "commands", None)
    if sub:
        if path:
            out.append(f"## `detente {' '.join(path)}`\n\n{(command.help or '').strip()}\n")
            params = _params(command)
            if params:
                out.append("\n".join(params) + "\n")
        for name in sorted(sub):
            _walk(sub[name], [*path, name], out)
        return
    level = "###" if len(path) > 1 else "##"
    shown = path[:-1] if getattr(command, "hidden", False) else path  # a default command
    out.append(f"{level} `detente {' '.join(shown)}` …\n\n{(command.help or '').strip()}\n"
               if shown is not path else
               f"{level} `detente {' '.join(path)}`\n\n{(command.help or '').strip()}\n")
    params = _params(command)
    if params:
        out.append("\n".join(params) + "\n")


def render() -> str:
    out = ["# CLI reference\n",
           "Generated from the code by `python -m detente.cli.reference`; do not edit.\n"]
    _walk(full_command(), [], out)
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
