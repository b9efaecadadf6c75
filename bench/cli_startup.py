"""CLI start-up: wall time of `detente --help` (and of one command's help), each run as a
fresh process of the installed console script, beside two anchors timed the same way in
the same run:

- ``python -c pass``: the interpreter alone, the floor of any Python CLI;
- ``python -c "import stix2"``: one heavy library a command used to pay for at start-up.

The goal (issue 16) is ``detente --help`` ≤ 0.3 s: the command modules, and with them
STIX, SQLAlchemy, uvicorn and PyNaCl, are imported only when a command runs.  Medians of
N runs (``--quick``: 5; full: 21), wall time and CPU time (user + system: what the
process itself costs, less sensitive to a loaded machine).  The last line is
``RESULT cli_startup help_s=… policy_help_s=… python_s=… stix2_import_s=… help_cpu_s=…``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
DETENTE = BIN / "detente"


def medians(cmd: list[str], runs: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of ``cmd`` as a fresh process."""
    wall, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="5 runs each instead of 21")
    args = ap.parse_args()
    runs = 5 if args.quick else 21
    detente = [str(DETENTE)] if DETENTE.exists() else [sys.executable, "-m", "detente.cli"]
    cases = {  # key: (label, command)
        "python_s": ("python -c pass", [sys.executable, "-c", "pass"]),
        "stix2_import_s": ("python -c 'import stix2'", [sys.executable, "-c", "import stix2"]),
        "help_s": ("detente --help", [*detente, "--help"]),
        "policy_help_s": ("detente policy --help", [*detente, "policy", "--help"]),
    }
    measured = {key: medians(cmd, runs) for key, (_, cmd) in cases.items()}
    width = max(len(label) for label, _ in cases.values())
    print(f"{'':<{width}}  {'wall':>7}     {'cpu':>7}     (medians of {runs} runs)")
    for key, (label, _) in cases.items():
        wall, cpu = measured[key]
        print(f"{label:<{width}}  {wall * 1000:7.0f} ms  {cpu * 1000:7.0f} ms")
    keys = ("help_s", "policy_help_s", "python_s", "stix2_import_s")
    print("RESULT cli_startup " + " ".join(f"{k}={measured[k][0]:.3f}" for k in keys) + " "
          + " ".join(f"{k.removesuffix('_s')}_cpu_s={measured[k][1]:.3f}" for k in keys))


if __name__ == "__main__":
    main()
