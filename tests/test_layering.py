"""The layers of ``src/detente``, read from the imports themselves (``ast``).

  capabilities   stix misp store partners policy release ledger trust deconflict fingerprint
                 (+ the shared modules errors, settings)
  composition    node (the composition root), schema (every package's tables, created once)
  network        federation (http, taxii, exchange, witnessing, psi), usecases
  edge           assembly, cli, web, scenario

A capability never imports a higher layer; ``federation.http`` imports no other
federation sub-package; nothing but the edge imports the edge (``schema`` reads the UI's
table definitions, which import nothing); there is no cycle between top-level packages.
Table-definition modules (``*.schema``) are leaves: they import nothing from detente.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "detente"
CAPABILITIES = {"stix", "store", "partners", "policy", "release", "ledger", "trust", "misp",
                "priority", "rfi", "opinions",
                "deconflict", "fingerprint", "errors", "settings"}
COMPOSITION = {"node", "schema"}
NETWORK = {"federation", "usecases"}
EDGE = {"assembly", "cli", "web", "scenario", "__main__"}
MAX_MODULES = 16


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports() -> dict[str, set[str]]:
    """module -> every detente module it imports (at any depth of the file)."""
    out: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        name = _module_name(path)
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.startswith("detente"):
                    found.add(node.module)
                    found |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("detente")}
        out[name] = found
    known = set(out)
    return {m: {i for i in deps if i in known} for m, deps in out.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


IMPORTS = _imports()


def test_every_layer_is_named() -> None:
    tops = {_top(m) for m in IMPORTS} - {"detente"}
    assert tops <= CAPABILITIES | COMPOSITION | NETWORK | EDGE, tops - (
        CAPABILITIES | COMPOSITION | NETWORK | EDGE)


def test_capabilities_never_import_a_higher_layer() -> None:
    bad = sorted((m, i) for m, deps in IMPORTS.items() if _top(m) in CAPABILITIES
                 for i in deps if _top(i) not in CAPABILITIES)
    assert bad == []


def test_only_the_edge_imports_the_edge() -> None:
    bad = sorted((m, i) for m, deps in IMPORTS.items() if _top(m) not in EDGE
                 for i in deps if _top(i) in EDGE and not i.endswith(".schema"))
    assert bad == []


def test_federation_http_imports_no_other_federation_package() -> None:
    bad = sorted((m, i) for m, deps in IMPORTS.items()
                 if m.startswith("detente.federation.http")
                 for i in deps if i.startswith("detente.federation.")
                 and not i.startswith("detente.federation.http")
                 and i != "detente.federation.schema")
    assert bad == []


def test_table_definitions_are_leaves() -> None:
    schemas = [m for m in IMPORTS if m.endswith(".schema") and m != "detente.schema"]
    assert schemas, "no table-definition module found"
    assert {m: IMPORTS[m] for m in schemas if IMPORTS[m]} == {}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ())):
            if state.get(m) == 1:
                return [*stack[stack.index(m):], m]
            if m not in state and (found := visit(m)) is not None:
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)) is not None:
            return found
    return None


def _package_graph() -> dict[str, set[str]]:
    """Top-level packages (and federation's sub-packages) and who imports whom; imports
    of table-definition leaves are left out (they cannot close a cycle)."""
    def unit(m: str) -> str:
        parts = m.split(".")
        if len(parts) > 2 and parts[1] == "federation" and len(parts) > 3:
            return ".".join(parts[1:3])
        return parts[1] if len(parts) > 1 else parts[0]

    graph: dict[str, set[str]] = defaultdict(set)
    for m, deps in IMPORTS.items():
        for i in deps:
            if i.endswith(".schema") and i != "detente.schema":
                continue
            if unit(i) != unit(m):
                graph[unit(m)].add(unit(i))
    return graph


def test_no_cycle_between_packages() -> None:
    assert _cycle(_package_graph()) is None


def test_the_cycle_check_can_fail() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_package_holds_more_than_16_modules() -> None:
    counts = {d.relative_to(SRC).as_posix(): len(list(d.glob("*.py")))
              for d in [SRC, *SRC.rglob("*")] if d.is_dir() and d.name != "__pycache__"}
    assert {d: n for d, n in counts.items() if n > MAX_MODULES and d != "."} == {}
