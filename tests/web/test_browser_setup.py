"""A missing Chromium fails the browser tests with the command to run; `make test` installs
it when run as root.  Never a silent skip in CI."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.web.test_browser import chromium_verdict

ROOT = Path(__file__).resolve().parents[2]


def test_a_missing_chromium_fails_naming_the_command(tmp_path: Path) -> None:
    missing = tmp_path / "chromium"
    verdict = chromium_verdict(missing, {})
    assert verdict is not None and verdict[0] == "fail"
    assert "make browser" in verdict[1] and "apt-get install chromium" in verdict[1]
    assert chromium_verdict(missing, {"CI": "true"}) == (
        "fail", verdict[1] + "; browser tests must run in CI")


def test_only_an_explicit_opt_out_skips_and_never_in_ci(tmp_path: Path) -> None:
    missing = tmp_path / "chromium"
    skip = chromium_verdict(missing, {"DETENTE_SKIP_BROWSER": "1"})
    assert skip is not None and skip[0] == "skip" and "DETENTE_SKIP_BROWSER" in skip[1]
    ci = chromium_verdict(missing, {"DETENTE_SKIP_BROWSER": "1", "CI": "true"})
    assert ci is not None and ci[0] == "fail"
    present = tmp_path / "present"
    present.touch()
    assert chromium_verdict(present, {"CI": "true"}) is None


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_test_installs_chromium_first_when_root_and_missing() -> None:
    """`make -n` prints the recipe: the install step runs before pytest, as root only."""
    done = subprocess.run(["make", "-n", "test", "STAMP=Makefile"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MAKEFLAGS": ""})
    assert done.returncode == 0, done.stderr
    recipe = done.stdout
    install = recipe.index("apt-get install -y -qq chromium")
    assert 'command -v chromium' in recipe and '"$(id -u)" = 0' in recipe
    assert install < recipe.index("-m pytest")
