"""Run a module's checkpoint in a child process and collect its results.

The child is `python -m pytest <checkpoint>` with:
- a per-test timeout (pytest-timeout, signal method), so an infinite loop in student code
  becomes one failed test;
- an address-space cap (RLIMIT_AS), so a huge allocation becomes a MemoryError;
- its own process group and a whole-run deadline, so even a hang inside C code is killed;
- the router's environment (TITO_SOURCE / TITO_REFERENCE / TITO_MODULES_DIR) choosing which
  source of each module is imported.

Results stream back through grader.pytest_plugin's JSON-lines report file.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .manifest import Manifest, Module


@dataclass
class TestOutcome:
    name: str
    nodeid: str
    passed: bool
    message: str
    duration: float


@dataclass
class CheckpointRun:
    module: Module
    tests: list[TestOutcome] = field(default_factory=list)
    collected: int | None = None
    errors: list[str] = field(default_factory=list)   # could not import, zero tests, killed
    duration: float = 0.0

    @property
    def passed_count(self) -> int:
        return sum(t.passed for t in self.tests)

    @property
    def total(self) -> int:
        return max(self.collected or 0, len(self.tests))

    @property
    def all_passed(self) -> bool:
        return not self.errors and self.total > 0 and self.passed_count == self.total

    def score(self, points: float) -> float:
        if not self.total:
            return 0.0
        return round(points * self.passed_count / self.total, 2)


@dataclass(frozen=True)
class SourceChoice:
    """Which code a checkpoint runs against."""

    source: str = "modules"               # "modules" or "solutions"
    reference_deps: bool = False          # reference for every module before the checked one
    modules_dir: Path | None = None       # the student's files, if not the course's modules/


def child_environment(manifest: Manifest, module: Module, choice: SourceChoice) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("TITO_SOURCE", "TITO_REFERENCE", "TITO_MODULES_DIR"):
        env.pop(name, None)
    env["TITO_SOURCE"] = choice.source
    if choice.reference_deps:
        env["TITO_REFERENCE"] = ",".join(str(m.number) for m in manifest.modules_before(module))
    env["TITO_MODULES_DIR"] = str(choice.modules_dir or manifest.student_dir)
    env["TITO_CHECKING"] = module.id
    env["TITO_TEST_TIMEOUT"] = f"{manifest.grading.test_timeout_seconds:g}"
    env["TITO_MEMORY_MB"] = str(manifest.grading.memory_mb)
    env["TITO_ROOT_FOR_MESSAGES"] = str(manifest.root)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(manifest.root), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the student's folders free of __pycache__
    env["MPLBACKEND"] = "Agg"
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny test tensors: threads cost more than they save
    return env


def _limit_memory(megabytes: int) -> Callable[[], None]:
    def apply() -> None:
        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def pytest_command(manifest: Manifest, test_files: list[Path], report: Path) -> list[str]:
    return [
        sys.executable, "-m", "pytest", *map(str, test_files),
        "-p", "grader.pytest_plugin", f"--tito-report={report}",
        "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
        f"--timeout={manifest.grading.test_timeout_seconds:g}", "--timeout-method=signal",
        f"--rootdir={manifest.root}", "-o", "addopts=",
    ]


def run_tests(manifest: Manifest, module: Module, test_files: list[Path], choice: SourceChoice = SourceChoice(),
              on_test: Callable[[TestOutcome], None] | None = None, log_path: Path | None = None) -> CheckpointRun:
    """Run `test_files` against the chosen source of `module`, streaming each result to `on_test`."""
    run = CheckpointRun(module)
    started = time.monotonic()
    deadline = started + manifest.grading.checkpoint_timeout_seconds
    with tempfile.TemporaryDirectory(prefix="tito-check-") as scratch:
        report = Path(scratch) / "report.jsonl"
        report.touch()
        log = open(log_path or Path(scratch) / "pytest.log", "w")  # noqa: SIM115
        child = subprocess.Popen(
            pytest_command(manifest, test_files, report), cwd=manifest.root,
            env=child_environment(manifest, module, choice), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_limit_memory(manifest.grading.memory_mb),
        )
        with open(report, encoding="utf-8") as events:
            pending = ""
            while True:
                finished = child.poll() is not None
                pending += events.read()
                *lines, pending = pending.split("\n")
                for line in lines:
                    _apply_event(run, json.loads(line), on_test)
                if finished:
                    break
                if time.monotonic() > deadline:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
                    run.errors.append(f"stopped after {manifest.grading.checkpoint_timeout_seconds:g} s: "
                                      "the checkpoint did not finish (a hang inside a numpy call?)")
                    break
                time.sleep(0.05)
        log.close()
        if child.returncode and child.returncode < 0 and not run.errors:
            run.errors.append(f"the test process was killed by signal {-child.returncode} "
                              f"(out of memory? the cap is {manifest.grading.memory_mb} MB)")
        if run.collected == 0 and not run.errors:
            run.errors.append(f"{module.checkpoint} collected zero tests: the checkpoint itself is broken")
        if run.collected is None and not run.errors:
            tail = Path(log.name).read_text(errors="replace").strip().splitlines()[-5:]
            run.errors.append("pytest did not start: " + " | ".join(tail))
    run.duration = time.monotonic() - started
    return run


def _apply_event(run: CheckpointRun, event: dict, on_test: Callable[[TestOutcome], None] | None) -> None:
    kind = event.get("event")
    if kind == "collected":
        run.collected = event["count"]
    elif kind == "collect_error":
        run.errors.append(f"cannot import your code: {event['message']}")
    elif kind == "stopped":
        run.errors.append(event["reason"])
    elif kind == "test":
        outcome = TestOutcome(event["name"], event["nodeid"], event["outcome"] == "passed",
                              event["message"], event["duration"])
        run.tests.append(outcome)
        if on_test:
            on_test(outcome)


def run_checkpoint(manifest: Manifest, module: Module, choice: SourceChoice = SourceChoice(),
                   on_test: Callable[[TestOutcome], None] | None = None, log_path: Path | None = None) -> CheckpointRun:
    """Run module's visible checkpoint."""
    return run_tests(manifest, module, [manifest.checkpoint_path(module)], choice, on_test, log_path)
