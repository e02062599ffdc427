"""Milestones unlock when, and only when, every module they require has passed."""

from __future__ import annotations

from grader.milestones import is_unlocked, missing_modules, newly_unlocked
from grader.progress import ModuleResult, Progress, now


def progress_with(passed: list[int], failed: list[int] = ()) -> Progress:
    def result(status: str) -> ModuleResult:
        return ModuleResult(status=status, score=0, points=1, passed=0, total=1, checked_at=now(), sha256="")
    modules = {f"{n:02d}": result("passed") for n in passed}
    modules.update({f"{n:02d}": result("failed") for n in failed})
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
    assert not tinygpt.available
    assert not is_unlocked(manifest, progress_with(list(range(1, 21))), tinygpt)


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
