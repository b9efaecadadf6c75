"""Ingest benchmark: detente's validating ingest vs the stix2 library vs the raw floor.

Side by side in one run on the same 100,000 realistic indicators (~700 B, with markings,
created_by_ref, confidence and labels):
  detente   `ingest_local` — what `detente ingest` runs, earned trust included — from a
            JSON Lines file into a fresh node (SQLite, PostgreSQL), whole-call wall time;
            and the `detente ingest` command itself in its own process (SQLite), timed as
            its summary reports it: the whole command, start-up and imports included
  stix2     `stix2.parse` of each object into a `stix2.MemoryStore` (the anchor)
  floor     `orjson.loads` + `executemany` of the raw JSON into the same table and
            indexes, no validation
and, in the full run, the resident memory of a 1 GB JSON Lines ingest (a subprocess).

``--stages`` also times the SQLite run's stages (CPU seconds per stage, µs per object):
validation, the store's rows, the search index, earned trust per batch, the trust refresh
at the end, and the rest (reading, decoding, the intake's bookkeeping, commits outside the
stages) — where an ingest's time goes, measured on the same run.

    python bench/ingest.py [--quick] [--n N] [--no-pg] [--no-memory] [--stages]
                           [--worker auto|always|never]
"""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _stixgen import indicators
from detente.federation.exchange.local import ingest_local
from detente.node import Node
from detente.stix.bundle import iter_objects
from detente.store import open_store

