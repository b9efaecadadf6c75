"""The CLI reference (docs/cli.md), generated from the command tree itself.

`python -m detente.cli.reference > docs/cli.md` writes it; a test fails when the file and
the code disagree, so the reference never drifts.
"""

from __future__ import annotations

import sys
from typing import Any

from detente.cli.app import full_command

__all__ = ["render"]

EXIT_CODES = """\
Every command exits **0** when it did what was asked, **1** when it failed or refused
something (an object rejected, a partner unreachable, an input with no object at all,
something not found), **2** for a usage error (an unknown option, a value outside an
option's set such as `--mode bogus`, a timestamp that is not one such as
`--since yesterday`, no node home).  Errors are one line on stderr (and a hint), never a
traceback.  `detente --version` prints the version; `--json` prints JSON where a command
reports something.  `detente list` prints whole ids; piped, one tab-separated line per
object (date added, id, name, origin).
"""


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
        desc = getattr(p, "type_descriptor", None)
        choices = desc.choices if desc is not None and desc.is_choice else None
        if choices:
            extra = f" (one of: {', '.join(map(str, choices))})" + extra
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
           "Generated from the code by `python -m detente.cli.reference`; do not edit.\n",
           EXIT_CODES]
    _walk(full_command(), [], out)
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
