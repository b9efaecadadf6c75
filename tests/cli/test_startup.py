"""`detente --help` imports no heavy library: command modules load when their command runs."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from detente.cli.app import COMMANDS, full_command, load_command

HEAVY = ("stix2", "sqlalchemy", "uvicorn", "nacl", "starlette", "jinja2", "misp_stix",
         "argon2", "detente.node", "detente.store", "detente.cli.node_cmds")

_PROBE = """
import sys
sys.argv = ["detente", *{args!r}]
from detente.cli.app import main
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\nMODULES", " ".join(sorted(sys.modules)))
print("CODE", code)
"""


def _modules_after(*args: str) -> tuple[set[str], str]:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(args=list(args))],
                          capture_output=True, text=True, timeout=60, check=True)
    lines = done.stdout.splitlines()
    mods = next(line for line in lines if line.startswith("MODULES ")).split()[1:]
    code = next(line for line in lines if line.startswith("CODE ")).split()[1]
    return set(mods), code


@pytest.mark.parametrize("args", [("--help",), ("--version",), ()])
def test_root_help_and_version_import_nothing_heavy(args: tuple[str, ...]) -> None:
    mods, code = _modules_after(*args)
    assert code in {"0", "2"}  # no arguments prints the help (click exits 2 there)
    loaded = sorted(m for m in mods if m.split(".")[0] in HEAVY or m in HEAVY
                    or any(m.startswith(h + ".") for h in HEAVY))
    assert not loaded, f"`detente {' '.join(args)}` imported {loaded[:10]}"


def test_a_command_help_imports_only_its_own_module() -> None:
    mods, code = _modules_after("policy", "--help")
    assert code == "0"
    assert "detente.cli.policy_cmds" in mods
    others = {f"detente.cli.{m}" for n, (ms, _) in COMMANDS.items() for m in ms
              if n != "policy"} - {"detente.cli.policy_cmds"}
    assert not (mods & others), sorted(mods & others)


def test_version_prints_the_package_version() -> None:
    from detente import __version__

    done = subprocess.run([sys.executable, "-m", "detente.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert done.stdout.strip() == f"detente {__version__}"


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_root_listing_is_each_commands_own_first_line(name: str) -> None:
    command = load_command(name)
    first = " ".join((command.help or "").split("\n\n")[0].split())
    assert COMMANDS[name][1] == first


def test_every_command_module_is_listed_and_defines_only_listed_commands() -> None:
    import detente.cli

    package = Path(detente.cli.__file__).parent
    modules = {p.stem for p in package.glob("*_cmds.py")}
    assert modules == {m for ms, _ in COMMANDS.values() for m in ms}, "add it to COMMANDS"
    scratch = typer.Typer()
    for module in sorted(modules):
        importlib.import_module(f"detente.cli.{module}").register(scratch)
    assert set(typer.main.get_group(scratch).commands) == set(COMMANDS)
    assert set(full_command().commands) == set(COMMANDS)
