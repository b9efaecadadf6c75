"""Root of the ``detente`` command and its one error renderer.

A user's mistake prints one line (what, where, how to fix) on stderr and exits 2 for
usage, 1 for failure; never a traceback.  Command groups live in sibling modules, named
in :data:`COMMANDS` and imported only when one of their commands runs, so that
``detente --help`` (and every command) pays only for what it uses: no STIX library,
database driver or web server is imported to print the help.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from detente.errors import DetenteError

if TYPE_CHECKING:
    from detente.node import Node

#: Every top-level command: its name, the ``detente.cli`` modules whose ``register(app)``
#: defines it (imported on demand), and the one line the root help shows for it (a test
#: checks it is the command's own first line).  Add a command here.
COMMANDS: dict[str, tuple[tuple[str, ...], str]] = {
    "init": (("node_cmds",), "Create a node home: settings, Ed25519 key pair, STIX identity "
             "and store."),
    "identity": (("node_cmds",), "Print what partners need to know about this node."),
    "ingest": (("node_cmds",), "Validate and store STIX 2.1 content (MISP events are "
               "converted with misp-stix); valid objects are kept even if others fail."),
    "show": (("node_cmds",), "Print one object (latest version unless told otherwise)."),
    "list": (("node_cmds",), "List the latest versions stored, oldest first."),
    "search": (("node_cmds",), "Find objects by observable value (in patterns and SCOs), "
               "name, alias, description or ATT&CK id; names matches first, then newest "
               "first. Without QUERY, list the newest."),
    "export": (("node_cmds",), "Write stored objects as one STIX bundle (to stdout or "
               "--output), or as a MISP feed."),
    "release": (("release_cmds",), "Release to partners what was stored since their last "
                "release, now (``serve`` does it in the background every "
                "release_interval_s)."),
    "serve": (("serve_cmds",), "Serve the node: TAXII 2.1 at /taxii2/, the ledger at "
              "/ledger/, private deconfliction at /deconflict/ and the analyst UI at / "
              "(Starlette on uvicorn)."),
    "sync": (("sync_cmds",), "Pull what each partner released to us (its TAXII `releases` "
             "collection), then every feed; exits 1 if a source failed or anything was "
             "rejected (all listed)."),
    "push": (("sync_cmds",), "Push our views for PARTNER to its `inbox`, following each "
             "status to completion."),
    "grade": (("trust_cmds",), "One object's information credibility (1-6), STIX "
              "confidence and the reasons."),
    "trace": (("trace_cmds",), "Match an artifact to this node's releases and name the "
              "recipients it came from."),
    "demo": (("demo_cmds",), "Play the scenario: the U.S., France and Russia against ISIS, "
             "on 127.0.0.1."),
    "partner": (("partner_cmds", "sync_cmds"), "Partners: other nodes this node shares "
                "with."),
    "client": (("partner_cmds",), "TAXII client credentials (Basic or bearer)."),
    "policy": (("policy_cmds",), "Release policy: decisions and their reasons."),
    "key": (("sync_cmds",), "This node's Ed25519 key: rotation."),
    "log": (("log_cmds",), "The ledger: a Merkle log with signed checkpoints."),
    "evidence": (("trust_cmds",),
                 "Evidence about partners' reports: confirm, refute, sight, adopt."),
    "review": (("trust_cmds",), "Reviews opened by refuted high-importance reports."),
    "deconflict": (("deconflict_cmds",), "Private deconfliction (PSI) with a partner: "
                   "`detente deconflict PARTNER --mode M (--items FILE | --observables | "
                   "--operations FILE | --alignment FILE)`, or with a coalition: `detente "
                   "deconflict --with P --with Q --threshold T [--reconstructor R] (--observables "
                   "FILE | --names FILE | --operations FILE)`; T >= 3 needs a reconstructor R "
                   "holding no items."),
    "operator": (("web_cmds",), "Operator accounts of the web UI (argon2id-hashed "
                 "passwords)."),
    "feed": (("sync_cmds",), "TAXII 2.1 feeds this node pulls (any server; unsigned)."),
    "claim": (("log_cmds",), "Claim priority on an object without releasing it, and prove "
              "it to partners later."),
    "rfi": (("trust_cmds",), "Requests for information: ask chosen partners, answer, "
            "credit."),
    "credit": (("trust_cmds",), "What each partner gave us, each item with the ledger entry "
               "that proves it."),
}

# The command modules registered so far, into one Typer that is never run itself: a
# module registers once (``sync_cmds`` also adds commands to ``partner``'s group).
_loaded = typer.Typer()
_registered: set[str] = set()


def load_command(name: str) -> Any:
    """The click command ``name``, importing and registering its modules first."""
    for module in COMMANDS[name][0]:
        if module not in _registered:
            importlib.import_module(f"detente.cli.{module}").register(_loaded)
            _registered.add(module)
    return typer.main.get_group(_loaded).commands[name]


class _LazyGroup(TyperGroup):
    """The root group: commands come from :data:`COMMANDS` when first asked for; the
    root help lists them from their one line, importing none of them."""

    _listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(n for n in super().list_commands(ctx) if n not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            if self._listing:
                return TyperCommand(name=cmd_name, help=COMMANDS[cmd_name][1])
            self.commands[cmd_name] = load_command(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


_TYPE_LABELS = {"bool": None, "str": "TEXT", "int": "INTEGER", "float": "NUMBER",
                "path": "PATH", "file": "FILE", "directory": "DIR", "int range": "INTEGER",
                "float range": "NUMBER"}


def _type_label(param: Any, ctx: Any) -> str | None:
    """What a parameter's value is, as the help shows it: ``PATH``, ``INTEGER``, the
    choices; nothing for a flag.  (Typer prints Python annotations such as
    ``<list[Path]>`` or ``<bool>``, which tell a user nothing.)"""
    if param.metavar is not None:
        return str(param.metavar)
    if getattr(param, "is_flag", False):
        return None
    raw = str(param.display_type(ctx)).removeprefix("<").removesuffix(">")
    if raw.startswith("list[") and raw.endswith("]"):
        raw = raw[5:-1]
    return _TYPE_LABELS.get(raw, raw if "|" in raw else raw.upper())


def _plain_types() -> None:
    from typer.core import TyperArgument, TyperOption

    for cls in (TyperArgument, TyperOption):
        cls.display_type_rich = _type_label  # type: ignore[method-assign,assignment]


_plain_types()

app = typer.Typer(
    name="detente",
    cls=_LazyGroup,
    help="Share intelligence with partners you don't fully trust.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="node home directory (default: $DETENTE_HOME)",
                 show_default=False),
]


def _print_version(value: bool) -> None:
    if value:
        from detente import __version__

        sys.stdout.write(f"detente {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", help="print detente's version and exit", is_eager=True,
        callback=_print_version)] = False,
) -> None:
    """Share intelligence with partners you don't fully trust."""


