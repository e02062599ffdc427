"""The student distribution: what a student downloads. No solutions, no hidden checks.

    modules/            the stubs (generated from solutions/ just before)
    notebooks/          nbgrader's release notebooks, one per module
    originals/modules/  untouched stubs, so `tito module reset` works without git
    tests/checkpoints/  the visible checkpoints (+ tests/conftest.py)
    grader/ tinytorch/ milestones/ tito.toml README.md pyproject.toml

Everything is copied by an allow-list, so a new instructor-only folder never leaks by default.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .course import assignment_name, notebook_name
from .errors import TitoError
from .manifest import Manifest

COPIED = ("grader", "tinytorch", "milestones", "tests/checkpoints", "tests/conftest.py", "tests/__init__.py",
          "tito.toml", "README.md", "pyproject.toml")
ORIGINALS = "originals"
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")


def write_distribution(manifest: Manifest, course: Path, out: Path) -> Path:
    """Write the student distribution into `out` (which must be empty or absent)."""
    if out.exists() and any(out.iterdir()):
        raise TitoError(f"{out} is not empty: give a new folder for the student distribution")
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        source = manifest.root / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=SKIPPED)
        elif source.is_file():
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / name)
    for module in manifest.available_modules():
        stub = manifest.root / manifest.modules_dir / module.file
        for target in (out / manifest.modules_dir / module.file, out / ORIGINALS / manifest.modules_dir / module.file):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(stub, target)
        notebook = course / "release" / assignment_name(module) / f"{notebook_name(module)}.ipynb"
        (out / "notebooks").mkdir(exist_ok=True)
        shutil.copy2(notebook, out / "notebooks" / f"{module.folder}.ipynb")
    return out
