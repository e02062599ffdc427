"""The instructor pipeline end to end: nbgrader release, the student distribution, autograding
generated submissions into the gradebook, export, feedback, and the verified solution build."""

from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader.course import build_release, graded_cells
from grader.manifest import Manifest, load_manifest

COURSE_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = load_manifest(COURSE_ROOT)
GRADED = MANIFEST.find_module("02")  # a quick checkpoint: the pipeline, not the module, is under test


def solution_regions(manifest: Manifest) -> list[str]:
    """The text of every `### BEGIN SOLUTION` region of every available module."""
    regions = []
    for module in manifest.available_modules():
        text = manifest.solution_path(module).read_text()
        regions += re.findall(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", text, flags=re.S)
    return regions


def hidden_test_names(manifest: Manifest) -> list[str]:
    """The name of every hidden test: none may appear in what a student receives."""
    bodies = []
    for module in manifest.available_modules():
        text = manifest.hidden_path(module).read_text()
        bodies += re.findall(r"^def (test_\w+)", text, flags=re.M)
    return bodies


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    return build_release(MANIFEST, tmp_path_factory.mktemp("course"))


def test_release_notebooks_have_graded_cells_and_no_solution_or_hidden_test(course):
    for module in MANIFEST.available_modules():
        notebook = nbformat.read(course / "release" / module.folder / f"{Path(module.file).stem}.ipynb", 4)
        text = "\n".join(cell.source for cell in notebook.cells)
        assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "hidden=True" not in text
        assert "raise NotImplementedError()" in text
        points = [c.metadata["nbgrader"]["points"] for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade")]
        assert sum(points) == pytest.approx(module.points), module.id  # the manifest's points, nothing else


def test_student_distribution_has_no_solution_and_no_hidden_test_and_runs(tito, tmp_path, course):
    out = tmp_path / "dist"
    done = tito("release", "--out", str(out), "--course", str(course), timeout=600)
    assert done.code == 0, done.stderr
    assert not (out / "solutions").exists() and not (out / "tests" / "hidden").exists()
    texts = {path: path.read_text(errors="ignore") for path in out.rglob("*") if path.is_file()}
    regions = [r for r in solution_regions(MANIFEST) if len(r.strip()) > 40]  # one-liners can recur innocently
    assert len(regions) > 100
    leaks = [(str(path), region[:60]) for region in regions for path, text in texts.items() if region in text]
    assert not leaks, leaks[:5]
    hidden_names = hidden_test_names(MANIFEST)
    assert hidden_names
    assert not [(str(p), n) for n in hidden_names for p, t in texts.items() if f"def {n}(" in t]
    readme = (out / "README.md").read_text()  # the student's own README, made from the course README
    assert "make setup" in readme and "tito check 01" in readme
    assert not [word for word in ("make demo", "make test", "authoring.md", "--reference-deps", "--source solutions",
                                  "--stub", "<!--") if word in readme]
    assert ".venv/" in (out / ".gitignore").read_text()
    for module in MANIFEST.available_modules():
        assert (out / "notebooks" / f"{module.folder}.ipynb").is_file()
        assert (out / "originals" / "modules" / module.file).read_text() == (out / "modules" / module.file).read_text()

    # a real install, as a student does it: `make setup` (a venv of its own), then tito from it
    setup = subprocess.run(["make", "-C", str(out), "setup", f"PYTHON={sys.executable}"],
                           capture_output=True, text=True, timeout=900)
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
    env = {"TITO_STATE_DIR": str(tmp_path / "state")}
    check = subprocess.run([str(out / ".venv" / "bin" / "tito"), "check", "01"], cwd=out, capture_output=True,
                           text=True, timeout=600, env=dict(os.environ, COLUMNS="200", **env))
    assert check.returncode == 1, check.stdout + check.stderr
    assert "not written yet" in check.stdout and "0/" in check.stdout and str(out) not in check.stderr
    instructor_only = subprocess.run([str(out / ".venv" / "bin" / "tito"), "check", "01", "--reference-deps"], cwd=out,
                                     capture_output=True, text=True, env=dict(os.environ, COLUMNS="200", **env))
    assert instructor_only.returncode == 2 and "not part of the student distribution" in instructor_only.stderr
    assert "--reference-deps" not in subprocess.run([str(out / ".venv" / "bin" / "tito"), "check", "--help"], cwd=out,
                                                     capture_output=True, text=True).stdout
    where = subprocess.run([str(out / ".venv" / "bin" / "python"), "-c",
                            "import grader, tinytorch; print(grader.__file__, tinytorch.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert where.stdout.count(str(out)) == 2, where.stdout  # the distribution's own grader and router
    reset = subprocess.run([str(out / ".venv" / "bin" / "tito"), "module", "reset", "01", "--yes"], cwd=out,
                           capture_output=True, text=True, env=dict(os.environ, **env))
    assert reset.returncode == 0, reset.stdout + reset.stderr  # from originals/: no solutions, no git


def make_submissions(root: Path, course: Path) -> None:
    """Students: the reference, the stub, an infinite loop, a tamperer, a syntax error, a notebook."""
    solution = MANIFEST.solution_path(GRADED).read_text()
    stub = (COURSE_ROOT / MANIFEST.modules_dir / GRADED.file).read_text()
    name = Path(GRADED.file).name

    def write(student: str, text: str, filename: str = name) -> Path:
        path = root / student / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    write("reference", solution)
    write("stub", stub)
    looping = solution.replace("        return Tensor(np.tanh(x.data))", "        while True:\n            pass")
    assert looping != solution
    write("endless_loop", looping)
    write("syntax_error", solution.replace("class Tanh:", "class Tanh(:"))
    # a tamperer: stub code, the graded cell rewritten to claim full marks, and a doctored checkpoint
    release = nbformat.read(course / "release" / GRADED.folder / f"{Path(GRADED.file).stem}.ipynb", 4)
    for cell in release.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = f"{GRADED.points}"
    (root / "tamperer").mkdir()
    nbformat.write(release, root / "tamperer" / f"{Path(GRADED.file).stem}.ipynb")
    write("tamperer", "def test_nothing():\n    pass\n", f"tests/checkpoints/{Path(GRADED.checkpoint).name}")
    # a notebook user who finished: the source notebook (solution + graded cells)
    source = nbformat.read(course / "source" / GRADED.folder / f"{Path(GRADED.file).stem}.ipynb", 4)
    (root / "notebook_user").mkdir()
    nbformat.write(source, root / "notebook_user" / f"{Path(GRADED.file).stem}.ipynb")


def read_export(path: Path) -> dict[str, float]:
    with open(path) as handle:
        return {row["student"]: float(row[GRADED.folder]) for row in csv.DictReader(handle)}


def test_grade_export_feedback_end_to_end(tito, tmp_path, course):
    submissions = tmp_path / "submissions"
    make_submissions(submissions, course)
    done = tito("grade", str(submissions), "--course", str(course), "--test-timeout", "3", timeout=900)
    assert done.code == 0, done.stdout + done.stderr
    assert "graded 6 submissions" in done.stdout

    assert tito("export", "--course", str(course), "--out", str(tmp_path / "grades.csv")).code == 0
    scores = read_export(tmp_path / "grades.csv")
    full = GRADED.points
    assert scores["reference"] == full and scores["notebook_user"] == full
    assert scores["stub"] == 0 and scores["tamperer"] == 0 and scores["syntax_error"] == 0
    assert 0 < scores["endless_loop"] < full  # the looping checks fail, the rest still count

    canvas = tito("export", "--format", "canvas", "--course", str(course), "--out", str(tmp_path / "canvas.csv"))
    assert canvas.code == 0
    rows = list(csv.reader(open(tmp_path / "canvas.csv")))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"] and rows[1][0] == "Points Possible"
    assert len(rows) == 2 + 6

    assert tito("feedback", "--course", str(course), "--out", str(tmp_path / "feedback")).code == 0
    loop_report = (tmp_path / "feedback" / "endless_loop.md").read_text()
    assert "✗" in loop_report and "✓" in loop_report and "additional instructor checks" in loop_report
    syntax_report = (tmp_path / "feedback" / "syntax_error.md").read_text()
    assert "syntax error" in syntax_report.lower() or "cannot import" in syntax_report
    all_feedback = "\n".join(p.read_text() for p in (tmp_path / "feedback").glob("*.md"))
    hidden = MANIFEST.hidden_path(GRADED).read_text()
    docstrings = re.findall(r'def test_\w+\(.*?\):\n\s+"""(.+?)"""', hidden, flags=re.S)
    assert docstrings and not [d for d in docstrings if d.strip() in all_feedback]

    # nbgrader's own gradebook holds the results: one submission per student and module
    with sqlite3.connect(course / "gradebook.db") as db:
        count = db.execute("select count(*) from submitted_assignment").fetchone()[0]
    assert count == 6
    # grading again is idempotent
    again = tito("grade", str(submissions), "--course", str(course), "--test-timeout", "3", timeout=900)
    assert again.code == 0
    assert tito("export", "--course", str(course), "--out", str(tmp_path / "again.csv")).code == 0
    assert read_export(tmp_path / "again.csv") == scores
    with sqlite3.connect(course / "gradebook.db") as db:
        assert db.execute("select count(*) from submitted_assignment").fetchone()[0] == 6
    assert json.loads((course / "results" / "reference" / f"{GRADED.folder}.json").read_text())["error"] == ""


def test_graded_cells_take_their_points_from_the_manifest():
    for module in MANIFEST.available_modules():
        cells = graded_cells(MANIFEST, module)
        points = [c.metadata["nbgrader"]["points"] for c in cells if "nbgrader" in c.metadata]
        assert sum(points) == pytest.approx(module.points)
        assert "BEGIN HIDDEN TESTS" in cells[-1].source and "BEGIN HIDDEN TESTS" not in cells[-2].source


def test_solution_build_autogrades_the_reference_to_full_marks(tito, tmp_path):
    done = tito("solution", "--course", str(tmp_path / "course"), timeout=900)
    assert done.code == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "the solution notebooks grade to full marks" in done.stdout
    assert len(list((tmp_path / "course" / "solution").glob("*/*.ipynb"))) == len(MANIFEST.available_modules())
    # executing the notebooks (nbgrader's solution build does) leaves no files for nbgrader to release
    for step in ("source", "release", "solution"):
        assert {p.suffix for p in (tmp_path / "course" / step).rglob("*") if p.is_file()} == {".ipynb"}, step


def test_bad_instructor_input_gets_one_line_errors(tito, tmp_path):
    missing = tito("grade", str(tmp_path / "nowhere"), "--course", str(tmp_path / "course"))
    assert missing.code == 2 and "is not a folder of student submissions" in missing.stderr
    assert "Traceback" not in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    no_gradebook = tito("export", "--course", str(tmp_path / "empty"), "--out", str(tmp_path / "g.csv"))
    assert no_gradebook.code == 2 and "run `tito grade SUBMISSIONS` first" in no_gradebook.stderr
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "keep.txt").write_text("an instructor's file")
    occupied = tito("release", "--out", str(tmp_path / "dist"), "--course", str(tmp_path / "course"))
    assert occupied.code == 2 and "is not empty" in occupied.stderr
    assert (tmp_path / "dist" / "keep.txt").read_text() == "an instructor's file"
