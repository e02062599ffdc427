"""Run a submission's code against a test file inside the grading sandbox, recording its values.

`prepare_course` lays out the only course files the sandbox sees (mounted read-only at
/course): the manifest, the grader and router code, the sandbox copies of the test files
(grader.sandbox_view: no oracle, no expected values), the reference of the modules the graded
one builds on, and the student's file as `modules/NN_slug/slug.py`. `record_in_sandbox` runs
pytest there in record mode and returns what the student's code produced, for grader.judge.
"""

from __future__ import annotations

import functools
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .checkpoint import PLUGINS_ENV, CheckpointRun, SourceChoice, apply_event, finish, pytest_arguments, router_environment, \
    run_settings, stream_events
from .manifest import MANIFEST_NAME, Manifest, Module
from .sandbox import GradingSandbox, Limits
from .sandbox_view import sandbox_source

COPIED_PACKAGES = ("grader", "tinytorch")
SHARED_TEST_FILES = ("tests/__init__.py", "tests/conftest.py",
                     "tests/checkpoints/__init__.py", "tests/hidden/__init__.py")
SHARED_HELPERS = "tests/checkpoints/common.py"  # test code too: copied as the sandbox's rewritten copy


@functools.lru_cache(maxsize=64)
def _sandbox_copy(path: str, mtime: float) -> str:
    return sandbox_source(Path(path).read_text(), path)


def sandbox_copy(path: Path) -> str:
    """The sandbox's copy of a test file (cached while the file does not change)."""
    return _sandbox_copy(str(path), path.stat().st_mtime)


def suite_files(manifest: Manifest, module: Module, kind: str) -> list[Path]:
    """The test files a run needs: the checkpoint, and for hidden checks the hidden file too
    (hidden checks may reuse the checkpoint's helpers)."""
    files = [manifest.checkpoint_path(module)]
    if kind == "hidden":
        files.append(manifest.hidden_path(module))
    return files


def prepare_course(manifest: Manifest, module: Module, code: str, kind: str, folder: Path) -> Path:
    """The /course folder of one sandboxed run; returns the test file to run, relative to it."""
    shutil.copy(manifest.root / MANIFEST_NAME, folder / MANIFEST_NAME)
    for package in COPIED_PACKAGES:
        shutil.copytree(manifest.root / package, folder / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in SHARED_TEST_FILES:
        if (manifest.root / name).exists():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(manifest.root / name, folder / name)
    for path in [manifest.root / SHARED_HELPERS, *suite_files(manifest, module, kind)]:
        target = folder / path.relative_to(manifest.root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(sandbox_copy(path))
    for earlier in manifest.dependencies(module):
        if earlier.available and manifest.solution_path(earlier).exists():
            target = folder / manifest.solutions_dir / earlier.file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(manifest.solution_path(earlier), target)
    student = folder / manifest.modules_dir / module.file
    student.parent.mkdir(parents=True, exist_ok=True)
    student.write_text(code)
    return suite_files(manifest, module, kind)[-1].relative_to(manifest.root)


def record_in_sandbox(manifest: Manifest, module: Module, code: str, kind: str, *, sandboxed: bool = True,
                      wall_seconds: float | None = None) -> CheckpointRun:
    """Run the module's checkpoint (kind "checkpoint") or hidden checks ("hidden") on `code`."""
    run = CheckpointRun(module)
    started = time.monotonic()
    wall = wall_seconds or manifest.grading.sandbox_wall_seconds
    with tempfile.TemporaryDirectory(prefix="tito-sandbox-") as scratch:
        course, report_dir = Path(scratch) / "course", Path(scratch) / "report"
        course.mkdir()
        report_dir.mkdir()
        test_file = prepare_course(manifest, module, code, kind, course)
        report = report_dir / "report.jsonl"
        report.touch()
        inside_course = GradingSandbox.COURSE if sandboxed else str(course)
        inside_report = f"{GradingSandbox.REPORT}/report.jsonl" if sandboxed else str(report)
        env = router_environment(manifest, module, SourceChoice(reference_deps=True),
                                 f"{inside_course}/{manifest.modules_dir}")
        env.update(run_settings(manifest, module, "record", inside_course).to_env())
        env.update(PLUGINS_ENV)
        env["TITO_ROOT"] = inside_course
        argv = [sys.executable, *pytest_arguments(manifest, [str(test_file)], inside_report, inside_course),
                "-p", "no:faulthandler"]
        if sandboxed:
            command = GradingSandbox(course, report_dir, env).command(argv)
            child_env = {"PATH": "/usr/bin:/bin"}
        else:
            command = argv
            child_env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(course), "PYTHONDONTWRITEBYTECODE": "1",
                         "HOME": scratch, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", **env}
        limits = Limits(manifest.grading.memory_mb, cpu_seconds=int(wall) + 30)
        code_, timed_out = stream_events(command, cwd=course, env=child_env, report=report,
                                         log=Path(scratch) / "pytest.log", limits=limits, wall_seconds=wall,
                                         on_event=lambda event: apply_event(run, event))
        finish(run, module, code_, timed_out, wall, manifest.grading.memory_mb, Path(scratch) / "pytest.log")
    run.duration = time.monotonic() - started
    return run
