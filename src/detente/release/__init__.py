"""The release path: nothing leaves a node except through here."""

from detente.release.path import Embedder, Releaser, ReleaseRun, view_hash
from detente.release.records import ReleaseRecord, iter_release_records
from detente.release.serve import ReleasedView, ReleasePage, read_releases

__all__ = ["Embedder", "ReleasePage", "ReleaseRecord", "ReleaseRun", "ReleasedView",
           "Releaser", "iter_release_records", "read_releases", "view_hash"]
