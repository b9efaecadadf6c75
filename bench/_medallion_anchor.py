"""medallion 3.0.0 (the OASIS TAXII 2.1 reference server, memory backend) as the anchor.

It runs in its own virtual environment (bench/.venvs/medallion, created on first use) on
127.0.0.1, serving one collection holding the given objects, without any policy.  The
measurements mirror detente's: paging the whole collection and GET object by id.
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
VENV = BENCH / ".venvs" / "medallion"
COLLECTION = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"
USER, PASSWORD = "bench", "bench-password"
ACCEPT = {"Accept": "application/taxii+json;version=2.1"}


class MedallionUnavailable(RuntimeError):
    """medallion's venv could not be made (no package index, or it timed out)."""


def medallion_python(timeout_s: float = 300.0) -> Path:
    """The venv's interpreter, created (and medallion 3.0.0 installed) on first use;
    each step bounded by ``timeout_s``, any failure a :class:`MedallionUnavailable`
    naming the step and its output."""
    python = VENV / "bin" / "python"
    steps = []
    if not python.exists():
        steps.append([sys.executable, "-m", "venv", str(VENV)])
    probe = [str(python), "-c", "import medallion.backends.memory_backend"]
    if not python.exists() or subprocess.run(probe, capture_output=True,
                                             timeout=timeout_s).returncode != 0:
        steps.append([str(python), "-m", "pip", "install", "-q", "medallion==3.0.0"])
    for step in steps:
        try:
            done = subprocess.run(step, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise MedallionUnavailable(
                f"{' '.join(step)} took more than {timeout_s:g} s") from None
        if done.returncode != 0:
            raise MedallionUnavailable(f"{' '.join(step)} failed: "
                                       f"{(done.stderr or done.stdout)[-2000:]}")
    return python


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _data(objects: list[dict[str, Any]], base: str) -> dict[str, Any]:
    added = "2025-01-01T00:00:00.000000Z"
    manifest = [{"id": o["id"], "date_added": added, "version": o["modified"],
                 "media_type": "application/stix+json;version=2.1"} for o in objects]
    return {
        "/discovery": {"title": "medallion anchor", "default": f"{base}/api1/",
                       "api_roots": [f"{base}/api1/"]},
        "api1": {
            "information": {"title": "anchor", "versions": ["application/taxii+json;version=2.1"],
                            "max_content_length": 10 * 1024 * 1024},
            "status": [],
            "collections": [{
                "id": COLLECTION, "title": "all", "can_read": True, "can_write": True,
                "media_types": ["application/stix+json;version=2.1"],
                "objects": objects, "manifest": manifest,
            }],
        },
    }


@contextmanager
def serve(objects: list[dict[str, Any]], page_size: int = 1000) -> Iterator[str]:
    """medallion serving ``objects`` on 127.0.0.1 (user ``USER``, ``PASSWORD``); yields the
    collection's objects URL (discovery is at ``/taxii2/`` of the same server)."""
    python = medallion_python()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        data, config = Path(tmp) / "data.json", Path(tmp) / "config.json"
        data.write_text(json.dumps(_data(objects, base)))
        config.write_text(json.dumps({
            "backend": {"module": "medallion.backends.memory_backend",
                        "module_class": "MemoryBackend", "filename": str(data)},
            "users": {USER: PASSWORD}, "taxii": {"max_page_size": page_size}}))
        proc = subprocess.Popen(
            [str(python), "-m", "medallion.scripts.run", "--port", str(port), str(config)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait(base)
            yield f"{base}/api1/collections/{COLLECTION}/objects/"
        finally:
            proc.terminate()
            proc.wait(10)


def _wait(base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/taxii2/", auth=(USER, PASSWORD), headers=ACCEPT, timeout=2)
            if r.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("medallion did not start")


def measure(objects: list[dict[str, Any]], *, limit: int = 1000, gets: int = 50,
            first_page_only: bool = False) -> dict[str, float]:
    """Page the whole collection (or just its first page) and time GET by id."""
    out: dict[str, float] = {"n": len(objects)}
    with serve(objects, page_size=limit) as url, httpx.Client(
            auth=(USER, PASSWORD), headers=ACCEPT, timeout=600) as client:
        t0 = time.perf_counter()
        r = client.get(url, params={"limit": limit})
        out["first_page_s"] = time.perf_counter() - t0
        got = len(r.json().get("objects", []))
        if first_page_only:
            return out
        env = r.json()
        while env.get("more"):
            env = client.get(url, params={"limit": limit, "next": env["next"]}).json()
            got += len(env.get("objects", []))
        out["page_all_s"] = time.perf_counter() - t0
        out["objs_per_s"] = got / out["page_all_s"]
        out["served"] = got
        times = []
        for o in objects[:: max(1, len(objects) // gets)][:gets]:
            t = time.perf_counter()
            client.get(f"{url}{o['id']}/").raise_for_status()
            times.append(time.perf_counter() - t)
        out["get_p50_ms"] = statistics.median(times) * 1000
    return out


def fresh_ids(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies with new ids (medallion and detente never share an object)."""
    return [dict(o, id=f"indicator--{uuid.uuid4()}") for o in objects]
