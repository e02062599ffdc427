"""The nbgrader course tree: source notebooks from solutions/, then nbgrader's own steps.

    <course>/source/NN_slug/slug.ipynb     from solutions/NN_slug/slug.py (jupytext) + graded cells
    <course>/release/NN_slug/slug.ipynb    nbgrader generate_assignment (the student notebooks)
    <course>/solution/NN_slug/slug.ipynb   nbgrader's GenerateSolution
    <course>/gradebook.db                  nbgrader's SQLite gradebook (assignments, then grades)
    <course>/submitted|autograded/STUDENT/NN_slug/slug.ipynb   what `tito grade` shows formgrader
    <course>/results/STUDENT/NN_slug.json  `tito grade`'s judged result of one submission (feedback reads it)

Every module is an nbgrader assignment named after its folder (`05_autograd`) with one
notebook. Two locked, graded cells are appended to each source notebook: the first runs the
visible checkpoint, the second (between nbgrader's hidden-test markers, so the release and the
feedback never show it) runs the hidden checks. Both call grader.notebook, which runs the
pytest files: the checkpoints stay the one source of tests. Points come from the manifest.
Nothing here knows any particular module, so a new module needs no change.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .errors import TitoError
from .manifest import Manifest, Module

NBGRADER_SCHEMA = 3
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}  # what nbgrader executes with


def course_root(manifest: Manifest) -> Path:
    return manifest.state_dir / "course"


def assignment_name(module: Module) -> str:
    return module.folder


def notebook_name(module: Module) -> str:
    return Path(module.file).stem


def results_path(course: Path, student: str, module: Module) -> Path:
    return course / "results" / student / f"{module.folder}.json"


def grade_cell_ids(module: Module) -> tuple[str, str]:
    """The grade_id of the visible checkpoint cell and of the hidden checks cell."""
    return f"checkpoint-{module.id}", f"hidden-checks-{module.id}"


def _graded_cell(source: str, grade_id: str, points: float) -> Any:
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                                 "schema_version": NBGRADER_SCHEMA, "solution": False, "task": False}
    return cell


def graded_cells(manifest: Manifest, module: Module) -> list[Any]:
    """The checkpoint cell and the hidden-checks cell appended to a module's notebook."""
    import nbformat

    visible_points, hidden_points = manifest.grading.split_points(module.points)
    visible_id, hidden_id = grade_cell_ids(module)
    heading = nbformat.v4.new_markdown_cell(
        f"## Grading\n\nThe cell below runs `tests/checkpoints/{Path(module.checkpoint).name}` on the code of "
        f"this notebook, as `tito check {module.id}` does, and is worth {visible_points:g} points. "
        "It is locked: the grader uses its original text.")
    visible = _graded_cell(
        f"from grader.notebook import grade_this_notebook\n\ngrade_this_notebook({module.id!r}, points={visible_points})",
        visible_id, visible_points)
    hidden = _graded_cell(
        "### BEGIN HIDDEN TESTS\nfrom grader.notebook import grade_this_notebook\n\n"
        f"grade_this_notebook({module.id!r}, points={hidden_points}, hidden=True)\n### END HIDDEN TESTS",
        hidden_id, hidden_points)
    return [heading, visible, hidden]


def source_notebook(manifest: Manifest, module: Module) -> Any:
    """The solution file as a notebook, with the graded cells at the end."""
    from .stubs import read_notebook

    notebook = read_notebook(manifest.solution_path(module).read_text())
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    notebook.cells.extend(graded_cells(manifest, module))
    return notebook


def nbgrader_api(course: Path, **settings: Any) -> Any:
    """nbgrader's Python API on `course`; settings like Execute={"timeout": 60} go to its config."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    # nbgrader creates the gradebook by running `alembic`, which must be on PATH
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
    config = Config()
    config.CourseDirectory.root = str(course)
    config.CourseDirectory.db_url = f"sqlite:///{course / 'gradebook.db'}"
    for section, values in settings.items():
        for key, value in values.items():
            setattr(config[section], key, value)
    coursedir = CourseDirectory(config=config)
    return NbGraderAPI(coursedir=coursedir, config=config)


def checked(result: dict, what: str) -> dict:
    """nbgrader's API reports failure in a dict instead of raising: turn it into a TitoError."""
    if not result.get("success"):
        last = (result.get("error") or result.get("log") or "no details").strip().splitlines()[-1:]
        raise TitoError(f"nbgrader {what} failed: {' '.join(last)}")
    return result


def write_source(manifest: Manifest, course: Path, modules: list[Module]) -> None:
    import nbformat

    for module in modules:
        path = course / "source" / assignment_name(module) / f"{notebook_name(module)}.ipynb"
        shutil.rmtree(path.parent, ignore_errors=True)  # nbgrader releases every file found here
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(source_notebook(manifest, module), path)


def build_release(manifest: Manifest, course: Path | None = None) -> Path:
    """source/ from the solutions, release/ through nbgrader generate_assignment; the course root."""
    if not manifest.has_solutions():
        raise TitoError("building the course needs solutions/ (an instructor checkout)")
    course = course or course_root(manifest)
    modules = manifest.available_modules()
    write_source(manifest, course, modules)
    api = nbgrader_api(course)
    for module in modules:
        checked(api.generate_assignment(assignment_name(module), force=True, create=True),
                f"generate_assignment {assignment_name(module)}")
    return course


def build_solution(manifest: Manifest, course: Path) -> list[Path]:
    """solution/ through nbgrader's GenerateSolution; the notebooks written."""
    from nbgrader.converters import GenerateSolution

    api = nbgrader_api(course)
    written = []
    for module in manifest.available_modules():
        api.coursedir.assignment_id = assignment_name(module)
        converter = GenerateSolution(coursedir=api.coursedir, parent=api)
        converter.force = True
        converter.start()
        written.append(course / "solution" / assignment_name(module) / f"{notebook_name(module)}.ipynb")
    api.coursedir.assignment_id = ""
    missing = [path for path in written if not path.exists()]
    if missing:
        raise TitoError(f"nbgrader GenerateSolution wrote no {missing[0]}")
    return written
