"""`tito grade`: every student's submission autograded by nbgrader, in parallel, into the gradebook.

A submissions folder holds one folder per student (its name is the student id) with module
files in any layout: `tensor.py`, `01_tensor.py`, `modules/01_tensor/tensor.py`, or the
release notebook `tensor.ipynb`. Each (student, module) pair is one job:

1. The submission becomes the nbgrader notebook of that module: a `.py` file is read with
   jupytext, the graded cells are added if missing, worked examples (`if __name__ ==
   "__main__":` cells) are dropped because they only slow grading down.
2. A worker process autogrades it with nbgrader in a private course folder holding a copy of
   the gradebook and this one submission only, so student code runs next to no other
   student's files. nbgrader restores locked cells from the source; the graded cells run the
   checkpoint and hidden checks with per-test timeouts and the memory cap.
3. The main process writes the scores into the course gradebook (nbgrader's own SQLite
   database, so formgrader and `nbgrader export` see them) and keeps the per-test results
   for `tito feedback`. Grading again replaces the earlier result.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from .course import KERNELSPEC, assignment_name, course_root, grade_cell_ids, graded_cells, nbgrader_api, notebook_name
from .errors import TitoError
from .manifest import Manifest, Module, load_manifest
from .notebook import GRADE_CALL, RESULTS_DIR, SAVE_RESULTS

EXAMPLE_CELL = 'if __name__ == "__main__":'
TAMPERING = ("import grader", "from grader", GRADE_CALL, RESULTS_DIR)


@dataclass
class Job:
    student: str
    module_id: str
    path: Path


@dataclass
class JobResult:
    student: str
    module_id: str
    scores: dict[str, float] = field(default_factory=dict)   # grade_id -> points earned
    results: list[dict] = field(default_factory=list)        # grader.notebook's records
    error: str = ""

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)


# -- finding submissions --------------------------------------------------------------------------

def candidate_names(module: Module) -> set[str]:
    stem = notebook_name(module)
    return {f"{stem}.py", f"{module.folder}.py", f"{stem}.ipynb", f"{module.folder}.ipynb"}


def find_jobs(manifest: Manifest, submissions: Path) -> list[Job]:
    """One job per module file found in each student's folder (the newest if there are several)."""
    if not submissions.is_dir():
        raise TitoError(f"{submissions} is not a folder of student submissions")
    jobs = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = [p for p in student_dir.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
                 and "tests" not in p.relative_to(student_dir).parts]  # a student's own copy of the tests is ignored
        for module in manifest.available_modules():
            names = candidate_names(module)
            found = [p for p in files if p.name in names]
            if found:
                jobs.append(Job(student_dir.name, module.id, max(found, key=lambda p: p.stat().st_mtime)))
    return jobs


# -- one job, in a worker process -----------------------------------------------------------------

def submission_notebook(manifest: Manifest, module: Module, path: Path) -> Any:
    """The student's file as the module's notebook, ready for nbgrader autograde."""
    import jupytext
    import nbformat

    try:
        notebook = nbformat.read(path, as_version=4) if path.suffix == ".ipynb" else jupytext.read(path, fmt="py:percent")
    except Exception as error:  # a corrupt notebook is the student's problem, graded zero, said why
        raise TitoError(f"{path.name} cannot be read as a notebook: {str(error).splitlines()[0]}") from None
    notebook.cells = [cell for cell in notebook.cells if not is_example_cell(cell)]
    present = {cell.metadata.get("nbgrader", {}).get("grade_id") for cell in notebook.cells}
    notebook.cells.extend(cell for cell in graded_cells(manifest, module)
                          if cell.metadata.get("nbgrader", {}).get("grade_id") not in present)
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    return notebook


def is_example_cell(cell: Any) -> bool:
    """A code cell that is one `if __name__ == "__main__":` block and nothing else."""
    lines = cell.source.strip().splitlines()
    if cell.cell_type != "code" or not lines or lines[0].strip() != EXAMPLE_CELL:
        return False
    return all(not line or line[0].isspace() or line.startswith("#") for line in lines[1:])


