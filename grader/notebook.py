"""Grading inside a notebook: the autograded cells nbgrader runs call `grade_this_notebook`.

The checkpoints stay the one source of tests. A module's notebook ends with two locked,
graded cells (see grader/course.py): one runs the visible checkpoint, one (inside nbgrader's
hidden-tests markers) runs the instructor's hidden checks. Each cell takes the code this
notebook has executed so far (IPython's `In`), writes it where the import router looks for the
student's file of that module, and runs the test file in a child process exactly as `tito
check` does: per-test timeout, memory cap, teaching messages.

The cell's value is the score, which nbgrader reads as partial credit. Everything is printed to
stdout: nbgrader gives zero to a graded cell that writes to stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .checkpoint import CheckpointRun, SourceChoice, run_tests
from .manifest import Manifest, Module, load_manifest

GRADE_CALL = "grade_this_notebook"
RESULTS_DIR = "tito_results"  # beside the notebook being graded; `tito grade` collects it
SAVE_RESULTS = "TITO_SAVE_RESULTS"  # set by `tito grade` in the kernels it starts


def executed_code() -> str:
    """The source of every cell this kernel has run, in order, without the grading cells."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        raise RuntimeError(f"{GRADE_CALL} runs inside a notebook (an IPython kernel)")
    cells = [cell for cell in shell.user_ns.get("In", [])[1:] if GRADE_CALL not in cell]
    # IPython rewrites magics (%time, !ls) as get_ipython() calls, which a plain module cannot run
    return "\n\n".join(re.sub(r"^\s*get_ipython\(\).*$", "", cell, flags=re.M) for cell in cells) + "\n"


def module_folder_with(manifest: Manifest, module: Module, code: str, scratch: Path) -> Path:
    """A copy of the student's modules/ folder in which `module`'s file is `code`."""
    folder = scratch / "modules"
    if manifest.student_dir.is_dir():
        shutil.copytree(manifest.student_dir, folder, ignore=shutil.ignore_patterns("__pycache__", "*.ipynb"))
    target = folder / module.file
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(code)
    return folder


def suite_path(manifest: Manifest, module: Module, hidden: bool) -> Path:
    """The pytest file a graded cell runs: the visible checkpoint or the hidden checks."""
    return manifest.hidden_path(module) if hidden else manifest.checkpoint_path(module)


def save_results(run: CheckpointRun, module: Module, hidden: bool, score: float, points: float) -> None:
    """Write the outcome beside the notebook for `tito grade` and `tito feedback` (only when
    `tito grade` asks for it: a student's or nbgrader's own run leaves no files behind)."""
    if os.environ.get(SAVE_RESULTS) != "1":
        return
    folder = Path.cwd() / RESULTS_DIR
    folder.mkdir(exist_ok=True)
    kind = "hidden" if hidden else "checkpoint"
    record = {
        "module": module.id, "kind": kind, "score": score, "points": points,
        "passed": run.passed_count, "total": run.total, "errors": run.errors,
        # the names and messages of hidden checks never leave the grading machine's logs
        "tests": [] if hidden else [{"name": t.name, "passed": t.passed, "message": t.message} for t in run.tests],
    }
    (folder / f"{module.folder}-{kind}.json").write_text(json.dumps(record, indent=1))


def print_report(run: CheckpointRun, hidden: bool, score: float, points: float) -> None:
    if hidden:  # counts only: the hidden checks' names and inputs stay hidden
        print(f"hidden checks: {run.passed_count}/{run.total} passed")
    else:
        for test in run.tests:
            print(f"{'✓' if test.passed else '✗'} {test.name}")
            if not test.passed:
                for line in test.message.splitlines():
                    print(f"    {line}")
        for error in run.errors:
            print(f"✗ {error}")
        print(f"{run.passed_count}/{run.total} tests passed")
    print(f"score {score:g}/{points:g}")


def grade_this_notebook(module_id: str, points: float, hidden: bool = False) -> float:
    """Run module `module_id`'s checkpoint (or hidden checks) on this notebook's code; the score."""
    with contextlib.redirect_stderr(sys.stdout):
        manifest = load_manifest()
        module = manifest.find_module(module_id)
        with tempfile.TemporaryDirectory(prefix="tito-notebook-") as scratch:
            modules_dir = module_folder_with(manifest, module, executed_code(), Path(scratch))
            # With the reference at hand (instructors), earlier modules come from it, so a
            # notebook is graded on its own module only; a student's copy uses their own files.
            choice = SourceChoice(source="modules", reference_deps=manifest.has_solutions(), modules_dir=modules_dir)
            run = run_tests(manifest, module, [suite_path(manifest, module, hidden)], choice)
        # messages point at the scratch copy of the code: name it the way the student knows it
        scratch_file = str(modules_dir / module.file)
        for test in run.tests:
            test.message = test.message.replace(scratch_file, "this notebook's code")
        run.errors = [error.replace(scratch_file, "this notebook's code") for error in run.errors]
        score = run.score(points)  # passed / collected: a run that could not import scores 0
        print_report(run, hidden, score, points)
        save_results(run, module, hidden, score, points)
    return score
