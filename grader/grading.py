"""`tito grade`: every submission judged outside a sandbox, into nbgrader's gradebook.

A submissions folder holds one folder per student (its name is the student id) with module
files in any layout: `tensor.py`, `01_tensor.py`, `modules/01_tensor/tensor.py`, or the
release notebook `tensor.ipynb`. Each (student, module) pair is one job:

1. prepare: the submission becomes the module's source text (a notebook's code cells, without
   the graded cells and worked examples). Reading it is all the trusted side does with it.
2. run: the checkpoint, then the hidden checks, run on that text inside the bubblewrap sandbox
   (grader.recording), which only records the values the student's code produced.
3. collect: grader.judge decides each test against the trusted run of the reference, cached
   per module and release (see `expectations_cache`).

Workers do steps 1-3 in parallel; only the main process writes the gradebook (nbgrader's own
SQLite database, so formgrader, manual grading and `nbgrader export` keep working), the
submitted and autograded notebooks formgrader shows, and the per-test results `tito feedback`
reads. No score is ever read from anything the student's code wrote.
"""

from __future__ import annotations

import json
import os
import re
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from .checkpoint import CheckpointRun
from .course import KERNELSPEC, assignment_name, course_root, grade_cell_ids, graded_cells, nbgrader_api, notebook_name, \
    results_path
from .errors import TitoError
from .judge import expectations_for, judge, load_expectations
from .manifest import Grading, Manifest, Module, load_manifest
from .recording import record_in_sandbox
from .sandbox import sandbox_problem

EXAMPLE_CELL = 'if __name__ == "__main__":'
MAX_SUBMISSION_BYTES = 2 * 2**20
KINDS = ("checkpoint", "hidden")
UNSANDBOXED = "graded WITHOUT the sandbox (--no-sandbox): the student's code ran with the grader's rights"


@dataclass
class Job:
    student: str
    module_id: str
    path: Path


@dataclass
class GradeSettings:
    """What every worker needs to know, passed explicitly (no environment variables)."""

    root: Path
    grading: Grading                      # the limits (tito.toml's, or overridden on the command line)
    expectations: dict[str, str]          # "<module id>-<kind>" -> path of the trusted run's checks
    sandboxed: bool = True


@dataclass
class VisibleTest:
    """One visible check as feedback shows it (hidden checks are never listed)."""
    name: str
    passed: bool
    message: str


@dataclass
class KindResult:
    """The judged run of one kind of checks ("checkpoint" or "hidden") for one submission."""
    kind: str
    score: float
    points: float
    passed: int
    total: int
    errors: list[str] = field(default_factory=list)         # visible runs only
    tests: list[VisibleTest] = field(default_factory=list)  # visible runs only

    @classmethod
    def from_json(cls, raw: dict) -> KindResult:
        return cls(**{**raw, "tests": [VisibleTest(**t) for t in raw.get("tests", [])]})


@dataclass
class JobResult:
    student: str
    module_id: str
    scores: dict[str, float] = field(default_factory=dict)   # grade_id -> points earned
    results: list[KindResult] = field(default_factory=list)
    error: str = ""
    sandboxed: bool = True

    @property
    def total(self) -> float:
        return round(sum(self.scores.values()), 2)

    @classmethod
    def from_json(cls, raw: dict) -> JobResult:
        """A result file written by `record_result` (results/<student>/<module>.json)."""
        return cls(**{**raw, "results": [KindResult.from_json(r) for r in raw.get("results", [])]})


# -- finding submissions --------------------------------------------------------------------------

def candidate_names(module: Module) -> set[str]:
    stem = notebook_name(module)
    return {f"{stem}.py", f"{module.folder}.py", f"{stem}.ipynb", f"{module.folder}.ipynb"}


def find_jobs(manifest: Manifest, submissions: Path, on_skip: Callable[[str], None] | None = None) -> list[Job]:
    """One job per module file found in each student's folder (the newest if there are several)."""
    if not submissions.is_dir():
        raise TitoError(f"{submissions} is not a folder of student submissions")
    jobs = []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir()):
        if student_dir.name.startswith("."):
            if on_skip:
                on_skip(f"skipped {student_dir.name}/: a hidden folder is not a student (rename it to grade it)")
            continue
        files = [p for p in student_dir.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts
                 and "tests" not in p.relative_to(student_dir).parts]  # a student's own copy of the tests is ignored
        found_any = False
        for module in manifest.available_modules():
            names = candidate_names(module)
            found = [p for p in files if p.name in names]
            if found:
                found_any = True
                jobs.append(Job(student_dir.name, module.id, max(found, key=lambda p: p.stat().st_mtime)))
        if not found_any and on_skip:
            on_skip(f"skipped {student_dir.name}/: no module file in it (expected names like tensor.py or tensor.ipynb)")
    return jobs


