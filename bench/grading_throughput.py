"""`tito grade` throughput: N generated submissions of one module, autograded into a scratch course.

Half the students hand in the reference solution and half the stub, so both the passing and
the failing path are timed. Prints submissions per minute and the scores seen.

    .venv/bin/python bench/grading_throughput.py [--students 50] [--module 02] [--workers 2]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT))

from grader.manifest import load_manifest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--module", default="02")
    parser.add_argument("--workers", type=int, default=2)
    arguments = parser.parse_args()
    manifest = load_manifest(COURSE_ROOT)
    module = manifest.find_module(arguments.module)
    with tempfile.TemporaryDirectory(prefix="tito-bench-") as scratch:
        submissions, course = Path(scratch) / "submissions", Path(scratch) / "course"
        for index in range(arguments.students):
            source = manifest.solution_path(module) if index % 2 == 0 else COURSE_ROOT / manifest.modules_dir / module.file
            target = submissions / f"student{index:03d}" / Path(module.file).name
            target.parent.mkdir(parents=True)
            shutil.copy(source, target)
        tito = [sys.executable, "-m", "grader.cli"]
        started = time.perf_counter()
        subprocess.run([*tito, "grade", str(submissions), "--course", str(course), "--workers", str(arguments.workers)],
                       cwd=COURSE_ROOT, check=True, stdout=subprocess.DEVNULL)
        elapsed = time.perf_counter() - started
        subprocess.run([*tito, "export", "--course", str(course), "--out", str(Path(scratch) / "grades.csv")],
                       cwd=COURSE_ROOT, check=True, capture_output=True)
        with open(Path(scratch) / "grades.csv") as handle:
            scores = [float(row[module.folder]) for row in csv.DictReader(handle)]
    print(f"{arguments.students} submissions of module {module.id} {module.slug}, {arguments.workers} workers: "
          f"{elapsed:.0f} s including the course build, {arguments.students / elapsed * 60:.1f} submissions/minute")
    print(f"scores: {scores.count(module.points)} full marks, {scores.count(0.0)} zero, of {len(scores)}")


if __name__ == "__main__":
    main()
