"""How tito shows things: one function per screen, all output through a rich Console."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .checkpoint import CheckpointRun, TestOutcome
from .manifest import Manifest, Milestone, Module
from .milestones import is_unlocked, missing_modules
from .progress import Progress
from .workspace import ModuleState, checked_with_edited_checkpoint, module_state

STATE_STYLE = {
    ModuleState.PASSED: "green", ModuleState.FAILED: "red", ModuleState.MODIFIED: "yellow",
    ModuleState.NOT_CHECKED: "", ModuleState.UNAVAILABLE: "dim", ModuleState.MISSING: "red",
}


def print_test(console: Console, outcome: TestOutcome) -> None:
    if outcome.passed:
        console.print(f"  [green]✓[/green] {escape(outcome.name)}")
        return
    console.print(f"  [red]✗[/red] {escape(outcome.name)}")
    for line in outcome.message.splitlines():
        console.print(f"      {line}", style="yellow", markup=False, highlight=False)


def print_run_summary(console: Console, run: CheckpointRun, module: Module) -> None:
    for error in run.errors:
        console.print(f"  [red]✗[/red] {escape(str(error))}", highlight=False)
    style = "green" if run.all_passed else "red"
    console.print(f"  [{style}]{run.passed_count}/{run.total} tests passed, score "
                  f"{run.score(module.points):g}/{module.points:g}[/{style}]  ({run.duration:.1f} s)")


def milestone_line(manifest: Manifest, progress: Progress, milestone: Milestone) -> tuple[str, str]:
    """(state, detail) of a milestone for status and milestone list."""
    if not milestone.available:
        return "[dim]not yet available[/dim]", ""
    result = progress.milestones.get(milestone.id)
    if result and result.achieved:
        targets = {t.metric for t in milestone.targets}
        return "[green]★ achieved[/green]", ", ".join(f"{k} {v:.4g}" for k, v in result.metrics.items() if k in targets)
    if is_unlocked(manifest, progress, milestone):
        detail = f"tito milestone run {milestone.id}"
        met = result and all(t.met_by(result.metrics.get(t.metric, float("nan")))
                             for t in milestone.targets_for(result.preset))
        if met and result.substitute_data:
            detail = (f"passed on the documentation text; the real run needs `tito data fetch "
                      f"{result.substitute_data}`, then: {detail}")
        elif met and result.preset == "smoke":
            detail = f"smoke run passed; the default run achieves it: {detail}"
        elif result:
            detail = f"last run ({result.preset}) missed its target; {detail}"
        return "[cyan]unlocked[/cyan]", detail
    missing = " ".join(m.id for m in missing_modules(manifest, progress, milestone))
    return "locked", f"needs {missing}"


def print_status(console: Console, manifest: Manifest, progress: Progress) -> None:
    table = Table(title=f"{manifest.name}: modules", title_justify="left", box=None, pad_edge=False)
    for column in ("", "#", "module", "state", "score", "checked"):
        table.add_column(column)
    next_module = None
    for module in manifest.modules:
        state = module_state(manifest, progress, module)
        result = progress.modules.get(module.id)
        score = f"{result.score:g}/{result.points:g}" if result and module.available else ""
        checked = result.checked_at.replace("T", " ")[:16] if result and module.available else ""
        style = STATE_STYLE[state]
        label = state.value
        if state is ModuleState.FAILED and result.cause:
            label += f": {result.cause}"
        if result and checked_with_edited_checkpoint(manifest, module, result.checkpoint_sha256):
            label += " (with an edited checkpoint)"
        table.add_row(state.symbol, module.id, module.slug, label, score, checked,
                      style=style or None)
        if next_module is None and state not in (ModuleState.PASSED, ModuleState.UNAVAILABLE):
            next_module = module
    console.print(table)

    milestones = Table(title="milestones", title_justify="left", box=None, pad_edge=False)
    for column in ("year", "milestone", "state", ""):
        milestones.add_column(column)
    for milestone in manifest.milestones:
        state, detail = milestone_line(manifest, progress, milestone)
        milestones.add_row(str(milestone.year or "—"), milestone.id, state, detail)
    console.print()
    console.print(milestones)
    if next_module is not None:
        console.print(f"\nnext: edit {manifest.modules_dir}/{next_module.file}, then [bold]tito check {next_module.id}[/bold]")


def module_ranges(numbers) -> str:
    """Module numbers as a student reads them: [1, 2, 3, 4, 5, 10] is "01-05, 10"."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][-1] + 1:
            runs[-1].append(number)
        else:
            runs.append([number])
    return ", ".join(f"{run[0]:02d}-{run[-1]:02d}" if len(run) > 1 else f"{run[0]:02d}" for run in runs)