# -- 1. prepare: the submission as the module's source text ----------------------------------------

def is_example_cell(source: str) -> bool:
    """A code cell that is one `if __name__ == "__main__":` block and nothing else."""
    lines = source.strip().splitlines()
    if not lines or lines[0].strip() != EXAMPLE_CELL:
        return False
    return all(not line or line[0].isspace() or line.startswith("#") for line in lines[1:])


def _without_magics(source: str) -> str:
    """IPython magics (%time, !ls) are not Python: they become comments."""
    return re.sub(r"^(\s*)([%!])", r"\1# \2", source, flags=re.M)


def read_submission(path: Path) -> Any:
    """The submission as a notebook (a .py file is read as jupytext's percent format)."""
    import jupytext
    import nbformat

    if path.stat().st_size > MAX_SUBMISSION_BYTES:
        raise TitoError(f"{path.name} is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
    try:
        if path.suffix == ".ipynb":
            return nbformat.read(path, as_version=4)
        return jupytext.reads(path.read_text(encoding="utf-8"), fmt="py:percent")
    except Exception as error:  # a corrupt file is the student's problem, graded zero, said why
        raise TitoError(f"{path.name} cannot be read: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None


def submission_code(module: Module, path: Path) -> str:
    """The module source a submission amounts to."""
    if path.suffix == ".py":
        if path.stat().st_size > MAX_SUBMISSION_BYTES:
            raise TitoError(f"{path.name} is larger than {MAX_SUBMISSION_BYTES // 2**20} MiB")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise TitoError(f"{path.name} is not UTF-8 text") from None
    notebook = read_submission(path)
    graded = set(grade_cell_ids(module))
    cells = [cell.source for cell in notebook.cells
             if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade_id") not in graded
             and not is_example_cell(cell.source)]
    return "\n\n".join(_without_magics(source) for source in cells) + "\n"


# -- 2 and 3. run in the sandbox, judge outside it -------------------------------------------------

def grade_run(manifest: Manifest, module: Module, code: str, kind: str, settings: GradeSettings) -> CheckpointRun:
    expectations = load_expectations(Path(settings.expectations[f"{module.id}-{kind}"]))
    recorded = record_in_sandbox(manifest, module, code, kind, sandboxed=settings.sandboxed)
    return judge(expectations, recorded)


def result_record(run: CheckpointRun, kind: str, score: float, points: float) -> KindResult:
    """What `tito feedback` may show: visible checks in full, hidden checks as a count only."""
    visible = kind != "hidden"
    return KindResult(kind, score, points, run.passed_count, run.total,
                      errors=run.errors[:3] if visible else [],
                      tests=[VisibleTest(t.name, t.passed, t.message) for t in run.tests] if visible else [])


def grade_job(job: Job, settings: GradeSettings) -> JobResult:
    """One submission of one module: prepare, run (sandboxed), collect. Runs in a worker."""
    manifest = replace(load_manifest(settings.root), grading=settings.grading)
    module = manifest.find_module(job.module_id)
    result = JobResult(job.student, module.id, sandboxed=settings.sandboxed)
    try:
        code = submission_code(module, job.path)
    except TitoError as error:
        result.error = str(error)
        return result
    for kind, grade_id, points in zip(KINDS, grade_cell_ids(module), manifest.grading.split_points(module.points)):
        run = grade_run(manifest, module, code, kind, settings)
        score = run.score(points)
        result.scores[grade_id] = score
        result.results.append(result_record(run, kind, score, points))
    return result


def init_worker(root: str) -> None:
    """A grading worker: trusted code only. Predicates of the checks are imported from the course,
    with the reference behind `tinytorch`."""
    warnings.filterwarnings("ignore")
    os.environ["TITO_SOURCE"] = "solutions"
    if root not in sys.path:
        sys.path.insert(0, root)


# -- the main process: the gradebook and what formgrader shows ------------------------------------

def record_result(api: Any, manifest: Manifest, result: JobResult, course: Path, job: Job) -> None:
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
    write_notebooks(manifest, module, job, result, course)


def write_notebooks(manifest: Manifest, module: Module, job: Job, result: JobResult, course: Path) -> None:
    """submitted/ and autograded/ notebooks for formgrader: the student's cells and the graded cells,
    whose output is the judged report (nothing was executed to produce it)."""
    import nbformat

    try:
        notebook = read_submission(job.path)
    except TitoError:
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"({job.path.name} could not be read)")])
    ids = set(grade_cell_ids(module))
    notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in ids]
    notebook.cells.extend(graded_cells(manifest, module))
    notebook.metadata["kernelspec"] = dict(KERNELSPEC)
    name = f"{notebook_name(module)}.ipynb"
    submitted = course / "submitted" / result.student / assignment_name(module) / name
    submitted.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, submitted)
    reports = {record.kind: record for record in result.results}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in ids:
            kind = KINDS[grade_cell_ids(module).index(grade_id)]
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=report_text(reports.get(kind), result))]
    autograded = course / "autograded" / result.student / assignment_name(module) / name
    autograded.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, autograded)


