"""A small release world for the fingerprint tests: one node, synthetic reports, N partners."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from bench._fpsim import release_all, synthetic_report

from detente.fingerprint import Fingerprinter, Release
from detente.fingerprint.channels.slots import JSON
from detente.fingerprint.index import ReleaseIndex

SECRET = bytes(range(32))


@dataclass(frozen=True)
class World:
    fp: Fingerprinter
    objects: list[JSON]
    partners: list[str]
    releases: list[Release]
    views: dict[str, list[JSON]]
    index: ReleaseIndex


@cache
def world(partners: int = 20, size: int = 24, seed: int = 7) -> World:
    fp = Fingerprinter(SECRET)
    objects = synthetic_report(random.Random(seed), size)
    names = [f"partner-{k:02d}" for k in range(partners)]
    releases, views = release_all(fp, objects, names)
    return World(fp, objects, names, releases, views, fp.index(releases))
