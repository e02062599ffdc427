"""What comes out of the gradebook: a grade export (CSV, Canvas) and per-student feedback."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .course import assignment_name, nbgrader_api, results_path
from .grading import UNSANDBOXED, JobResult
from .manifest import Manifest, Module


def score_table(manifest: Manifest, course: Path) -> tuple[list[Module], dict[str, dict[str, float]]]:
    """The modules graded so far and, per student, their score in each (missing: not submitted)."""
    from nbgrader.api import MissingEntry

    gradebook = nbgrader_api(course).gradebook
    modules = [m for m in manifest.available_modules()
               if any(a.name == assignment_name(m) for a in gradebook.assignments)]
    table: dict[str, dict[str, float]] = {}
    for student in sorted(s.id for s in gradebook.students):
        row = table.setdefault(student, {})
        for module in modules:
            try:
                row[module.id] = round(gradebook.find_submission(assignment_name(module), student).score, 2)
            except MissingEntry:
                pass
    return modules, table


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """A CSV cell a spreadsheet will not run as a formula (a student id like `=1+1`)."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def unsandboxed(manifest: Manifest, course: Path, student: str) -> bool:
    """Was any of the student's modules graded with --no-sandbox?"""
    for module in manifest.available_modules():
        path = results_path(course, student, module)
        if path.exists() and json.loads(path.read_text()).get("sandboxed") is False:
            return True
    return False


def export_grades(manifest: Manifest, course: Path, out: Path, kind: str) -> int:
    """One row per student; `kind` is "csv" (plain) or "canvas" (Canvas's gradebook import)."""
    modules, table = score_table(manifest, course)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as handle:
        writer = csv.writer(handle)
        if kind == "canvas":
            # Canvas matches rows by its own ids; the nbgrader id goes in the SIS columns
            writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                             *(f"{m.id} {m.title}" for m in modules)])
            writer.writerow(["Points Possible", "", "", "", "", *(f"{m.points:g}" for m in modules)])
            for student, row in table.items():
                writer.writerow([cell(student), "", cell(student), cell(student), "", *(row.get(m.id, "") for m in modules)])
        else:
            writer.writerow(["student", *(m.folder for m in modules), "total", "max", "warning"])
            maximum = sum(m.points for m in modules)
            for student, row in table.items():
                warning = UNSANDBOXED if unsandboxed(manifest, course, student) else ""
                writer.writerow([cell(student), *(row.get(m.id, "") for m in modules),
                                 round(sum(row.values()), 2), f"{maximum:g}", warning])
    return len(table)


def feedback_text(manifest: Manifest, course: Path, student: str, scores: dict[str, float]) -> str:
    """A student's report: per module the score, every visible check with its teaching message,
    and only the count of hidden checks passed (never their names, inputs or source)."""
    lines = [f"# Feedback for {student}", ""]
    for module in manifest.available_modules():
        path = results_path(course, student, module)
        if not path.exists():
            continue
        result = JobResult.from_json(json.loads(path.read_text()))
        lines += [f"## {module.id} {module.title}: {scores.get(module.id, 0):g}/{module.points:g}", ""]
        if result.error:
            lines += [f"- grading problem: {result.error}", ""]
        for record in result.results:
            if record.kind == "hidden":
                lines.append(f"- additional instructor checks: {record.passed}/{record.total} passed")
                continue
            for test in record.tests:
                lines.append(f"- {'✓' if test.passed else '✗'} {test.name}")
                if not test.passed:
                    lines += ["", "  ```", *(f"  {line}" for line in test.message.splitlines()), "  ```", ""]
            lines += [f"- {error}" for error in record.errors]
        lines.append("")
    return "\n".join(lines)


def write_feedback(manifest: Manifest, course: Path, out: Path) -> list[Path]:
    _, table = score_table(manifest, course)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for student, scores in table.items():
        path = out / f"{student}.md"
        path.write_text(feedback_text(manifest, course, student, scores))
        written.append(path)
    return written
