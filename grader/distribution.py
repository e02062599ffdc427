"""The student distribution: what a student downloads. No solutions, no hidden checks.

    modules/            the stubs, generated from solutions/
    notebooks/          nbgrader's release notebooks, one per module
    originals/modules/  untouched stubs, so `tito module reset` works without git
    tests/checkpoints/  the visible checkpoints (+ tests/conftest.py)
    grader/ tinytorch/ milestones/ tito.toml README.md pyproject.toml
    Makefile            the student's: `make setup`, `make status`, `make check`

Everything is copied by an allow-list, so a new instructor-only folder never leaks by default.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .course import assignment_name, notebook_name
from .errors import TitoError
from .manifest import Manifest
from .stubs import stub_text

COPIED = ("grader", "tinytorch", "milestones", "tests/checkpoints", "tests/conftest.py", "tests/__init__.py",
          "tito.toml", "README.md", "pyproject.toml")
ORIGINALS = "originals"
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")

# The course's own Makefile drives the instructor's demo and test suite, which need solutions/.
STUDENT_MAKEFILE = """\
# Set up once, then work with tito (.venv/bin/tito, or `source .venv/bin/activate`).
PYTHON ?= python3

.PHONY: setup status check

setup: .venv/.installed

.venv/.installed: pyproject.toml
\t$(PYTHON) -m venv .venv
\t.venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
\ttouch .venv/.installed

status: setup
\t.venv/bin/tito status

check: setup
\t.venv/bin/tito check --all
"""


def require_empty(out: Path) -> None:
    """The distribution goes into a new folder: never over someone's files."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TitoError(f"{out} is not empty: give a new folder for the student distribution")


def write_distribution(manifest: Manifest, course: Path, out: Path) -> Path:
    """Write the student distribution into `out` (which must be empty or absent)."""
    require_empty(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = manifest.root / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=SKIPPED)
        elif source.is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / name)
    (out / "Makefile").write_text(STUDENT_MAKEFILE)
    for module in manifest.available_modules():
        stub = stub_text(manifest.solution_path(module).read_text())  # fresh from the solution
        for target in (out / manifest.modules_dir / module.file, out / ORIGINALS / manifest.modules_dir / module.file):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(stub)
        notebook = course / "release" / assignment_name(module) / f"{notebook_name(module)}.ipynb"
        (out / "notebooks").mkdir(exist_ok=True)
        shutil.copy2(notebook, out / "notebooks" / f"{module.folder}.ipynb")
    return out
