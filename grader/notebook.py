"""The graded cells of a module's notebook, when the student runs them: a self-check.

A module's notebook ends with two locked cells (see grader/course.py): the first runs the
visible checkpoint on the code this notebook has executed so far (IPython's `In`), exactly as
`tito check` does, and shows the score; the second, between nbgrader's hidden-test markers,
is not in the student's copy. They teach; they grade nothing. `tito grade` never executes a
notebook: it reads the student's code cells and judges them through the sandbox
(grader.grading), so nothing a kernel prints can change a grade.

The cell's value is the score. Everything is printed to stdout, as nbgrader expects.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sys
import tempfile
from pathlib import Path

from .checkpoint import CheckpointRun, SourceChoice, run_tests
from .manifest import Manifest, Module, load_manifest

GRADE_CALL = "grade_this_notebook"


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
        suite = suite_path(manifest, module, hidden)
        if not suite.exists():
            print(f"{suite.name} is not part of this copy of the course: `tito grade` runs it")
            return 0.0
        with tempfile.TemporaryDirectory(prefix="tito-notebook-") as scratch:
            modules_dir = module_folder_with(manifest, module, executed_code(), Path(scratch))
            # With the reference at hand (instructors), earlier modules come from it, so a
            # notebook is checked on its own module only; a student's copy uses their own files.
            choice = SourceChoice(source="modules", reference_deps=manifest.has_solutions(), modules_dir=modules_dir)
            run = run_tests(manifest, module, [suite], choice)
        # messages point at the scratch copy of the code: name it the way the student knows it
        scratch_file = str(modules_dir / module.file)
        for test in run.tests:
            test.message = test.message.replace(scratch_file, "this notebook's code")
        run.errors = [error.replace(scratch_file, "this notebook's code") for error in run.errors]
        score = run.score(points)  # passed / collected: a run that could not import scores 0
        print_report(run, hidden, score, points)
    return score
