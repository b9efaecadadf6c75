"""The release path: nothing leaves a node except through here."""

from detente.release.path import CatchUpStep, Embedder, Releaser, ReleaseRun, view_hash
from detente.release.records import (
    ReleaseRecord,
    first_releases,
    iter_release_records,
    iter_views_after,
    released_ids,
    released_versions,
)
from detente.release.serve import ReleasedView, ReleasePage, read_releases
from detente.release.views import ClassView, Served, ViewSource
from detente.release.worker import PendingRun, release_pending

__all__ = [
    "CatchUpStep",
    "ClassView",
    "Embedder",
    "PendingRun",
    "ReleasePage",
    "ReleaseRecord",
    "ReleaseRun",
    "ReleasedView",
    "Releaser",
    "Served",
    "ViewSource",
    "first_releases",
    "iter_release_records",
    "iter_views_after",
    "read_releases",
    "release_pending",
    "released_ids",
    "released_versions",
    "view_hash",
]
