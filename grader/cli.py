"""`tito`: the command line of the course. Each command parses, calls one grader module, shows."""

from __future__ import annotations

import copy
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape

from . import display
from .checkpoint import SourceChoice, run_checkpoint
from .course import build_release, build_solution, course_root
from .distribution import require_empty, write_distribution
from .doctor import run_doctor
from .errors import TitoError
from .grading import grade_all, grade_reference
from .manifest import Manifest, Module, load_manifest
from .milestones import PRESETS, newly_unlocked, run_milestone
from .progress import ModuleResult, now, store_for
from .reports import export_grades, write_feedback
from .stubs import stub_reports, write_stubs
from .workspace import file_sha256, reset_module

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


def _manifest() -> Manifest:
    return load_manifest()


def _show_warnings(store) -> None:
    for warning in store.warnings:
        errors.print(f"[yellow]warning:[/yellow] {escape(str(warning))}")
    store.warnings.clear()


@click.group(cls=TitoGroup)
def main() -> None:
    """tito: build tinytorch module by module, check each one, unlock milestones."""


@main.command()
def status() -> None:
    """Modules (✓ passed, ✗ failed, · not checked, ~ modified since check) and milestones."""
    manifest = _manifest()
    store = store_for(manifest.state_dir)
    progress = store.load()
    _show_warnings(store)
    display.print_status(console, manifest, progress)


def _check_one(manifest: Manifest, module: Module, choice: SourceChoice, record: bool) -> bool:
    if not module.available:
        raise TitoError(f"module {module.id} {module.slug} is not available yet in this course")
    path = manifest.student_path(module) if choice.source == "modules" else manifest.solution_path(module)
    if choice.modules_dir is not None:
        path = choice.modules_dir / module.file
    if not path.exists():
        raise TitoError(f"{path} is missing: `tito module reset {module.id}` restores the stub")
    sha = file_sha256(path)
    shown = path.relative_to(manifest.root) if path.is_relative_to(manifest.root) else path
    extra = " with the reference for earlier modules" if choice.reference_deps else ""
    console.print(f"[bold]Checking {module.id} {module.slug}[/bold] ({shown}{extra})")
    log_path = manifest.state_dir / "logs" / f"check-{module.folder}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    run = run_checkpoint(manifest, module, choice, on_test=lambda t: display.print_test(console, t), log_path=log_path)
    display.print_run_summary(console, run, module)
    if record:
        store = store_for(manifest.state_dir)
        with store.update() as progress:
            before = copy.deepcopy(progress)
            progress.modules[module.id] = ModuleResult(
                status="passed" if run.all_passed else "failed", score=run.score(module.points),
                points=module.points, passed=run.passed_count, total=run.total, checked_at=now(),
                sha256=sha, reference_deps=choice.reference_deps)
        _show_warnings(store)
        for milestone in newly_unlocked(manifest, before, progress):
            console.print(f"  [bold cyan]🔓 milestone unlocked: {milestone.label}: {milestone.title}[/bold cyan]"
                          f"  → tito milestone run {milestone.id}")
    return run.all_passed


@main.command()
@click.argument("module_id", required=False)
@click.option("--all", "check_all", is_flag=True, help="Check every available module in order.")
@click.option("--reference-deps", is_flag=True, help="Use the reference solution for every earlier module.")
@click.option("--source", type=click.Choice(["modules", "solutions"]), default="modules",
              help="Check the student's files (default) or the reference solutions.")
@click.option("--stub", is_flag=True, help="Check freshly generated stubs (instructors: every test must fail).")
def check(module_id: str | None, check_all: bool, reference_deps: bool, source: str, stub: bool) -> None:
    """Run a module's checkpoint: tito check 05 (or 5, autograd, 05_autograd)."""
    manifest = _manifest()
    if check_all == bool(module_id):
        raise TitoError("give one module id (e.g. `tito check 03`) or --all")
    modules = manifest.available_modules() if check_all else [manifest.find_module(module_id)]
    with tempfile.TemporaryDirectory(prefix="tito-stubs-") as stubs_dir:
        modules_dir = None
        if stub:
            if not manifest.has_solutions():
                raise TitoError("--stub needs solutions/ (an instructor checkout)")
            write_stubs(manifest, Path(stubs_dir))
            modules_dir = Path(stubs_dir)
        choice = SourceChoice(source=source, reference_deps=reference_deps, modules_dir=modules_dir)
        record = source == "modules" and not stub
        results = [_check_one(manifest, module, choice, record) for module in modules]
    sys.exit(0 if all(results) else 1)