def tampering(notebook: Any, module: Module) -> str:
    """Why the student's own cells look like they reach into the grader, or ''.

    Only the module's two graded cells (restored from the source by nbgrader) are exempt: a
    cell a student marks as graded is still the student's code.
    """
    graded = set(grade_cell_ids(module))
    for cell in notebook.cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade_id") in graded:
            continue
        for marker in TAMPERING:
            if marker in cell.source:
                return f"the submission's own code mentions {marker!r}; graded zero for review"
    return ""


def quiet_worker(course: Path) -> None:
    """Send this worker's stderr (kernel start-up chatter, nbgrader's database warnings) to a log."""
    warnings.filterwarnings("ignore")
    log = course / "logs" / f"grade-worker-{os.getpid()}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as handle:
        os.dup2(handle.fileno(), 2)  # the file descriptor, so kernels started from here inherit it


KERNEL_FAILURES = ("ZMQError", "Address already in use", "Kernel died", "DeadKernelError", "Kernel didn't respond")


def kernel_failed(outcome: dict) -> bool:
    """Did autograde fail because the kernel could not start or died (not the student's code)?"""
    text = f"{outcome.get('error') or ''}\n{outcome.get('log') or ''}"
    return any(symptom in text for symptom in KERNEL_FAILURES)


def grade_job(job: Job, template_db: Path, course: Path, test_timeout: float | None = None) -> JobResult:
    """Autograde one submission in a private course folder; copy the graded notebook back."""
    import nbformat

    quiet_worker(course)
    os.environ[SAVE_RESULTS] = "1"  # the kernels this worker starts keep per-test results for us
    if test_timeout:
        os.environ["TITO_TEST_TIMEOUT"] = f"{test_timeout:g}"
    manifest = load_manifest()
    module = manifest.find_module(job.module_id)
    assignment, notebook = assignment_name(module), notebook_name(module)
    result = JobResult(job.student, module.id)
    with tempfile.TemporaryDirectory(prefix="tito-grade-") as scratch:
        private = Path(scratch)
        shutil.copy(template_db, private / "gradebook.db")
        try:
            submission = submission_notebook(manifest, module, job.path)
        except TitoError as error:
            result.error = str(error)
            return result
        suspicious = tampering(submission, module)
        target = private / "submitted" / job.student / assignment / f"{notebook}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(submission, target)
        timeout = 2 * manifest.grading.checkpoint_timeout_seconds + 120
        api = nbgrader_api(private, Execute={"timeout": int(timeout)})
        outcome = autograde_once_more_on_kernel_failure(api, assignment, job.student)
        graded_dir = private / "autograded" / job.student / assignment
        if not outcome.get("success"):
            # the whole story goes to this worker's log (<course>/logs/), the one line to the TA
            print(f"{job.student} {assignment}:\n{outcome.get('log') or ''}\n{outcome.get('error') or ''}", file=sys.stderr)
            result.error = "nbgrader autograde failed: " + " ".join(
                (outcome.get("error") or outcome.get("log") or "").strip().splitlines()[-1:])
        else:
            for grade in api.gradebook.find_submission_notebook(notebook, assignment, job.student).grades:
                result.scores[grade.name] = float(grade.score or 0.0)
            for record in sorted((graded_dir / RESULTS_DIR).glob("*.json")):
                result.results.append(json.loads(record.read_text()))
        if suspicious:
            result.error, result.scores = suspicious, {name: 0.0 for name in result.scores}
        copy_back(private, course, job.student, assignment)
    return result


def autograde_once_more_on_kernel_failure(api: Any, assignment: str, student: str) -> dict:
    """nbgrader autograde; again once if the kernel, not the student's code, failed.

    Kernels started at the same moment by parallel workers can race for a TCP port (a known
    jupyter_client issue); such a failure is quick, or names the kernel.
    """
    started = time.monotonic()
    outcome = api.autograde(assignment, student, force=True, create=True)
    if not outcome.get("success") and (kernel_failed(outcome) or time.monotonic() - started < 60):
        outcome = api.autograde(assignment, student, force=True, create=True)
    return outcome


