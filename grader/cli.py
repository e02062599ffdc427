"""`tito`: the command line of the course. Each command parses its options, calls one function
of the grader, and shows the result (through grader.display)."""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import click
from rich.console import Console
from rich.markup import escape

from . import display
from .checking import check_module, checked_file
from .checkpoint import SourceChoice
from .course import course_root
from .doctor import run_doctor
from .errors import TitoError
from .grading import grade_all
from .manifest import Manifest, find_course_root, load_manifest
from .milestones import PRESETS, run_milestone
from .pairing import pair_notebook
from .progress import Progress, store_for
from .release import release as build_all, require_solutions, stale_files, verify_solution, write_generated
from .reports import export_grades, write_feedback
from .stubs import write_stubs
from .workspace import reset_module

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)  # one line, however narrow the terminal


class TitoGroup(click.Group):
    """Turns a TitoError anywhere below into one red line and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TitoError as error:
            errors.print(f"[red]error:[/red] {escape(str(error))}")
            sys.exit(2)


def _warn(text: str) -> None:
    errors.print(f"[yellow]warning:[/yellow] {escape(text)}")


def _progress(manifest: Manifest) -> Progress:
    """The student's progress; a problem with the file is a warning, never fatal."""
    store = store_for(manifest.state_dir)
    progress = store.load()
    for warning in store.warnings:
        _warn(warning)
    return progress


def _instructor_checkout() -> bool:
    """Are the reference solutions here? (instructor-only options are hidden from students)."""
    try:
        return load_manifest(find_course_root()).has_solutions()
    except TitoError:
        return True


def course_option(command: Callable) -> Callable:
    """The nbgrader course folder option that the instructor commands share."""
    return click.option("--course", type=click.Path(path_type=Path), default=None,
                        help="The nbgrader course folder (default .tito/course).")(command)


@click.group(cls=TitoGroup)
def main() -> None:
    """tito: build tinytorch module by module, check each one, unlock milestones."""


@main.command()
def status() -> None:
    """Modules (✓ passed, ✗ failed, · not checked, ~ modified since check) and milestones."""
    manifest = load_manifest()
    display.print_status(console, manifest, _progress(manifest))


INSTRUCTOR = _instructor_checkout()


@main.command()
@click.argument("module_id", required=False)
@click.option("--all", "check_all", is_flag=True, help="Check every available module in order.")
@click.option("--reference-deps", is_flag=True, hidden=not INSTRUCTOR,
              help="Use the reference solution for the modules this one builds on.")
@click.option("--source", type=click.Choice(["modules", "solutions"]), default="modules", hidden=not INSTRUCTOR,
              help="Check the student's files (default) or the reference solutions.")
@click.option("--stub", is_flag=True, hidden=not INSTRUCTOR,
              help="Check freshly generated stubs (instructors: every test must fail).")
def check(module_id: str | None, check_all: bool, reference_deps: bool, source: str, stub: bool) -> None:
    """Run a module's checkpoint: tito check 05 (or 5, autograd, 05_autograd)."""
    manifest = load_manifest()
    if check_all == bool(module_id):
        raise TitoError("give one module id (e.g. `tito check 03`) or --all")
    if reference_deps or stub or source == "solutions":
        require_solutions(manifest)
    modules = manifest.available_modules() if check_all else [manifest.find_module(module_id)]
    with tempfile.TemporaryDirectory(prefix="tito-stubs-") as stubs_dir:
        if stub:
            write_stubs(manifest, Path(stubs_dir))
        choice = SourceChoice(source=source, reference_deps=reference_deps, modules_dir=Path(stubs_dir) if stub else None)
        runs = []
        for module in modules:
            display.print_check_header(console, manifest, module, checked_file(manifest, module, choice), choice)
            # one module: every result as it comes; --all: a short account of each module, then a table
            stream = None if check_all else (lambda test: display.print_test(console, test))
            result = check_module(manifest, module, choice, record=source == "modules" and not stub, on_test=stream,
                                  on_note=lambda note: console.print(f"  [cyan]note:[/cyan] {escape(note)}"))
            if check_all:
                display.print_compact_run(console, result.run)
            display.print_run_summary(console, result.run, module)
            for warning in result.warnings:
                _warn(warning)
            display.print_unlocked(console, result.unlocked)
            runs.append(result.run)
        if check_all:
            display.print_check_table(console, runs)
    sys.exit(0 if all(run.all_passed for run in runs) else 1)


