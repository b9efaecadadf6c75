"""``detente serve``: the node's TAXII 2.1 service on uvicorn.

Client credentials for ordinary TAXII clients are made by ``detente client add`` (in
partner_cmds); partner nodes authenticate with request signatures.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from detente.cli.app import HomeOption, err_console, open_node
from detente.errors import DetenteError, UsageError

if TYPE_CHECKING:
    from detente.node import Node


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    home: HomeOption = None,
    host: Annotated[str | None, typer.Option("--host", help="address to bind "
                                             "(default: the node's host setting)")] = None,
    port: Annotated[int | None, typer.Option("--port", help="port to bind "
                                             "(default: the node's port setting)")] = None,
    workers: Annotated[int, typer.Option(
        "--workers", min=1, help="server processes sharing the port (PostgreSQL homes "
        "only: nonces, budgets, sessions, login limits and release claims are in the "
        "database)")] = 1,
) -> None:
    """Serve the node: TAXII 2.1 at /taxii2/, the ledger at /ledger/, private
    deconfliction at /deconflict/ and the analyst UI at / (Starlette on uvicorn)."""
    import uvicorn

    from detente.assembly import (
        WORKER_AUTHORITIES_ENV,
        WORKER_HOME_ENV,
        Upkeep,
        build_app,
        worker_app,
    )
    from detente.federation.http.auth import default_authorities

    node = open_node(home)
    bind_host = host or str(node.settings["host"])
    bind_port = int(port if port is not None else node.settings["port"])
    check_port_free(bind_host, bind_port)
    authorities = {*default_authorities(node), f"{bind_host}:{bind_port}"}
    check_workers(node, workers)
    base = f"http://{bind_host}:{bind_port}"
    err_console.print(f"serving node [bold]{node.name}[/]: TAXII {base}/taxii2/, analyst UI "
                      f"{base}/ (operators: 'detente operator add NAME')"
                      + (f", {workers} workers" if workers > 1 else ""), highlight=False)
    if workers == 1:
        app = build_app(node, authorities=sorted(authorities), upkeep=True, serving=True)
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="warning",
                    **proxy_options(node))
        return
    # uvicorn's workers each import the app: they open the same home (one PostgreSQL
    # database) and build the same app; one releaser process, started here, serves them all
    os.environ[WORKER_HOME_ENV] = str(node.home)
    os.environ[WORKER_AUTHORITIES_ENV] = ",".join(sorted(authorities))
    releaser = Upkeep.releaser_only(node)
    releaser.start()
    try:
        uvicorn.run(f"{worker_app.__module__}:{worker_app.__name__}", factory=True,
                    workers=workers, host=bind_host, port=bind_port, log_level="warning",
                    **proxy_options(node))
    finally:
        releaser.stop()


def check_workers(node: Node, workers: int) -> None:
    """More than one server process needs a PostgreSQL home: SQLite has one writer at a
    time, and one process is what its write lock is sized for."""
    if workers > 1 and node.store.engine.dialect.name != "postgresql":
        raise UsageError(
            f"--workers {workers} needs a PostgreSQL home; {node.home} keeps its store in "
            "SQLite, which serves one process",
            hint="serve with one worker, or create a node on PostgreSQL: detente init "
                 "--store postgresql://USER@HOST:PORT/DB")


def check_port_free(host: str, port: int) -> None:
    """Fail before anything is printed or built when ``host:port`` cannot be bound (a
    busy port, an address not of this machine), naming it: uvicorn would print its raw
    error only after the "serving" line."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UsageError(f"cannot bind {host}:{port}: {exc.strerror or exc}",
                         hint="pass --host ADDRESS (an address of this machine)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise DetenteError(f"port {port} on {host} is already in use",
                                   hint="stop what serves it, or pass --port N (another "
                                        "port) or set port in the node's detente.toml"
                                   ) from None
            raise DetenteError(f"cannot bind {host}:{port}: {exc.strerror or exc}",
                               hint="pass --host ADDRESS and --port N") from None


def proxy_options(node: Node) -> dict[str, Any]:
    """uvicorn's forwarded-header handling: off unless the operator names its proxies.

    uvicorn's default trusts X-Forwarded-For from 127.0.0.1, so any local client could
    rotate the header and pass for another address (the UI's per-address login limit)."""
    proxies = [p.strip() for p in str(node.settings["trusted_proxies"]).split(",") if p.strip()]
    if not proxies:
        return {"proxy_headers": False, "forwarded_allow_ips": ""}
    return {"proxy_headers": True, "forwarded_allow_ips": ",".join(proxies)}