def copy_back(private: Path, course: Path, student: str, assignment: str) -> None:
    """The submitted and autograded notebooks into the course, for formgrader and nbgrader's tools."""
    for step in ("submitted", "autograded"):
        source = private / step / student / assignment
        destination = course / step / student / assignment
        if source.is_dir():
            shutil.rmtree(destination, ignore_errors=True)
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns(RESULTS_DIR))


# -- the main process -----------------------------------------------------------------------------

def record_result(api: Any, manifest: Manifest, result: JobResult, course: Path) -> None:
    """Write one job's scores into the course gradebook and keep its per-test results."""
    from nbgrader.api import MissingEntry

    module = manifest.find_module(result.module_id)
    assignment, notebook = assignment_name(module), notebook_name(module)
    gradebook = api.gradebook
    gradebook.update_or_create_student(result.student)
    with warnings.catch_warnings():  # nbgrader's SQLAlchemy use warns about its own sessions
        warnings.simplefilter("ignore")
        try:
            gradebook.find_submission(assignment, result.student)
        except MissingEntry:
            gradebook.add_submission(assignment, result.student)
    for grade_id in grade_cell_ids(module):
        grade = gradebook.find_grade(grade_id, notebook, assignment, result.student)
        grade.auto_score = result.scores.get(grade_id, 0.0)  # a TA's manual score, if any, still wins
    gradebook.db.commit()
    path = results_path(course, result.student, module)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(result), indent=1))


def results_path(course: Path, student: str, module: Module) -> Path:
    return course / "results" / student / f"{module.folder}.json"


def grade_all(manifest: Manifest, submissions: Path, course: Path | None = None, workers: int | None = None,
              test_timeout: float | None = None,
              on_result: Callable[[JobResult, int, int], None] | None = None) -> list[JobResult]:
    """Grade every submission found; results in the gradebook and under <course>/results/."""
    from .course import build_release

    course = course or course_root(manifest)
    jobs = find_jobs(manifest, submissions)
    if not jobs:
        raise TitoError(f"no module files found under {submissions}/<student>/ "
                        "(expected names like tensor.py, 01_tensor.py or tensor.ipynb)")
    if not (course / "gradebook.db").exists() or not (course / "release").is_dir():
        build_release(manifest, course)
    api = nbgrader_api(course)
    results: list[JobResult] = []
    with tempfile.TemporaryDirectory(prefix="tito-gradebook-") as scratch:
        template = Path(scratch) / "gradebook.db"
        shutil.copy(course / "gradebook.db", template)
        with ProcessPoolExecutor(max_workers=workers or manifest.grading.workers) as pool:
            futures = {pool.submit(grade_job, job, template, course, test_timeout): job for job in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except Exception as error:  # a worker that died still yields a (zero) result
                    result = JobResult(job.student, job.module_id, error=f"grading crashed: {error}")
                record_result(api, manifest, result, course)
                results.append(result)
                if on_result:
                    on_result(result, len(results), len(jobs))
    return results


def grade_reference(manifest: Manifest, course: Path, notebooks: list[Path],
                    on_result: Callable[[JobResult, int, int], None] | None = None) -> list[JobResult]:
    """Autograde the solution notebooks as a student named "reference", in a scratch copy of the
    course, so the real gradebook never lists a student who is not one."""
    with tempfile.TemporaryDirectory(prefix="tito-reference-") as scratch:
        student = Path(scratch) / "submissions" / "reference"
        student.mkdir(parents=True)
        for path in notebooks:
            shutil.copy(path, student / path.name)
        scratch_course = Path(scratch) / "course"
        shutil.copytree(course / "release", scratch_course / "release")
        shutil.copy(course / "gradebook.db", scratch_course / "gradebook.db")
        return grade_all(manifest, student.parent, scratch_course, on_result=on_result)
