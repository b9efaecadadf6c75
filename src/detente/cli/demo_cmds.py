"""`detente demo`: what exists, end to end, on one machine."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated

import orjson
import typer

from detente.cli.app import console
from detente.node import Node
from detente.scenario.world import World
from detente.stix.bundle import make_bundle
from detente.stix.vocab import TLP_2_0_IDS
from detente.store.base import Provenance, Query
from detente.store.ingest import ingest_items


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Annotated[Path, typer.Option("--out", help="directory for the nodes and report")]
    = Path("demo-out"),
) -> None:
    """Play the scenario: create a node, ingest seeded intelligence, list and export it."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    node = Node.init(out / "us", "us", communities="coalition")
    console.print(f"[bold]1.[/] created node us in {node.home}")
    world = World()
    sample = world.sample(node.identity_id, TLP_2_0_IDS["green"])
    src = out / "us-sample.json"
    src.write_bytes(make_bundle(sample))
    items = ((f"object {i}", o) for i, o in enumerate(orjson.loads(src.read_bytes())
                                                      ["objects"], 1))
    summary = ingest_items(node.store, items, Provenance())
    console.print(f"[bold]2.[/] ingested {summary.stored} objects "
                  f"({summary.per_second:,.0f}/s), {len(summary.rejected)} rejected")
    page = node.store.list(Query(types=("threat-actor",)))
    console.print(f"[bold]3.[/] threat actors: {', '.join(o.body['name'] for o in page.objects)}")
    bodies = [o.body for o in node.store.iter_all(Query())]
    (out / "us-export.json").write_bytes(make_bundle(bodies))
    console.print(f"[bold]4.[/] exported {len(bodies)} objects to {out / 'us-export.json'}")
    node.close()