@main.group()
def milestone() -> None:
    """Historical milestones, unlocked by passing modules."""


@milestone.command("list")
def milestone_list() -> None:
    """Every milestone, what it requires, and whether it is locked."""
    manifest = load_manifest()
    display.print_milestone_list(console, manifest, _progress(manifest))


@milestone.command("run")
@click.argument("milestone_id")
@click.option("--preset", type=click.Choice(PRESETS), default="default", show_default=True,
              help="smoke: under a minute; default: reaches the target; full: the long run.")
def milestone_run(milestone_id: str, preset: str) -> None:
    """Run an unlocked milestone: tito milestone run perceptron (or 1957)."""
    manifest = load_manifest()
    progress = _progress(manifest)
    sys.exit(run_milestone(manifest, progress, manifest.find_milestone(milestone_id), preset))


@main.command()
@click.argument("module_id")
def notebook(module_id: str) -> None:
    """Make modules/NN_slug/slug.ipynb, paired with the .py: edit either, tito check grades both."""
    manifest = load_manifest()
    path, what = pair_notebook(manifest, manifest.find_module(module_id))
    console.print(f"{path}: {what}")
    console.print("open it in Jupyter; `tito check` syncs a newer notebook into the .py before checking")


@main.group()
def module() -> None:
    """Manage your module files."""


