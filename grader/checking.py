"""`tito check`: run a module's checkpoint on the student's file and record the result."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .checkpoint import CheckpointRun, SourceChoice, TestOutcome, run_checkpoint
from .errors import TitoError
from .manifest import Manifest, Milestone, Module
from .milestones import newly_unlocked
from .pairing import sync_notebook
from .progress import ModuleResult, now, store_for
from .workspace import file_sha256


@dataclass
class CheckResult:
    run: CheckpointRun
    unlocked: list[Milestone] = field(default_factory=list)   # milestones this check completed
    warnings: list[str] = field(default_factory=list)         # about the progress file


def checked_file(manifest: Manifest, module: Module, choice: SourceChoice) -> Path:
    """The file a check runs on; a one-line error if there is none."""
    if not module.available:
        raise TitoError(f"module {module.id} {module.slug} is not available yet in this course")
    if choice.modules_dir is not None:
        path = choice.modules_dir / module.file
    else:
        path = manifest.student_path(module) if choice.source == "modules" else manifest.solution_path(module)
    if not path.exists():
        raise TitoError(f"{path} is missing: `tito module reset {module.id}` restores the stub")
    return path


def failure_cause(manifest: Manifest, module: Module, run: CheckpointRun) -> str:
    """"module 01 did not import" when a failed run's messages point at an earlier module's file."""
    if run.all_passed:
        return ""
    import_errors = run.errors
    failures = [t.message for t in run.tests if not t.passed]
    for earlier in manifest.dependencies(module):
        if any(earlier.folder in message for message in import_errors):
            return f"module {earlier.id} did not import"
        if any(earlier.folder in message for message in failures):
            return f"module {earlier.id} is not finished"
    return ""


def check_module(manifest: Manifest, module: Module, choice: SourceChoice, record: bool,
                 on_test: Callable[[TestOutcome], None] | None = None,
                 on_note: Callable[[str], None] | None = None) -> CheckResult:
    """Run the checkpoint; with `record`, store the result in progress and name what it unlocked."""
    path = checked_file(manifest, module, choice)
    note = sync_notebook(path) if choice.source == "modules" and choice.modules_dir is None else ""
    if note and on_note:
        on_note(note)
    sha = file_sha256(path)
    log_path: Path | None = manifest.state_dir / "logs" / f"check-{module.folder}.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        log_path = None  # a read-only state folder: the log goes to a scratch file
    run = run_checkpoint(manifest, module, choice, on_test=on_test, log_path=log_path)
    result = CheckResult(run)
    if record:
        store = store_for(manifest.state_dir)
        try:
            with store.update() as progress:
                before = copy.deepcopy(progress)
                progress.modules[module.id] = ModuleResult(
                    status="passed" if run.all_passed else "failed", score=run.score(module.points),
                    points=module.points, passed=run.passed_count, total=run.total, checked_at=now(),
                    sha256=sha, checkpoint_sha256=file_sha256(manifest.checkpoint_path(module)),
                    cause=failure_cause(manifest, module, run))
            result.unlocked = newly_unlocked(manifest, before, progress)
        except OSError as error:
            store.warnings.append(f"the result was not recorded: cannot write {store.path} ({error.strerror})")
        result.warnings = list(store.warnings)
    return result
