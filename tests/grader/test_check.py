"""`tito check` on the student's code: results, teaching messages, limits, progress, reset."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.checkpoint import SourceChoice, run_tests
from grader.stubs import write_stubs
from tests.grader.conftest import COURSE_ROOT

LOOPING_ADD = "        while True:  # a student's endless loop\n            pass\n"


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def with_timeout(manifest, seconds: float):
    return dataclasses.replace(manifest, grading=dataclasses.replace(manifest.grading, test_timeout_seconds=seconds))


def write_tests(folder: Path, body: str) -> Path:
    path = folder / "test_probe.py"
    path.write_text("from tinytorch.tensor import Tensor\nimport numpy as np\n\n" + body)
    return path


def test_an_infinite_loop_is_one_failed_test_and_grading_continues(manifest, finished_student, tmp_path):
    replace_in(finished_student / "01_tensor/tensor.py", '        return self._elementwise(other, "+", np.add)\n', LOOPING_ADD)
    tests = write_tests(tmp_path, (
        'def test_add():\n    """adding two tensors"""\n    Tensor([1.0]) + Tensor([2.0])\n\n'
        'def test_shape():\n    """a tensor knows its shape"""\n    assert Tensor([1.0, 2.0]).shape == (2,)\n'))
    started = time.monotonic()
    run = run_tests(with_timeout(manifest, 2), manifest.find_module("01"), [tests],
                    SourceChoice(modules_dir=finished_student))
    assert time.monotonic() - started < 30
    by_name = {t.name: t for t in run.tests}
    assert not by_name["adding two tensors"].passed
    assert "took longer than 2 s" in by_name["adding two tensors"].message
    assert "Tensor.__add__" in by_name["adding two tensors"].message
    assert by_name["a tensor knows its shape"].passed
    assert (run.passed_count, run.total) == (1, 2)


def test_repeated_timeouts_stop_the_run_early(manifest, finished_student, tmp_path):
    replace_in(finished_student / "01_tensor/tensor.py", '        return self._elementwise(other, "+", np.add)\n', LOOPING_ADD)
    body = "".join(f'def test_add_{i}():\n    """add {i}"""\n    Tensor([1.0]) + {i}\n\n' for i in range(4))
    started = time.monotonic()
    run = run_tests(with_timeout(manifest, 1), manifest.find_module("01"), [write_tests(tmp_path, body)],
                    SourceChoice(modules_dir=finished_student))
    assert time.monotonic() - started < 20
    assert len(run.tests) == 2 and run.total == 4 and run.passed_count == 0
    assert any("the rest were not run" in e for e in run.errors)
    assert not run.all_passed


def test_a_huge_allocation_hits_the_memory_cap(manifest, finished_student, tmp_path):
    tests = write_tests(tmp_path, 'def test_big():\n    """a big tensor"""\n    Tensor(np.ones(10**11))\n')
    run = run_tests(manifest, manifest.find_module("01"), [tests], SourceChoice(modules_dir=finished_student))
    assert len(run.tests) == 1 and not run.tests[0].passed
    assert "ran out of memory" in run.tests[0].message or "MemoryError" in run.tests[0].message


def test_a_syntax_error_points_at_file_and_line(tito, finished_student):
    path = finished_student / "01_tensor/tensor.py"
    lines = path.read_text().splitlines(keepends=True)
    broken_line = next(i for i, line in enumerate(lines) if "def numel" in line)
    lines[broken_line] = lines[broken_line].replace("def numel(self)", "def numel(self")
    path.write_text("".join(lines))
    result = tito("check", "01")
    assert result.code == 1
    assert f"syntax error in {path}:{broken_line + 1}" in result.stdout, result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_a_stub_reports_not_written_yet_and_scores_zero(tito, manifest, tmp_path, monkeypatch):
    write_stubs(manifest, tmp_path / "stubs")
    monkeypatch.setenv("TITO_MODULES_DIR", str(tmp_path / "stubs"))
    result = tito("check", "01")
    assert result.code == 1
    assert "not written yet: Tensor.__init__" in result.stdout
    assert "score 0/10" in result.stdout


def test_a_deleted_file_is_a_clear_error_and_status_still_works(tito, finished_student):
    (finished_student / "01_tensor/tensor.py").unlink()
    result = tito("check", "01")
    assert result.code == 2
    assert "is missing" in result.stderr and "tito module reset 01" in result.stderr
    status = tito("status")
    assert status.code == 0 and "file missing" in status.stdout


def test_module_reset_backs_up_the_students_file(tito, finished_student, state_dir, manifest):
    path = finished_student / "02_activations/activations.py"
    path.write_text("# my own work, half done\n")
    result = tito("module", "reset", "activations", "--yes")
    assert result.code == 0, result.stderr
    backups = list((state_dir / "backups" / "02_activations").iterdir())
    assert len(backups) == 1 and backups[0].read_text() == "# my own work, half done\n"
    assert path.read_text() == (manifest.root / "modules/02_activations/activations.py").read_text()
    assert "raise NotImplementedError()" in path.read_text()


def test_reset_twice_keeps_both_backups(tito, finished_student, state_dir):
    path = finished_student / "03_layers/layers.py"
    path.write_text("# first attempt\n")
    assert tito("module", "reset", "03", "--yes").code == 0
    path.write_text("# second attempt\n")
    assert tito("module", "reset", "03", "--yes").code == 0
    contents = sorted(p.read_text() for p in (state_dir / "backups" / "03_layers").iterdir())
    assert contents == ["# first attempt\n", "# second attempt\n"]


def test_check_all_records_progress_unlocks_and_notices_edits(tito, finished_student, state_dir):
    result = tito("check", "--all")
    assert result.code == 0, result.stdout
    assert "milestone unlocked: 1957 perceptron" in result.stdout
    progress = json.loads((state_dir / "progress.json").read_text())
    assert [progress["modules"][m]["status"] for m in ("01", "02", "03", "04")] == ["passed"] * 4
    assert progress["modules"]["01"]["score"] == progress["modules"]["01"]["points"]

    status = tito("status")
    assert "passed" in status.stdout and "unlocked" in status.stdout
    with open(finished_student / "02_activations/activations.py", "a") as f:
        f.write("\n# an edit after passing\n")
    status = tito("status")
    assert "modified since check" in status.stdout
    assert "needs 02" in status.stdout  # a milestone runs only on the files as they passed
    locked = tito("milestone", "run", "perceptron", "--preset", "smoke")
    assert locked.code == 2 and "02 activations (modified since check) must pass as the file is now" in locked.stderr


@pytest.mark.parametrize("broken, checked, points", [("01", "03", 8), ("03", "05", 15)])
def test_reference_deps_grades_a_module_despite_a_broken_earlier_one(tito, finished_student, manifest,
                                                                     broken, checked, points):
    module = manifest.find_module(broken)
    student_file = finished_student / module.file
    student_file.write_text((manifest.root / "modules" / module.file).read_text())  # a stub again
    alone = tito("check", checked)
    assert alone.code == 1
    assert f"that is module {module.folder}" in alone.stdout
    helped = tito("check", checked, "--reference-deps")
    assert helped.code == 0, helped.stdout[-3000:]
    assert "with the reference for the modules it builds on" in helped.stdout
    assert f"tests passed, score {points}/{points}" in helped.stdout


def test_relative_state_and_module_folders_work_in_the_sandbox(finished_student, tmp_path):
    """`make demo` passes TITO_STATE_DIR and TITO_MODULES_DIR as paths relative to the course."""
    state = Path(".tito") / f"test-relative-{os.getpid()}-{time.monotonic_ns()}"  # inside the read-only root
    env = dict(os.environ, COLUMNS="200", TITO_STATE_DIR=str(state),
               TITO_MODULES_DIR=os.path.relpath(finished_student, COURSE_ROOT))
    try:
        done = subprocess.run([sys.executable, "-m", "grader.cli", "check", "02"], cwd=COURSE_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
    finally:
        shutil.rmtree(COURSE_ROOT / state, ignore_errors=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tests passed, score 6/6" in done.stdout
