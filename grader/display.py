"""How tito shows things: one function per screen, all output through a rich Console."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .checkpoint import CheckpointRun, TestOutcome
from .manifest import Manifest, Milestone, Module
from .milestones import is_unlocked, missing_modules
from .progress import Progress
from .workspace import ModuleState, module_state

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
        if result and result.preset == "smoke" and all(t.met_by(result.metrics.get(t.metric, float("nan")))
                                                       for t in milestone.smoke_targets):
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
        table.add_row(state.symbol, module.id, module.slug, state.value, score, checked,
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


def print_milestone_list(console: Console, manifest: Manifest, progress: Progress) -> None:
    table = Table(box=None, pad_edge=False)
    for column in ("year", "id", "title", "requires", "state", ""):
        table.add_column(column)
    for milestone in manifest.milestones:
        state, detail = milestone_line(manifest, progress, milestone)
        requires = f"{milestone.requires[0]:02d}-{milestone.requires[-1]:02d}" if milestone.requires else ""
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