@module.command("reset")
@click.argument("module_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def module_reset(module_id: str, yes: bool) -> None:
    """Put a module's stub back; your current file is backed up first."""
    manifest = load_manifest()
    target = manifest.find_module(module_id)
    if not yes:
        click.confirm(f"Reset {manifest.modules_dir}/{target.file} to the stub? (a backup is kept)", abort=True)
    backup = reset_module(manifest, target)
    if backup:
        console.print(f"backed up your file to {backup}")
    console.print(f"{manifest.modules_dir}/{target.file} is the stub again")


@main.group()
def data() -> None:
    """Data sets: fetched once, verified, cached as .npz."""


@data.command("fetch")
@click.argument("name")
@click.option("--force", is_flag=True, help="Fetch again even if cached.")
def data_fetch(name: str, force: bool) -> None:
    """Download, verify and convert a data set: tito data fetch mnist."""
    from . import data as datasets

    dataset = load_manifest().find_dataset(name)
    if datasets.cached_path(dataset.name).exists() and not force:
        console.print(f"{dataset.name} is already cached at {datasets.cached_path(dataset.name)}")
        return
    with display.download_progress(console) as show:
        path = datasets.fetch(dataset, show, force=force)
    console.print(f"[green]✓[/green] {dataset.name}: {dataset.description} -> {path} ({path.stat().st_size / 2**20:.1f} MiB)")


@data.command("list")
def data_list() -> None:
    """Every data set of the course and whether it is cached."""
    display.print_datasets(console, load_manifest())


@main.command()
def doctor() -> None:
    """Check the installation and the course folder."""
    findings = run_doctor(load_manifest())
    display.print_findings(console, findings)
    sys.exit(0 if all(f.ok for f in findings) else 1)


@main.command()
@click.option("--check", "check_only", is_flag=True, help="Fail if a committed stub differs from its solution's.")
@click.option("--stubs", "stubs_only", is_flag=True, help="Only regenerate the stubs in modules/ from solutions/.")
@click.option("--out", type=click.Path(path_type=Path), help="Also write the student distribution into this new folder.")
@course_option
def release(check_only: bool, stubs_only: bool, out: Path | None, course: Path | None) -> None:
    """Instructor: stubs, nbgrader release notebooks and (--out) the student distribution."""
    manifest = load_manifest()
    require_solutions(manifest)
    shown = display.course_path(manifest)
    if check_only:
        stale = stale_files(manifest)
        for problem in stale:
            console.print(f"[red]✗[/red] {problem}")
        if stale:
            raise TitoError(f"{len(stale)} generated file(s) out of date: run `tito release --stubs` and commit")
        console.print(f"[green]✓[/green] all {len(manifest.available_modules())} stubs and the checkpoint digests "
                      "match their sources")
        return
    if stubs_only:
        for path in write_generated(manifest):
            console.print(f"wrote {shown(path)}")
        return
    built = build_all(manifest, course, out, on_written=lambda path: console.print(f"wrote {shown(path)}"))
    console.print(f"[green]✓[/green] nbgrader generate_assignment: {len(manifest.available_modules())} "
                  f"assignments in {built / 'release'}")
    if out:
        display.print_distribution(console, out)


@main.command()
@course_option
def solution(course: Path | None) -> None:
    """Instructor: nbgrader's solution notebooks, verified by grading the reference to full marks."""
    manifest = load_manifest()
    with display.grading_progress(console) as show:
        notebooks, results = verify_solution(manifest, course, on_result=show)
    console.print(f"[green]✓[/green] nbgrader GenerateSolution: {len(notebooks)} notebooks")
    display.print_grades(console, manifest, results)
    console.print("[green]✓[/green] the solution notebooks grade to full marks")


@main.command()
@click.argument("submissions", type=click.Path(path_type=Path))
@course_option
@click.option("--workers", type=int, help="Parallel graders (default: [grading] workers in tito.toml).")
@click.option("--test-timeout", type=float, help="Seconds per test (default: [grading] test_timeout_seconds).")
@click.option("--no-sandbox", is_flag=True, help="Run student code without bubblewrap (unsafe; never for credit).")
def grade(submissions: Path, course: Path | None, workers: int | None, test_timeout: float | None,
          no_sandbox: bool) -> None:
    """TA: grade SUBMISSIONS/<student>/ into nbgrader's gradebook, sandboxed, in parallel."""
    manifest = load_manifest()
    if test_timeout:
        manifest = replace(manifest, grading=replace(manifest.grading, test_timeout_seconds=test_timeout))
    if no_sandbox:
        errors.print("[bold red]warning: --no-sandbox: student code runs with your rights and can change "
                     "files, grades and other students' results; these grades are marked in the export[/bold red]")
    started = time.monotonic()
    with display.grading_progress(console) as show:
        results = grade_all(manifest, submissions, course, workers, sandboxed=not no_sandbox,
                            on_result=show, on_skip=_warn)
    display.print_grading_summary(console, results, time.monotonic() - started, no_sandbox,
                                  (course or course_root(manifest)) / "gradebook.db")


@main.command()
@click.option("--format", "kind", type=click.Choice(["csv", "canvas"]), default="csv")
@click.option("--out", type=click.Path(path_type=Path), default=Path("grades.csv"), show_default=True)
@course_option
def export(kind: str, out: Path, course: Path | None) -> None:
    """TA: the gradebook as one row per student (plain CSV or Canvas's import format)."""
    manifest = load_manifest()
    rows = export_grades(manifest, _existing_course(manifest, course), out, kind)
    console.print(f"[green]✓[/green] {rows} students written to {out} ({kind})")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("feedback"), show_default=True)
@course_option
def feedback(out: Path, course: Path | None) -> None:
    """TA: one report per student: checks passed and failed, with their teaching messages."""
    manifest = load_manifest()
    written = write_feedback(manifest, _existing_course(manifest, course), out)
    console.print(f"[green]✓[/green] {len(written)} feedback reports in {out}/")


def _existing_course(manifest: Manifest, course: Path | None) -> Path:
    course = course or course_root(manifest)
    if not (course / "gradebook.db").exists():
        raise TitoError(f"no gradebook in {course}: run `tito grade SUBMISSIONS` first")
    return course


if __name__ == "__main__":
    main()