PG_ADMIN = os.environ.get("DETENTE_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def write_jsonl(path: Path, n: int) -> int:
    size = 0
    with path.open("wb") as f:
        for obj in indicators(n):
            line = orjson.dumps(obj) + b"\n"
            size += len(line)
            f.write(line)
    return size


def fresh_node(url: str) -> Node:
    home = Path(tempfile.mkdtemp(prefix="detente-bench-"))
    return Node.init(home / "node", "bench", store_url=url)


#: CPU seconds of this process in the last run_detente (the machine is shared: the CPU
#: figure is the steadier one; on PostgreSQL the server's own CPU is not in it)
LAST_CPU: list[float] = [float("nan")]


#: CPU seconds of the ingest worker process in the last run_detente (a large input is
#: read and validated ahead in a second process: federation/exchange/pipe.py)
WORKER_CPU: list[float] = [float("nan")]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


#: CPU seconds per stage of the last run_detente under --stages (nested stages excluded)
STAGES: dict[str, float] = {}


@contextmanager
def staged() -> Iterator[None]:
    """Time the intake's stages (CPU seconds, the inner stage subtracted from the outer)."""
    from detente.federation.exchange.intake import Intake
    from detente.store.search import SearchIndex
    from detente.store.sql import SqlStore

    STAGES.clear()
    stack: list[list[float]] = []
    wrapped = [(Intake, "_validated", "validate"), (SqlStore, "put_many", "store"),
               (SearchIndex, "add", "search"), (Intake, "_observe", "trust"),
               (Intake, "close", "trust_refresh")]

    def timed(fn: Any, name: str) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            t = time.process_time()
            stack.append([0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                spent = time.process_time() - t
                inner = stack.pop()[0]
                STAGES[name] = STAGES.get(name, 0.0) + spent - inner
                if stack:
                    stack[-1][0] += spent
        return run

    saved = [(cls, attr, getattr(cls, attr)) for cls, attr, _ in wrapped]
    for cls, attr, name in wrapped:
        setattr(cls, attr, timed(getattr(cls, attr), name))
    try:
        yield
    finally:
        for cls, attr, fn in saved:
            setattr(cls, attr, fn)


#: ingest_local's ``worker`` (--worker): None when a core is free, True always, False never
WORKER: list[bool | None] = [None]


def run_detente(url: str, path: Path) -> float:
    node = fresh_node(url)
    before = node.store.count()
    items = ((str(pos), raw) for pos, raw in iter_objects(path))
    t, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
    summary = ingest_local(node, items, worker=WORKER[0])
    elapsed = time.perf_counter() - t
    LAST_CPU[0] = time.process_time() - cpu
    WORKER_CPU[0] = _children_cpu() - child
    assert summary.stored == node.store.count() - before and not summary.rejected, \
        summary.as_dict()
    node.close()
    return elapsed


def run_cli(path: Path) -> float:
    """``detente ingest --json`` into a fresh SQLite home, in its own process: the whole
    command's wall time as it reports it (interpreter start-up and imports included)."""
    home = Path(tempfile.mkdtemp(prefix="detente-bench-cli-")) / "node"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    cli = [sys.executable, "-m", "detente.cli"]
    subprocess.run([*cli, "init", "--name", "bench", "--home", str(home)], check=True,
                   capture_output=True, env=env)
    out = subprocess.run([*cli, "ingest", "--json", "--home", str(home), str(path)],
                         check=True, capture_output=True, text=True, env=env)
    figures = orjson.loads(out.stdout)
    assert figures["rejected"] == 0, figures
    return float(figures["command_seconds"])


def run_floor(url: str, path: Path) -> float:
    """orjson.loads + executemany of the raw JSON into the same table, no validation."""
    store = open_store(url, create=True)
    engine = store.engine
    ph = "%s" if engine.dialect.name == "postgresql" else "?"
    sql = (
        "INSERT INTO stix_objects (id, version, type, spec_version, created_by_ref, "
        "revoked, is_latest, is_first, date_added, digest, body, origin) VALUES "
        f"({', '.join([ph] * 12)})"
    )
    t = time.perf_counter()
    with engine.begin() as conn:
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        rows = []
        added = time.time_ns() // 1000
        with path.open("rb") as f:
            for line in f:
                o = orjson.loads(line)
                added += 1
                rows.append(
                    (
                        o["id"],
                        o["modified"],
                        o["type"],
                        o["spec_version"],
                        o.get("created_by_ref"),
                        False,
                        True,
                        True,
                        added,
                        b"",
                        line,
                        "local",
                    )
                )
                if len(rows) >= 1000:
                    cur.executemany(sql, rows)
                    rows = []
        if rows:
            cur.executemany(sql, rows)
    elapsed = time.perf_counter() - t
    store.close()
    return elapsed


def run_stix2(path: Path, n: int) -> float:
    import stix2

    t = time.perf_counter()
    mem = stix2.MemoryStore()
    with path.open("rb") as f:
        for i, line in enumerate(f):
            if i >= n:
                break
            mem.add(stix2.parse(line.decode(), allow_custom=True))
    return time.perf_counter() - t


def pg_database() -> tuple[str, sa.Engine] | None:
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = "detente_bench_" + secrets.token_hex(4)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        print(f"PostgreSQL unavailable: {exc}")
        return None
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name, admin


def drop_pg(url: str, admin: sa.Engine) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def memory_child(path: str, url: str) -> None:
    node = fresh_node(url)
    items = ((str(pos), raw) for pos, raw in iter_objects(Path(path)))
    summary = ingest_local(node, items)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        orjson.dumps(
            {"stored": summary.stored, "rss_mb": rss, "per_s": summary.per_second}
        ).decode()
    )


def measure_memory(tmp: Path, gigabytes: float) -> dict[str, float]:
    n = int(gigabytes * 1e9 / 700)
    path = tmp / "big.jsonl"
    size = write_jsonl(path, n)
    print(f"memory: {size / 1e9:.2f} GB JSON Lines, {n:,} objects")
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(path), f"sqlite:///{tmp}/big.db"],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = orjson.loads(out.stdout.strip().splitlines()[-1])
    path.unlink()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--stages", action="store_true")
    ap.add_argument("--memory-child", nargs=2)
    ap.add_argument("--worker", choices=("auto", "always", "never"), default="auto",
                    help="the detente runs' ingest worker process (federation/exchange/"
                    "pipe.py): when a core is free (as `detente ingest`), always, never")
    args = ap.parse_args()
    WORKER[0] = {"auto": None, "always": True, "never": False}[args.worker]
    if args.memory_child:
        memory_child(*args.memory_child)
        return
    n = args.n or (10_000 if args.quick else 100_000)
    n_stix2 = min(n, 5_000 if args.quick else 20_000)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = tmp / "in.jsonl"
        size = write_jsonl(src, n)
        print(f"{n:,} indicators, {size / n:.0f} B each on average; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
        with staged() if args.stages else nullcontext():
            det = n / run_detente(f"sqlite:///{tmp}/det.db", src)
        det_cpu = n / LAST_CPU[0]
        worker_us = WORKER_CPU[0] / n * 1e6
        print(f"detente  SQLite      {det:>10,.0f} objects/s (validated, earned trust); "
              f"{det_cpu:,.0f} per CPU second of the main process; worker process "
              f"{worker_us:.1f} CPU µs/object")
        stages = ""
        if args.stages:
            STAGES["rest"] = LAST_CPU[0] - sum(STAGES.values())
            for name, spent in STAGES.items():
                print(f"  stage {name:<14} {spent:6.2f} CPU s {spent / n * 1e6:7.1f} µs/object "
                      f"{100 * spent / LAST_CPU[0]:5.1f}%")
            stages = " " + " ".join(f"{k}_us={v / n * 1e6:.1f}" for k, v in STAGES.items())
        cli = n / run_cli(src)
        print(f"detente  CLI SQLite  {cli:>10,.0f} objects/s (the whole `detente ingest` "
              "command: start-up, imports, opening the node included)")
        floor = n / run_floor(f"sqlite:///{tmp}/floor.db", src)
        print(f"floor    SQLite      {floor:>10,.0f} objects/s (orjson + executemany)")
        st2 = n_stix2 / run_stix2(src, n_stix2)
        print(f"stix2    MemoryStore {st2:>10,.0f} objects/s (parse of {n_stix2:,})")
        pg_rate = pg_floor = pg_cpu = float("nan")
        if not args.no_pg:
            made = pg_database()
            if made:
                url, admin = made
                try:
                    pg_rate = n / run_detente(url, src)
                    pg_cpu = n / LAST_CPU[0]
                    print(f"detente  PostgreSQL  {pg_rate:>10,.0f} objects/s "
                          f"(validated, earned trust); {pg_cpu:,.0f} per CPU second of "
                          "detente (the server's not counted)")
                finally:
                    drop_pg(url, admin)
                made = pg_database()
                if made:
                    url, admin = made
                    try:
                        pg_floor = n / run_floor(url, src)
                        print(f"floor    PostgreSQL  {pg_floor:>10,.0f} objects/s")
                    finally:
                        drop_pg(url, admin)
        rss = float("nan")
        if not args.no_memory:
            mem = measure_memory(tmp, 0.1 if args.quick else 1.0)
            rss = mem["rss_mb"]
            print(
                f"memory   {mem['stored']:,.0f} objects stored, peak RSS {rss:.0f} MB, "
                f"{mem['per_s']:,.0f} objects/s"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"RESULT ingest detente_per_s={det:.0f} stix2_per_s={st2:.0f} "
        f"floor_per_s={floor:.0f} vs_stix2={det / st2:.1f} vs_floor={det / floor:.2f} "
        f"pg_per_s={pg_rate:.0f} pg_floor_per_s={pg_floor:.0f} cli_per_s={cli:.0f} "
        f"cpu_per_s={det_cpu:.0f} worker_us={worker_us:.1f} pg_cpu_per_s={pg_cpu:.0f} "
        f"rss_mb={rss:.0f}{stages}"
    )


if __name__ == "__main__":
    main()
