"""The 1957 perceptron: runs on the reference, meets its target, plots, records; misses fail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

COURSE_ROOT = Path(__file__).resolve().parents[2]


def run_script(script: str, preset: str, state_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TITO_SOURCE": "solutions", "TITO_STATE_DIR": str(state_dir), "MPLBACKEND": "Agg",
           "COLUMNS": "120"}
    return subprocess.run([sys.executable, str(COURSE_ROOT / script), "--preset", preset], cwd=COURSE_ROOT,
                          env=env, capture_output=True, text=True, timeout=120)


def test_perceptron_smoke_reaches_its_target_and_saves_a_plot(tmp_path):
    done = run_script("milestones/perceptron_1957.py", "smoke", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "accuracy = 1" in done.stdout
    plot = tmp_path / "milestones" / "perceptron" / "decision_boundary.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["perceptron"]
    assert recorded["preset"] == "smoke" and recorded["metrics"]["accuracy"] == 1.0
    assert recorded["achieved"] is False  # smoke runs never count as achieving a milestone


def test_perceptron_default_preset_achieves_the_milestone(tmp_path):
    done = run_script("milestones/perceptron_1957.py", "default", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["perceptron"]
    assert recorded["achieved"] is True


def test_a_missed_target_exits_non_zero(tmp_path, monkeypatch):
    monkeypatch.setenv("TITO_STATE_DIR", str(tmp_path))
    sys.path.insert(0, str(COURSE_ROOT / "milestones"))
    try:
        import harness
    finally:
        sys.path.pop(0)
    from grader.manifest import load_manifest

    manifest = load_manifest(COURSE_ROOT)
    run = harness.MilestoneRun(manifest, manifest.find_milestone("perceptron"), "default", {})
    with pytest.raises(SystemExit) as exited:
        run.finish({"accuracy": 0.93})
    assert exited.value.code == 1
    recorded = json.loads((tmp_path / "progress.json").read_text())["milestones"]["perceptron"]
    assert recorded["achieved"] is False and recorded["metrics"]["accuracy"] == 0.93