def full_command() -> Any:
    """The root click group with every command loaded (the reference and tests walk it)."""
    root = typer.main.get_group(app)
    for name in COMMANDS:
        root.get_command(typer.Context(root), name)
    return root


def one_of(values: Iterable[str]) -> Callable[[str | None], str | None]:
    """An option callback accepting only ``values`` (a usage error, exit 2, otherwise)."""
    allowed = sorted(values)

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}")
        return value

    return check


def http_url(value: str | None) -> str | None:
    """An option callback: an http:// or https:// URL, or a usage error."""
    if value is not None and not value.startswith(("http://", "https://")):
        raise typer.BadParameter(f"{value!r} must start with http:// or https://")
    return value


def stix_timestamp(value: str | None) -> str | None:
    """An option callback: a STIX timestamp (RFC 3339 UTC with a Z), or a usage error."""
    if value is None:
        return None
    from detente.stix.timestamps import micros_from_stix

    try:
        micros_from_stix(value)
    except DetenteError:
        raise typer.BadParameter(f"{value!r} is not a STIX timestamp: use RFC 3339 UTC with "
                                 "a Z, e.g. 2016-05-12T08:17:27.000Z") from None
    return value


_opened: list[Node] = []


def open_node(home: Path | None) -> Node:
    """Open the node a command works on; `main` closes it when the command ends."""
    from detente.node import Node, find_home

    node = Node.open(find_home(home))
    _opened.append(node)
    return node


def close_nodes() -> None:
    while _opened:
        _opened.pop().close()


def report_error(exc: DetenteError) -> int:
    err_console.print(f"[bold red]error:[/] {exc.message}", highlight=False, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[dim]hint:[/] {exc.hint}", highlight=False, soft_wrap=True)
    return exc.exit_code


def _click_classes() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Click's ClickException and Abort, in click itself and in typer's vendored copy."""
    import click

    exceptions: list[type[BaseException]] = [click.ClickException]
    vendored = getattr(getattr(typer, "_click", None), "exceptions", None)
    if vendored is not None:
        exceptions.append(vendored.ClickException)
    return tuple(exceptions), (click.Abort, typer.Abort)


def _click_exit(exc: BaseException) -> int | None:
    """Render a usage error or abort the way click would; None if it is neither."""
    exceptions, aborts = _click_classes()
    if isinstance(exc, aborts):
        err_console.print("aborted")
        return 1
    if isinstance(exc, exceptions):
        exc.show()  # type: ignore[attr-defined]
        return int(getattr(exc, "exit_code", 1))
    return None


def _run() -> object:
    try:
        return app(standalone_mode=False)
    finally:
        close_nodes()


def main() -> None:
    """Entry point of the console script."""
    try:
        result = _run()
    except DetenteError as exc:
        sys.exit(report_error(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        code = _click_exit(exc)
        if code is None:
            raise
        sys.exit(code)
    sys.exit(result if isinstance(result, int) else 0)
