"""Every available milestone runs on the reference: smoke preset under a minute, meets its
smoke targets, saves its plots and records the run; a missed target exits non-zero."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from grader.manifest import load_manifest

COURSE_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load_manifest(COURSE_ROOT)
AVAILABLE = [m for m in MANIFEST.milestones if m.available]


def run_script(milestone, preset: str, state_dir: Path, **extra_env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "TITO_SOURCE": "solutions", "TITO_STATE_DIR": str(state_dir), "MPLBACKEND": "Agg",
           "COLUMNS": "120", **extra_env}
    return subprocess.run([sys.executable, str(MANIFEST.script_path(milestone)), "--preset", preset],
                          cwd=COURSE_ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def fetched_data() -> None:
    """The data sets the available milestones need, fetched the only allowed way: tito data fetch."""
    for name in sorted({name for milestone in AVAILABLE for name in milestone.datasets}):
        done = subprocess.run([sys.executable, "-m", "grader.cli", "data", "fetch", name], cwd=COURSE_ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("milestone", AVAILABLE, ids=[m.id for m in AVAILABLE])
def test_smoke_preset_meets_its_targets_and_plots(milestone, tmp_path, fetched_data):
    started = time.monotonic()
    done = run_script(milestone, "smoke", tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"][milestone.id]
    assert recorded["preset"] == "smoke" and recorded["achieved"] is False  # smoke never achieves
    for target in milestone.smoke_targets:
        assert target.met_by(recorded["metrics"][target.metric]), target
    assert recorded["plots"], "no plot saved"
    for plot in recorded["plots"]:
        assert Path(plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"{milestone.id} smoke: {elapsed:.1f} s")


def test_perceptron_default_preset_achieves_the_milestone(tmp_path):
    done = run_script(MANIFEST.find_milestone("perceptron"), "default", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["perceptron"]
    assert recorded["achieved"] is True and recorded["metrics"]["accuracy"] == 1.0


@pytest.mark.parametrize("milestone_id, dataset, model_line", [
    ("microgpt", "names", "4,192 parameters"),
    ("tinygpt", "shakespeare", "CPython's documentation: "),
])
def test_without_its_data_a_milestone_runs_on_the_documentation_text_and_says_so(milestone_id, dataset, model_line,
                                                                                 tmp_path):
    """No download (make demo): with an empty data cache the smoke run trains on the
    documentation's text, says so, passes its smoke targets and records nothing as achieved."""
    milestone = MANIFEST.find_milestone(milestone_id)
    done = run_script(milestone, "smoke", tmp_path / "state", TITO_DATA=str(tmp_path / "empty-cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    output = " ".join(done.stdout.split())  # rich wraps long lines
    assert f"data set '{dataset}' is not fetched: using CPython's documentation text instead" in output
    assert f"`tito data fetch {dataset}` for the real run" in output
    assert model_line in output
    assert f"passed on substitute data (`tito data fetch {dataset}` to achieve it)" in output
    recorded = json.loads((tmp_path / "state" / "progress.json").read_text())["milestones"][milestone_id]
    assert recorded["achieved"] is False and recorded["substitute_data"] == dataset
    for target in milestone.smoke_targets:
        assert target.met_by(recorded["metrics"][target.metric]), target


@pytest.fixture
def harness(tmp_path, monkeypatch):
    """The milestone harness module, recording into a scratch state folder."""
    monkeypatch.setenv("TITO_STATE_DIR", str(tmp_path))
    monkeypatch.syspath_prepend(str(COURSE_ROOT / "milestones"))
    import harness as module

    return module


def test_a_missed_target_exits_non_zero_and_is_recorded(tmp_path, harness):
    run = harness.MilestoneRun(MANIFEST, MANIFEST.find_milestone("perceptron"), "default", {})
    with pytest.raises(SystemExit) as exited:
        run.finish({"accuracy": 0.93})
    assert exited.value.code == 1
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["perceptron"]
    assert recorded["achieved"] is False and recorded["metrics"]["accuracy"] == 0.93


def test_a_smoke_run_never_erases_an_achieved_result(tmp_path, harness):
    perceptron = MANIFEST.find_milestone("perceptron")
    with pytest.raises(SystemExit):
        harness.MilestoneRun(MANIFEST, perceptron, "default", {}).finish({"accuracy": 1.0})
    with pytest.raises(SystemExit):
        harness.MilestoneRun(MANIFEST, perceptron, "smoke", {}).finish({"accuracy": 0.5})
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["perceptron"]
    assert recorded["achieved"] is True and recorded["preset"] == "default"


def test_a_default_run_on_substitute_text_never_achieves_the_milestone(tmp_path, harness, monkeypatch):
    """microGPT's default preset meeting its target on the documentation text, the names not fetched."""
    monkeypatch.setenv("TITO_DATA", str(tmp_path / "empty-cache"))
    run = harness.MilestoneRun(MANIFEST, MANIFEST.find_milestone("microgpt"), "default", {})
    text, fetched = run.text_dataset("names")
    assert not fetched and len(text) > 100_000
    with pytest.raises(SystemExit) as exited:
        run.finish({"val_loss_gap_to_bigram": -0.1})
    assert exited.value.code == 0  # the target is met...
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["microgpt"]
    assert recorded["achieved"] is False  # ...but not on the census names


def test_a_module_that_stops_a_milestone_is_named_in_one_line(tmp_path):
    """On the stubs (the course's modules/ folder), the perceptron stops in module 03's Linear."""
    env = {**os.environ, "TITO_SOURCE": "modules", "TITO_STATE_DIR": str(tmp_path), "MPLBACKEND": "Agg",
           "COLUMNS": "300"}
    done = subprocess.run([sys.executable, str(MANIFEST.script_path(MANIFEST.find_milestone("perceptron"))),
                           "--preset", "smoke"], cwd=COURSE_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert "error: module 03_layers stopped the milestone in Linear.__init__ (" in done.stdout
    assert "not written yet; `tito check 03` shows what is wrong" in done.stdout
    assert "Traceback" in (tmp_path / "milestones" / "perceptron" / "crash.log").read_text()


def test_an_optional_fast_path_is_taken_only_when_its_module_is_ready(tmp_path, harness, monkeypatch):
    """modules_ready(18): true on the reference or with TITO_REFERENCE covering 18 and what it builds on;
    false for a student whose module 18 (or one it builds on) has not passed as the file is now."""
    run = harness.MilestoneRun(MANIFEST, MANIFEST.find_milestone("cnn"), "smoke", {})
    monkeypatch.setenv("TITO_SOURCE", "modules")
    monkeypatch.delenv("TITO_REFERENCE", raising=False)
    assert run.modules_ready(18) is False  # nothing checked in this fresh state folder
    needed = [m.number for m in MANIFEST.dependencies(MANIFEST.module_by_number(18))] + [18]
    monkeypatch.setenv("TITO_REFERENCE", ",".join(map(str, needed[1:])))  # all but the first
    assert run.modules_ready(18) is False
    monkeypatch.setenv("TITO_REFERENCE", ",".join(map(str, needed)))
    assert run.modules_ready(18) is True
    monkeypatch.delenv("TITO_REFERENCE")
    monkeypatch.setenv("TITO_SOURCE", "solutions")
    assert run.modules_ready(18) is True