def print_milestone_list(console: Console, manifest: Manifest, progress: Progress) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("year", "id", "title", "requires", "state", ""):
        table.add_column(column, no_wrap=column == "requires")
    for milestone in manifest.milestones:
        state, detail = milestone_line(manifest, progress, milestone)
        requires = module_ranges(milestone.requires)
        table.add_row(str(milestone.year or "—"), milestone.id, milestone.title, requires, state, detail)
    console.print(table)


@contextmanager
def grading_progress(console: Console) -> Iterator[Callable]:
    """A progress bar with ETA for `tito grade`; yields the callback the grader calls per result."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = [TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[last]}")]
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("grading", total=None, last="")

        def show(result, done: int, total: int) -> None:
            note = f" [red]{escape(result.error[:60])}[/red]" if result.error else ""
            bar.update(task, completed=done, total=total,
                       last=f"{escape(result.student)} {result.module_id}: {result.total:g}{note}")

        yield show


def course_path(manifest: Manifest) -> Callable[[Path], str]:
    """How a path is shown: relative to the course root when it is inside it."""
    return lambda path: str(path.relative_to(manifest.root) if path.is_relative_to(manifest.root) else path)


def print_check_header(console: Console, manifest: Manifest, module: Module, path: Path, choice) -> None:
    extra = " with the reference for the modules it builds on" if choice.reference_deps else ""
    console.print(f"[bold]Checking {module.id} {module.slug}[/bold] ({course_path(manifest)(path)}{extra})")


def print_unlocked(console: Console, milestones: list[Milestone]) -> None:
    for milestone in milestones:
        console.print(f"  [bold cyan]🔓 milestone unlocked: {milestone.label}: {milestone.title}[/bold cyan]"
                      f"  → tito milestone run {milestone.id}")


@contextmanager
def download_progress(console: Console) -> Iterator[Callable[[str, int, int | None], None]]:
    """Progress bars for `tito data fetch`; yields the callback the fetcher calls as bytes arrive."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, int] = {}

        def show(what: str, done: int, total: int | None) -> None:
            if what not in tasks:
                tasks[what] = bar.add_task(what, total=total)
            bar.update(tasks[what], completed=done, total=total)

        yield show


def print_datasets(console: Console, manifest: Manifest) -> None:
    from .data import cached_path

    for dataset in manifest.datasets.values():
        path = cached_path(dataset.name)
        state = f"[green]cached[/green] {path} ({path.stat().st_size / 2**20:.1f} MiB)" if path.exists() else "not fetched"
        console.print(f"{dataset.name:12} {state}  [dim]{dataset.description}[/dim]")


def print_findings(console: Console, findings: list) -> None:
    for finding in findings:
        mark = "[green]✓[/green]" if finding.ok else "[red]✗[/red]"
        console.print(f"{mark} {finding.what}: {escape(finding.detail)}")


def print_distribution(console: Console, out: Path) -> None:
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    console.print(f"[green]✓[/green] student distribution in {out} ({size / 2**20:.1f} MiB, "
                  "no solutions/, no tests/hidden/)")


def print_grades(console: Console, manifest: Manifest, results: list) -> None:
    for result in results:
        module = manifest.find_module(result.module_id)
        mark = "[red]✗[/red]" if result.error or result.total < module.points else "[green]✓[/green]"
        console.print(f"{mark} {module.id} {module.slug}: {result.total:g}/{module.points:g} {escape(result.error)}")


def print_grading_summary(console: Console, results: list, elapsed: float, unsandboxed: bool, gradebook: Path) -> None:
    students = len({r.student for r in results})
    console.print(f"graded {len(results)} submissions of {students} students in {elapsed:.0f} s "
                  f"({len(results) / max(elapsed, 1e-9) * 60:.1f} per minute)"
                  f"{' WITHOUT the sandbox' if unsandboxed else ' in the sandbox'}; gradebook: {gradebook}")
    for result in results:
        if result.error:
            console.print(f"  [yellow]![/yellow] {escape(result.student)} {result.module_id}: {escape(result.error)}")


NOT_WRITTEN = "not written yet"


def print_compact_run(console: Console, run: CheckpointRun) -> None:
    """A module in `tito check --all`: one line if nothing is written yet, else its failures."""
    failed = [t for t in run.tests if not t.passed]
    if failed and all(t.message.startswith(NOT_WRITTEN) for t in failed) and len(failed) == len(run.tests):
        console.print(f"  [dim]· not written yet ({len(failed)} tests wait for it)[/dim]")
        return
    for test in failed:
        print_test(console, test)


def print_check_table(console: Console, runs: list[CheckpointRun]) -> None:
    table = Table(title="summary", title_justify="left", box=None, pad_edge=False)
    for column in ("", "module", "passed", "score"):
        table.add_column(column)
    for run in runs:
        style = "green" if run.all_passed else "red"
        table.add_row("✓" if run.all_passed else "✗", run.module.folder, f"{run.passed_count}/{run.total}",
                      f"{run.score(run.module.points):g}/{run.module.points:g}", style=style)
    console.print()
    console.print(table)
