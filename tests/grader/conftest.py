"""Fixtures for testing the grader: a scratch state folder, a scratch student, a tito runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from grader.manifest import Manifest, load_manifest

COURSE_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    return load_manifest(COURSE_ROOT)


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tito's progress, backups and logs go to a scratch folder, never the real .tito/."""
    folder = tmp_path / "state"
    monkeypatch.setenv("TITO_STATE_DIR", str(folder))
    return folder


@pytest.fixture
def finished_student(tmp_path: Path, manifest: Manifest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A student folder laid out like modules/ whose files are the reference solutions."""
    folder = tmp_path / "student"
    for module in manifest.available_modules():
        target = folder / module.file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(manifest.solution_path(module), target)
    monkeypatch.setenv("TITO_MODULES_DIR", str(folder))
    return folder


@pytest.fixture
def course_without_module_20(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Manifest:
    """The course as it was while module 20 was being written: a copy of tito.toml that marks it
    not yet available, which tito reads through $TITO_ROOT."""
    text = (COURSE_ROOT / "tito.toml").read_text()
    capstone = text.index('slug = "capstone"')
    flag = text.index("available = true", capstone)
    root = tmp_path / "course"
    root.mkdir()
    (root / "tito.toml").write_text(text[:flag] + "available = false" + text[flag + len("available = true"):])
    monkeypatch.setenv("TITO_ROOT", str(root))
    return load_manifest(root)


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@pytest.fixture
def tito(state_dir: Path):
    """Run the real `tito` command line in a child process, as a user would."""

    def run(*arguments: str, timeout: float = 300) -> Result:
        env = dict(os.environ, COLUMNS="200", TITO_STATE_DIR=str(state_dir))
        done = subprocess.run([sys.executable, "-m", "grader.cli", *arguments], cwd=COURSE_ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(done.returncode, done.stdout, done.stderr)

    return run
