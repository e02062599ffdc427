"""Student stubs, generated from the reference solutions and never edited by hand.

A solution file is a jupytext "percent" script whose code cells carry nbgrader metadata and
`### BEGIN SOLUTION` / `### END SOLUTION` regions. Its stub is the same file after nbgrader's
own preprocessors have run on it in-process: ClearSolutions replaces each region with
`raise NotImplementedError()`, ClearHiddenTests drops hidden-test regions, ClearOutput drops
outputs. This is the transformation `nbgrader generate_assignment` applies, minus the
database, so it takes milliseconds and needs no course tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import Manifest, Module

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def read_notebook(source_text: str):
    """A percent-format script as an nbformat notebook."""
    import jupytext

    return jupytext.reads(source_text, fmt="py:percent")


def write_script(notebook) -> str:
    """A notebook back to a percent-format script.

    Solution headers carry `notebook_metadata_filter: -jupytext.text_representation.jupytext_version`
    so that stubs do not change when jupytext's version does.
    """
    import jupytext

    return jupytext.writes(notebook, fmt="py:percent")


def clear_solutions(notebook):
    """Apply nbgrader's ClearSolutions, ClearHiddenTests and ClearOutput to a notebook."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearOutput, ClearSolutions

    resources: dict = {}
    for preprocessor in (ClearSolutions(), ClearHiddenTests(), ClearOutput()):
        notebook, resources = preprocessor.preprocess(notebook, resources)
    return notebook


def stub_text(solution_text: str) -> str:
    """The student stub for a solution file's text."""
    return write_script(clear_solutions(read_notebook(solution_text)))


@dataclass
class StubReport:
    module: Module
    stub_path: Path
    up_to_date: bool


def stub_reports(manifest: Manifest) -> list[StubReport]:
    """For every available module: does the committed stub equal what the solution produces?"""
    reports = []
    for module in manifest.available_modules():
        expected = stub_text(manifest.solution_path(module).read_text())
        stub_path = manifest.student_path(module)
        current = stub_path.read_text() if stub_path.exists() else None
        reports.append(StubReport(module, stub_path, current == expected))
    return reports


def write_stubs(manifest: Manifest, out_dir: Path | None = None) -> list[Path]:
    """Regenerate every available module's stub (into `modules/`, or into `out_dir`)."""
    written = []
    for module in manifest.available_modules():
        text = stub_text(manifest.solution_path(module).read_text())
        target = (out_dir / module.file) if out_dir else manifest.student_path(module)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        written.append(target)
    return written
