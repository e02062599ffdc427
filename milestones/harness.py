"""What every milestone script shares: presets, the story, progress bars, targets, results.

A milestone script imports the framework only through `tinytorch.*`; everything here is the
scaffolding around the experiment, kept out of the way so the script reads as the experiment.

    run = MilestoneRun.start("perceptron", story=__doc__)
    for epoch in run.progress(range(run.config["epochs"]), "training"):
        ...
    run.save_figure(figure, "decision_boundary.png")
    run.finish({"accuracy": accuracy})   # prints metrics vs tito.toml's targets, records, exits
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Iterable, Iterator

# One BLAS thread unless you say otherwise (set OPENBLAS_NUM_THREADS yourself). The course's
# matrices are small, and on a busy two-core machine a second OpenBLAS thread that waits for a
# core spins: the LeNet smoke run measured 6,000 images/s with one thread and 100 with two
# while another process was busy. It must be set before numpy loads its BLAS, which is why
# every milestone imports this module first.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

COURSE_ROOT = Path(__file__).resolve().parent.parent
if str(COURSE_ROOT) not in sys.path:  # run directly as `python milestones/x.py`
    sys.path.insert(0, str(COURSE_ROOT))

import yaml  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402

from grader.manifest import Manifest, Milestone, load_manifest  # noqa: E402
from grader.progress import MilestoneResult, now, store_for  # noqa: E402


def _module_frame(tb: Any) -> tuple[str, str, int] | None:
    """(file, function, line) of the innermost traceback entry in one of the course's module files."""
    import tinytorch

    folders = {Path(folder).resolve() for folder in tinytorch.__path__}
    found = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if Path(code.co_filename).resolve().parent in folders:
            found = (code.co_filename, code.co_qualname, tb.tb_lineno)
        tb = tb.tb_next
    return found


def crash_line(error: BaseException) -> str:
    """One line for an exception that ended a milestone: the module and function it came from."""
    found = _module_frame(error.__traceback__)
    what = "not written yet" if isinstance(error, NotImplementedError) else f"{type(error).__name__}: {error}"
    if found is None:
        return f"the milestone stopped with {what}"
    filename, function, line = found
    folder = Path(filename).parent.name
    return (f"module {folder} stopped the milestone in {function} ({filename}:{line}): {what}"
            f"; `tito check {folder[:2]}` shows what is wrong")


def documentation_text() -> str:
    """CPython's own documentation of its keywords and statements (about 465k characters):
    always present, no download."""
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


