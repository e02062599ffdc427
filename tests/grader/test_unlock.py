"""Milestones unlock when, and only when, every module they require has passed."""

from __future__ import annotations

import dataclasses

import pytest

from grader.checkpoint import CheckpointRun
from grader.checkpoint import TestOutcome as Outcome  # not a test class
from grader.checking import failure_cause
from grader.errors import TitoError
from grader.manifest import load_manifest
from grader.milestones import is_unlocked, missing_modules, newly_unlocked, run_milestone
from grader.progress import ModuleResult, Progress, now, store_for
from grader.workspace import ModuleState, file_sha256, module_state, reset_module
from tests.grader.conftest import COURSE_ROOT

MANIFEST = load_manifest(COURSE_ROOT)


def result(status: str, number: int) -> ModuleResult:
    """A result for the student's file of module `number` as it is now."""
    path = MANIFEST.student_path(MANIFEST.module_by_number(number))
    return ModuleResult(status=status, score=0, points=1, passed=0, total=1, checked_at=now(),
                        sha256=file_sha256(path) if path.exists() else "")


def progress_with(passed: list[int], failed: list[int] = ()) -> Progress:
    modules = {f"{n:02d}": result("passed", n) for n in passed}
    modules.update({f"{n:02d}": result("failed", n) for n in failed})
    return Progress(modules=modules)


def test_perceptron_is_locked_until_modules_01_to_04_pass(manifest):
    perceptron = manifest.find_milestone("perceptron")
    assert [m.id for m in missing_modules(manifest, progress_with([]), perceptron)] == ["01", "02", "03", "04"]
    assert [m.id for m in missing_modules(manifest, progress_with([1, 2, 4], failed=[3]), perceptron)] == ["03"]
    assert not is_unlocked(manifest, progress_with([1, 2, 4], failed=[3]), perceptron)
    assert is_unlocked(manifest, progress_with([1, 2, 3, 4]), perceptron)


def test_newly_unlocked_names_only_the_milestones_a_check_completed(manifest):
    before, after = progress_with([1, 2, 3]), progress_with([1, 2, 3, 4])
    assert [m.id for m in newly_unlocked(manifest, before, after)] == ["perceptron"]
    assert newly_unlocked(manifest, after, after) == []


def test_an_unavailable_milestone_never_unlocks(manifest):
    tinygpt = manifest.find_milestone("tinygpt")
    everything = progress_with(list(range(1, 21)))
    assert is_unlocked(manifest, everything, tinygpt)
    assert not is_unlocked(manifest, everything, dataclasses.replace(tinygpt, available=False))


def test_a_file_edited_since_it_passed_locks_the_milestone_again(manifest):
    progress = progress_with([1, 2, 3, 4])
    progress.modules["02"].sha256 = "0" * 64  # the file is no longer the one that passed
    perceptron = manifest.find_milestone("perceptron")
    assert [m.id for m in missing_modules(manifest, progress, perceptron)] == ["02"]
    with pytest.raises(TitoError, match=r"02 activations \(modified since check\) must pass as the file is now"):
        run_milestone(manifest, progress, perceptron, "smoke")


def test_a_reset_module_is_not_checked_and_locks_what_needs_it(tmp_path, monkeypatch, state_dir):
    student = tmp_path / "student"
    module = MANIFEST.find_module("02")
    (student / module.folder).mkdir(parents=True)
    (student / module.file).write_text("# my work\n")
    monkeypatch.setenv("TITO_MODULES_DIR", str(student))
    manifest = load_manifest(COURSE_ROOT)
    with store_for(manifest.state_dir).update() as progress:
        progress.modules["02"] = ModuleResult("passed", 6, 6, 1, 1, now(), file_sha256(student / module.file))
    reset_module(manifest, module)
    after = store_for(manifest.state_dir).load()
    assert "02" not in after.modules
    assert module_state(manifest, after, module) is ModuleState.NOT_CHECKED
    assert (manifest.state_dir / "backups" / module.folder).exists()


def test_a_failure_that_comes_from_an_earlier_module_names_it(manifest):
    losses = manifest.find_module("04")
    broken_import = CheckpointRun(losses, errors=["cannot import your code: syntax error in modules/01_tensor/tensor.py:3"])
    assert failure_cause(manifest, losses, broken_import) == "module 01 did not import"
    unfinished = CheckpointRun(losses, tests=[Outcome("t", False, "not written yet: Tensor.sum (modules/01_tensor/"
                                                                         "tensor.py:9)\n  that is module 01_tensor")])
    assert failure_cause(manifest, losses, unfinished) == "module 01 is not finished"
    own = CheckpointRun(losses, tests=[Outcome("t", False, "not written yet: MSELoss (modules/04_losses/losses.py:9)")])
    assert failure_cause(manifest, losses, own) == ""


def test_running_a_locked_milestone_names_the_missing_modules(tito):
    result = tito("milestone", "run", "perceptron", "--preset", "smoke")
    assert result.code == 2
    assert "locked" in result.stderr and "01 tensor" in result.stderr and "04 losses" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unlocked_milestone_without_its_data_says_which_fetch_to_run(manifest, tmp_path, monkeypatch):
    import pytest

    from grader.errors import TitoError
    from grader.milestones import run_milestone

    monkeypatch.setenv("TITO_DATA", str(tmp_path / "empty-cache"))
    mlp = manifest.find_milestone("mlp")
    with pytest.raises(TitoError, match=r"needs the mnist data: run `tito data fetch mnist` first"):
        run_milestone(manifest, progress_with(list(mlp.requires)), mlp, "smoke")


def test_status_tells_a_passed_smoke_run_from_a_missed_target(manifest):
    from grader.display import milestone_line
    from grader.progress import MilestoneResult

    xor = manifest.find_milestone("xor")
    progress = progress_with([1, 2, 3, 4, 5, 6, 7])
    progress.milestones["xor"] = MilestoneResult("smoke", {"mlp_accuracy": 1.0, "single_layer_accuracy": 0.5,
                                                           "mlp_final_loss": 0.01}, achieved=False, ran_at=now())
    assert "smoke run passed" in milestone_line(manifest, progress, xor)[1]
    progress.milestones["xor"] = MilestoneResult("default", {"mlp_accuracy": 0.75, "single_layer_accuracy": 0.5},
                                                 achieved=False, ran_at=now())
    assert "missed its target" in milestone_line(manifest, progress, xor)[1]


def test_status_says_a_run_on_the_documentation_text_needs_the_real_data(manifest):
    """A run that met its targets on the stand-in text is neither achieved nor a missed target:
    status says which data set the real run needs."""
    from grader.display import milestone_line
    from grader.progress import MilestoneResult

    microgpt = manifest.find_milestone("microgpt")
    progress = progress_with(list(microgpt.requires))
    for preset, metrics in [("smoke", {"loss_drop": 1.0, "val_loss_gap_to_bigram": 0.5}),
                            ("default", {"val_loss_gap_to_bigram": -0.1})]:
        progress.milestones["microgpt"] = MilestoneResult(preset, metrics, achieved=False, ran_at=now(),
                                                          substitute_data="names")
        detail = milestone_line(manifest, progress, microgpt)[1]
        assert "passed on the documentation text" in detail and "`tito data fetch names`" in detail, preset
        assert "missed" not in detail and "the default run achieves it" not in detail
