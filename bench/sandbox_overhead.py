"""The grading sandbox's own cost per job: the same short Python run with and without bubblewrap.

Both runs import numpy and pytest (what every sandboxed checkpoint run starts with); the
difference of the medians is what bubblewrap adds (namespaces, mounts, the stand-in for the
oracle packages). Both are measured in one run, interleaved, and reported with their ratio.

    .venv/bin/python bench/sandbox_overhead.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT))

from grader.sandbox import GradingSandbox, sandbox_problem  # noqa: E402

PROGRAM = "import numpy, pytest"


def timed(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    arguments = parser.parse_args()
    if sandbox_problem():
        sys.exit(f"no sandbox here: {sandbox_problem()}")
    with tempfile.TemporaryDirectory() as scratch:
        course, report = Path(scratch) / "course", Path(scratch) / "report"
        course.mkdir()
        report.mkdir()
        sandboxed = GradingSandbox(course, report).command([sys.executable, "-c", PROGRAM])
        plain = [sys.executable, "-c", PROGRAM]
        inside, outside = [], []
        for _ in range(arguments.repeats):
            inside.append(timed(sandboxed, {"PATH": "/usr/bin:/bin"}))
            outside.append(timed(plain))
    a, b = statistics.median(inside), statistics.median(outside)
    print(f"python -c '{PROGRAM}', median of {arguments.repeats}: sandboxed {a * 1000:.0f} ms, "
          f"plain {b * 1000:.0f} ms; the sandbox adds {(a - b) * 1000:.0f} ms per run (ratio {a / b:.2f}x); "
          f"a graded job is two runs (checkpoint and hidden checks)")


if __name__ == "__main__":
    main()