class MilestoneRun:
    def __init__(self, manifest: Manifest, milestone: Milestone, preset: str, config: dict[str, Any]) -> None:
        self.manifest = manifest
        self.milestone = milestone
        self.preset = preset
        self.config = config
        self.console = Console(highlight=False)
        self.output_dir = manifest.state_dir / "milestones" / milestone.id
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.plots: list[str] = []
        self.status: dict[str, str] = {}  # shown beside the progress bar (loss, accuracy, ...)
        self.said_fast = False  # whether fast() has said which layers the run uses
        self.substitute_data: str | None = None  # the data set stood in for by the documentation text

    @classmethod
    def start(cls, milestone_id: str, story: str | None) -> MilestoneRun:
        """Parse --preset, load the preset's hyper-parameters, tell the story."""
        parser = argparse.ArgumentParser(description=(story or "").strip().splitlines()[0] if story else None)
        parser.add_argument("--preset", default="default", choices=["smoke", "default", "full"])
        arguments = parser.parse_args()
        manifest = load_manifest(COURSE_ROOT)
        milestone = manifest.find_milestone(milestone_id)
        presets = yaml.safe_load(manifest.script_path(milestone).with_suffix(".yaml").read_text())
        run = cls(manifest, milestone, arguments.preset, presets[arguments.preset])
        sys.excepthook = run.report_crash
        title = f"{milestone.year} · {milestone.title}" if milestone.year else milestone.title
        run.console.rule(f"[bold]{title}[/bold]")
        if story:  # re-flow the docstring's paragraphs to the terminal's width
            for paragraph in story.strip().split("\n\n"):
                run.console.print(" ".join(paragraph.split()), style="dim")
                run.console.print()
        run.console.print(f"preset [bold]{run.preset}[/bold]: {run.config}\n")
        return run

    def report_crash(self, kind: type, error: BaseException, tb: Any) -> None:
        """An uncaught exception: one line on the terminal, the traceback in a log file."""
        if isinstance(error, KeyboardInterrupt):
            self.console.print("\n[red]interrupted[/red]")
            sys.exit(130)
        log = self.output_dir / "crash.log"
        log.write_text("".join(traceback.format_exception(kind, error, tb)))
        self.console.print(f"\n[red]error:[/red] {crash_line(error)} (traceback: {log})")
        sys.exit(1)

    def progress(self, steps: Iterable[Any], label: str, total: int | None = None) -> Iterator[Any]:
        """Iterate with a progress bar; set `run.status[...]` inside the loop to show metrics."""
        columns = [TextColumn(f"{label}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[status]}")]
        total = total if total is not None else (len(steps) if hasattr(steps, "__len__") else None)
        with Progress(*columns, console=self.console, transient=False) as bar:
            task = bar.add_task(label, total=total, status="")
            for step in steps:
                try:
                    yield step
                finally:  # also when the caller breaks out early (converged): show the last step
                    bar.update(task, advance=1, status="  ".join(f"{k} {v}" for k, v in self.status.items()))

    def dataset(self, name: str) -> dict[str, Any]:
        """A fetched data set's arrays; exits with a one-line message if it is not fetched yet."""
        from grader.data import load
        from grader.errors import TitoError

        try:
            return load(name)
        except TitoError as error:
            self.console.print(f"[red]error:[/red] {error}")
            sys.exit(2)

    def text_dataset(self, name: str) -> tuple[str, bool]:
        """A fetched text data set as (text, True). When it is not fetched yet: CPython's own
        documentation text as (text, False), said out loud, so the milestone still runs with no
        download; such a run can pass its smoke targets but never counts as achieved."""
        from grader.data import is_fetched, load

        if is_fetched(name):
            return bytes(load(name)["text"]).decode("utf-8"), True
        self.substitute_data = name
        self.console.print(f"[yellow]data set {name!r} is not fetched: using CPython's documentation text "
                           f"instead (`tito data fetch {name}` for the real run)[/yellow]")
        return documentation_text(), False

    def save_figure(self, figure: Any, name: str) -> Path:
        path = self.output_dir / name
        figure.savefig(path, dpi=120, bbox_inches="tight")
        self.plots.append(str(path))
        self.console.print(f"saved {path}")
        return path

    def modules_ready(self, number: int) -> bool:
        """True when module `number` and every module it builds on may be used: each one runs from
        the reference, or passed its checkpoint as its file is now. A milestone asks this before it
        takes an optional path through a module it does not require (module 18's fast layers)."""
        from grader.workspace import ModuleState, module_state
        from tinytorch import parse_module_numbers

        module = self.manifest.module_by_number(number)
        reference = parse_module_numbers(os.environ.get("TITO_REFERENCE", ""))
        from_reference = os.environ.get("TITO_SOURCE") == "solutions"
        progress = store_for(self.manifest.state_dir).load()
        return module.available and all(
            from_reference or m.number in reference or module_state(self.manifest, progress, m) is ModuleState.PASSED
            for m in [*self.manifest.dependencies(module), module])

    def fast(self, model: Any) -> Any:
        """`model` on module 18's fast layers (same parameters, same results) once module 18 is
        ready; otherwise `model` as it is, with a word on what module 18 would give."""
        ready = self.modules_ready(18)
        if not self.said_fast:  # once per run, however many models it builds
            self.said_fast = True
            self.console.print("module 18 passed: running on its fused layers (accelerate), same parameters" if ready
                               else "module 18 (acceleration) has not passed yet: module 09/13's layers (after "
                                    "`tito check 18` this milestone runs on fused layers, about 2x faster)")
        if not ready:
            return model
        from tinytorch.acceleration import accelerate

        return accelerate(model)

    def finish(self, metrics: dict[str, float]) -> None:
        """Compare metrics with the manifest's targets, record the run, exit 0 only if all are met."""
        targets = self.milestone.targets_for(self.preset)
        self.console.print()
        all_met = True
        for target in targets:
            value = metrics.get(target.metric)
            met = value is not None and target.met_by(value)
            all_met &= met
            mark = "[green]✓[/green]" if met else "[red]✗[/red]"
            shown = "missing" if value is None else f"{value:.4g}"
            self.console.print(f"{mark} {target.metric} = {shown}   (target {target.op} {target.value:g})")
        for name, value in metrics.items():
            if name not in {t.metric for t in targets}:
                self.console.print(f"  {name} = {value:.4g}")
        achieved = all_met and self.preset != "smoke" and self.substitute_data is None
        if os.environ.get("TITO_NO_RECORD") != "1":
            with store_for(self.manifest.state_dir).update() as progress:
                previous = progress.milestones.get(self.milestone.id)
                # a smoke run never overwrites an achieved default/full result
                if not (previous and previous.achieved and not achieved):
                    progress.milestones[self.milestone.id] = MilestoneResult(
                        preset=self.preset, metrics={k: float(v) for k, v in metrics.items()},
                        achieved=achieved, ran_at=now(), plots=self.plots, substitute_data=self.substitute_data)
        if all_met:
            verdict = ("achieved" if achieved else
                       f"passed on substitute data (`tito data fetch {self.substitute_data}` to achieve it)"
                       if self.substitute_data else "smoke run passed (run the default preset to achieve it)")
            self.console.print(f"\n[bold green]milestone {self.milestone.id}: {verdict}[/bold green]")
            sys.exit(0)
        self.console.print(f"\n[bold red]milestone {self.milestone.id}: target missed[/bold red]")
        sys.exit(1)