def report_text(record: KindResult | None, result: JobResult) -> str:
    if record is None:
        return f"not graded: {result.error}\n"
    if record.kind == "hidden":
        return f"hidden checks: {record.passed}/{record.total} passed\nscore {record.score:g}/{record.points:g}\n"
    lines = [f"{'✓' if t.passed else '✗'} {t.name}" for t in record.tests]
    lines += [f"✗ {error}" for error in record.errors]
    lines.append(f"{record.passed}/{record.total} tests passed, score {record.score:g}/{record.points:g}")
    if not result.sandboxed:
        lines.append(UNSANDBOXED)
    return "\n".join(lines) + "\n"




def expectations_cache() -> Path:
    """Where the trusted runs are kept: beside the data sets (~/.cache/tito, or $TITO_DATA).

    The key of each entry is the digest of everything that could change it (grader.judge), so
    every course folder and every grading run on this machine can share them."""
    from .data import cache_dir

    return cache_dir() / "expectations"


def trusted_expectations(manifest: Manifest, modules: list[Module]) -> dict[str, str]:
    """The trusted run's checks of every module to grade (from the cache, or computed now)."""
    cache = expectations_cache()
    return {f"{module.id}-{kind}": str(expectations_for(manifest, module, kind, cache))
            for module in modules for kind in KINDS}


def grade_all(manifest: Manifest, submissions: Path, course: Path | None = None, workers: int | None = None,
              sandboxed: bool = True,
              on_result: Callable[[JobResult, int, int], None] | None = None,
              on_skip: Callable[[str], None] | None = None) -> list[JobResult]:
    """Grade every submission found; results in the gradebook and under <course>/results/."""
    from .course import build_release

    if sandboxed and sandbox_problem():
        raise TitoError(f"cannot grade safely: {sandbox_problem()}; or pass --no-sandbox to run student code "
                        "unconfined (never for credit)")
    course = course or course_root(manifest)
    jobs = find_jobs(manifest, submissions, on_skip)
    if not jobs:
        raise TitoError(f"no module files found under {submissions}/<student>/ "
                        "(expected names like tensor.py, 01_tensor.py or tensor.ipynb)")
    if not (course / "gradebook.db").exists() or not (course / "release").is_dir():
        build_release(manifest, course)
    modules = sorted({manifest.find_module(job.module_id) for job in jobs}, key=lambda m: m.number)
    settings = GradeSettings(manifest.root, manifest.grading, trusted_expectations(manifest, modules), sandboxed)
    api = nbgrader_api(course)
    results: list[JobResult] = []
    with ProcessPoolExecutor(max_workers=workers or manifest.grading.workers, initializer=init_worker,
                             initargs=(str(manifest.root),)) as pool:
        futures = {pool.submit(grade_job, job, settings): job for job in jobs}
        for future in as_completed(futures):
            job = futures[future]
            try:
                result = future.result()
            except Exception as error:  # a worker that died still yields a (zero) result
                result = JobResult(job.student, job.module_id, error=f"grading crashed: {error}", sandboxed=sandboxed)
            record_result(api, manifest, result, course, job)
            results.append(result)
            if on_result:
                on_result(result, len(results), len(jobs))
    return results


def grade_reference(manifest: Manifest, course: Path, notebooks: list[Path],
                    on_result: Callable[[JobResult, int, int], None] | None = None) -> list[JobResult]:
    """Grade the solution notebooks as a student named "reference", in a scratch copy of the
    course, so the real gradebook never lists a student who is not one."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(prefix="tito-reference-") as scratch:
        student = Path(scratch) / "submissions" / "reference"
        student.mkdir(parents=True)
        for path in notebooks:
            shutil.copy(path, student / path.name)
        scratch_course = Path(scratch) / "course"
        shutil.copytree(course / "release", scratch_course / "release")
        shutil.copy(course / "gradebook.db", scratch_course / "gradebook.db")
        return grade_all(manifest, student.parent, scratch_course, on_result=on_result)