@main.group()
def milestone() -> None:
    """Historical milestones, unlocked by passing modules."""


@milestone.command("list")
def milestone_list() -> None:
    """Every milestone, what it requires, and whether it is locked."""
    manifest = _manifest()
    store = store_for(manifest.state_dir)
    progress = store.load()
    _show_warnings(store)
    display.print_milestone_list(console, manifest, progress)


@milestone.command("run")
@click.argument("milestone_id")
@click.option("--preset", type=click.Choice(PRESETS), default="default", show_default=True,
              help="smoke: under a minute; default: reaches the target; full: the long run.")
def milestone_run(milestone_id: str, preset: str) -> None:
    """Run an unlocked milestone: tito milestone run perceptron (or 1957)."""
    manifest = _manifest()
    store = store_for(manifest.state_dir)
    progress = store.load()
    _show_warnings(store)
    target = manifest.find_milestone(milestone_id)
    sys.exit(run_milestone(manifest, progress, target, preset))


@main.group()
def module() -> None:
    """Manage your module files."""


@module.command("reset")
@click.argument("module_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def module_reset(module_id: str, yes: bool) -> None:
    """Put a module's stub back; your current file is backed up first."""
    manifest = _manifest()
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
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    from . import data as datasets

    dataset = _manifest().find_dataset(name)
    if datasets.cached_path(dataset.name).exists() and not force:
        console.print(f"{dataset.name} is already cached at {datasets.cached_path(dataset.name)}")
        return
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def show(what: str, done: int, total: int | None) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        path = datasets.fetch(dataset, show, force=force)
    console.print(f"[green]✓[/green] {dataset.name}: {dataset.description} -> {path} ({path.stat().st_size / 2**20:.1f} MiB)")


@data.command("list")
def data_list() -> None:
    """Every data set of the course and whether it is cached."""
    from . import data as datasets

    for dataset in _manifest().datasets.values():
        path = datasets.cached_path(dataset.name)
        state = f"[green]cached[/green] {path} ({path.stat().st_size / 2**20:.1f} MiB)" if path.exists() else "not fetched"
        console.print(f"{dataset.name:12} {state}  [dim]{dataset.description}[/dim]")


@main.command()
def doctor() -> None:
    """Check the installation and the course folder."""
    manifest = _manifest()
    findings = run_doctor(manifest)
    for finding in findings:
        mark = "[green]✓[/green]" if finding.ok else "[red]✗[/red]"
        console.print(f"{mark} {finding.what}: {finding.detail}")
    sys.exit(0 if all(f.ok for f in findings) else 1)


@main.command()
@click.option("--check", "check_only", is_flag=True, help="Fail if a committed stub differs from its solution's.")
@click.option("--stubs", "stubs_only", is_flag=True, help="Only regenerate the stubs in modules/ from solutions/.")
@click.option("--out", type=click.Path(path_type=Path), help="Also write the student distribution into this new folder.")
@click.option("--course", type=click.Path(path_type=Path), help="The nbgrader course folder (default .tito/course).")
def release(check_only: bool, stubs_only: bool, out: Path | None, course: Path | None) -> None:
    """Instructor: stubs, nbgrader release notebooks and (--out) the student distribution."""
    manifest = _manifest()
    if not manifest.has_solutions():
        raise TitoError("release needs solutions/ (an instructor checkout)")
    if check_only:
        stale = [r for r in stub_reports(manifest) if not r.up_to_date]
        for report in stale:
            console.print(f"[red]✗[/red] {report.stub_path} differs from what "
                          f"{manifest.solutions_dir}/{report.module.file} produces")
        if stale:
            raise TitoError(f"{len(stale)} stub(s) out of date: run `tito release --stubs` and commit")
        console.print(f"[green]✓[/green] all {len(manifest.available_modules())} stubs match their solutions")
        return
    if out:
        require_empty(out)
    for path in write_stubs(manifest):
        console.print(f"stub {path.relative_to(manifest.root) if path.is_relative_to(manifest.root) else path}")
    if stubs_only:
        return
    course = build_release(manifest, course or course_root(manifest))
    console.print(f"[green]✓[/green] nbgrader generate_assignment: {len(manifest.available_modules())} "
                  f"assignments in {course / 'release'}")
    if out:
        write_distribution(manifest, course, out)
        size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        console.print(f"[green]✓[/green] student distribution in {out} ({size / 2**20:.1f} MiB, "
                      "no solutions/, no tests/hidden/)")


@main.command()
@click.option("--course", type=click.Path(path_type=Path), help="The nbgrader course folder (default .tito/course).")
def solution(course: Path | None) -> None:
    """Instructor: nbgrader's solution notebooks, verified by autograding the reference to full marks."""
    manifest = _manifest()
    course = build_release(manifest, course or course_root(manifest))
    notebooks = build_solution(manifest, course)
    console.print(f"[green]✓[/green] nbgrader GenerateSolution: {len(notebooks)} notebooks in {course / 'solution'}")
    with display.grading_progress(console) as show:
        results = grade_reference(manifest, course, notebooks, on_result=show)
    short = [r for r in results if r.total < manifest.find_module(r.module_id).points or r.error]
    for result in sorted(results, key=lambda r: r.module_id):
        module = manifest.find_module(result.module_id)
        mark = "[red]✗[/red]" if result in short else "[green]✓[/green]"
        console.print(f"{mark} {module.id} {module.slug}: {result.total:g}/{module.points:g} {escape(result.error)}")
    if short or len(results) != len(notebooks):
        raise TitoError("the reference solution does not autograde to full marks")
    console.print("[green]✓[/green] the solution notebooks autograde to full marks")


@main.command()
@click.argument("submissions", type=click.Path(path_type=Path))
@click.option("--course", type=click.Path(path_type=Path), help="The nbgrader course folder (default .tito/course).")
@click.option("--workers", type=int, help="Parallel graders (default: [grading] workers in tito.toml).")
@click.option("--test-timeout", type=float, help="Seconds per test (default: [grading] test_timeout_seconds).")
def grade(submissions: Path, course: Path | None, workers: int | None, test_timeout: float | None) -> None:
    """TA: autograde SUBMISSIONS/<student>/ into nbgrader's gradebook, in parallel."""
    manifest = _manifest()
    started = time.monotonic()
    with display.grading_progress(console) as show:
        results = grade_all(manifest, submissions, course, workers, test_timeout, on_result=show)
    elapsed = time.monotonic() - started
    students = len({r.student for r in results})
    console.print(f"graded {len(results)} submissions of {students} students in {elapsed:.0f} s "
                  f"({len(results) / elapsed * 60:.1f} per minute); gradebook: "
                  f"{(course or course_root(manifest)) / 'gradebook.db'}")
    for result in results:
        if result.error:
            console.print(f"  [yellow]![/yellow] {result.student} {result.module_id}: {escape(result.error)}")


@main.command()
@click.option("--format", "kind", type=click.Choice(["csv", "canvas"]), default="csv")
@click.option("--out", type=click.Path(path_type=Path), default=Path("grades.csv"), show_default=True)
@click.option("--course", type=click.Path(path_type=Path), help="The nbgrader course folder (default .tito/course).")
def export(kind: str, out: Path, course: Path | None) -> None:
    """TA: the gradebook as one row per student (plain CSV or Canvas's import format)."""
    manifest = _manifest()
    rows = export_grades(manifest, _existing_course(manifest, course), out, kind)
    console.print(f"[green]✓[/green] {rows} students written to {out} ({kind})")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("feedback"), show_default=True)
@click.option("--course", type=click.Path(path_type=Path), help="The nbgrader course folder (default .tito/course).")
def feedback(out: Path, course: Path | None) -> None:
    """TA: one report per student: checks passed and failed, with their teaching messages."""
    manifest = _manifest()
    written = write_feedback(manifest, _existing_course(manifest, course), out)
    console.print(f"[green]✓[/green] {len(written)} feedback reports in {out}/")


def _existing_course(manifest: Manifest, course: Path | None) -> Path:
    course = course or course_root(manifest)
    if not (course / "gradebook.db").exists():
        raise TitoError(f"no gradebook in {course}: run `tito grade SUBMISSIONS` first")
    return course


if __name__ == "__main__":
    main()
