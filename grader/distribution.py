"""The student distribution: what a student downloads. No solutions, no hidden checks.

    modules/            the stubs, generated from solutions/
    notebooks/          nbgrader's release notebooks, one per module
    originals/modules/  untouched stubs, so `tito module reset` works without git
    tests/checkpoints/  the visible checkpoints (+ tests/conftest.py)
    grader/ tinytorch/ milestones/ tito.toml pyproject.toml
    README.md           the student's, generated from the course README (`student_readme`)
    .gitignore          .venv/, .tito/, egg-info
    Makefile            the student's: `make setup`, `make status`, `make check`

Everything is copied by an allow-list, so a new instructor-only folder never leaks by default.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from .course import assignment_name, notebook_name
from .errors import TitoError
from .manifest import Manifest
from .stubs import stub_text

COPIED = ("grader", "tinytorch", "milestones", "tests/checkpoints", "tests/conftest.py", "tests/__init__.py",
          "tito.toml", "pyproject.toml")
STUDENT_GITIGNORE = ".venv/\n.tito/\n*.egg-info/\n__pycache__/\n.ipynb_checkpoints/\n"
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


def student_readme(text: str) -> str:
    """The student's README, made from the course README (one source, so the two cannot drift).

    The course README marks what students get: the spans between `<!-- student: begin -->` and
    `<!-- student: end -->`, without `<!-- instructor-only -->` ... `<!-- /instructor-only -->`
    blocks, and with the text of `<!-- student-only ... -->` comments (invisible in the
    instructor's README) shown.
    """
    text = re.sub(r"<!-- instructor-only -->.*?<!-- /instructor-only -->\n?", "", text, flags=re.S)
    text = re.sub(r"<!-- student-only\n(.*?)-->\n?", r"\1", text, flags=re.S)
    spans = re.findall(r"<!-- student: begin -->\n(.*?)<!-- student: end -->", text, flags=re.S)
    return "\n".join(span.strip() + "\n" for span in spans)


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
    (out / "README.md").write_text(student_readme((manifest.root / "README.md").read_text()))
    (out / ".gitignore").write_text(STUDENT_GITIGNORE)
    for module in manifest.available_modules():
        stub = stub_text(manifest.solution_path(module).read_text())  # fresh from the solution
        for target in (out / manifest.modules_dir / module.file, out / ORIGINALS / manifest.modules_dir / module.file):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(stub)
        notebook = course / "release" / assignment_name(module) / f"{notebook_name(module)}.ipynb"
        (out / "notebooks").mkdir(exist_ok=True)
        shutil.copy2(notebook, out / "notebooks" / f"{module.folder}.ipynb")
    return out
