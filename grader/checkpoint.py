"""Run a module's checkpoint in a child process and collect its results.

The child is `python -m pytest <test files>` with:
- a per-test timeout (pytest-timeout, signal method) and the same limit on importing a test
  file, so an infinite loop in student code becomes one failed test;
- an address-space cap (RLIMIT_AS), so a huge allocation becomes a MemoryError;
- its own session and a whole-run deadline, so even a hang inside C code is killed;
- the router's environment (TITO_SOURCE / TITO_REFERENCE / TITO_MODULES_DIR) choosing which
  source of each module is imported;
- bubblewrap around it when the machine has it (grader.sandbox).

Results stream back through grader.pytest_plugin's JSON-lines report file. The same loop runs
a checkpoint for `tito check` (direct mode), for the trusted run of the reference (reference
mode) and inside the grading sandbox (record mode): see grader.expect.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .manifest import Manifest, Module
from .sandbox import Limits, local_check_command, sandbox_problem
from .settings import RunSettings

MAX_EVENT_LINE = 64 * 2**20     # a longer line from the child is ignored
MAX_REPORT_BYTES = 512 * 2**20  # and nothing past this is read


@dataclass
class TestOutcome:
    name: str
    passed: bool
    message: str
    nodeid: str = ""


@dataclass
class CheckpointRun:
    module: Module
    tests: list[TestOutcome] = field(default_factory=list)
    collected: int | None = None
    importing: bool = False                            # a test file's import began (and may not have ended)
    errors: list[str] = field(default_factory=list)   # could not import, zero tests, killed
    duration: float = 0.0
    # record mode: the student's values, (test, seq) -> [(kind, encoded value), ...]
    values: dict[tuple[str, int], list[tuple[str, Any]]] = field(default_factory=dict)
    # reference mode: what the trusted run expects, test -> {seq: encoded Check}
    checks: dict[str, dict[int, dict]] = field(default_factory=dict)

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
    reference_deps: bool = False          # reference for every module the checked one builds on
    modules_dir: Path | None = None       # the student's files, if not the course's modules/


def router_environment(manifest: Manifest, module: Module, choice: SourceChoice, modules_dir: str) -> dict[str, str]:
    env = {"TITO_SOURCE": choice.source, "TITO_MODULES_DIR": modules_dir}
    if choice.reference_deps:
        env["TITO_REFERENCE"] = ",".join(str(m.number) for m in manifest.dependencies(module))
    return env


def run_settings(manifest: Manifest, module: Module, mode: str, root_for_messages: str) -> RunSettings:
    return RunSettings(mode=mode, checking=module.id, test_timeout=manifest.grading.test_timeout_seconds,
                       memory_mb=manifest.grading.memory_mb, root_for_messages=root_for_messages,
                       reference_available=manifest.has_solutions() and mode == "direct")


def child_environment(manifest: Manifest, module: Module, choice: SourceChoice, mode: str = "direct") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TITO_SOURCE", "TITO_REFERENCE", "TITO_MODULES_DIR"))}
    env.update(router_environment(manifest, module, choice, str(choice.modules_dir or manifest.student_dir)))
    env.update(run_settings(manifest, module, mode, str(manifest.root)).to_env())
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(manifest.root), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the student's folders free of __pycache__
    env["MPLBACKEND"] = "Agg"
    env.update(PLUGINS_ENV)
    env.setdefault("OMP_NUM_THREADS", "1")  # tiny test tensors: threads cost more than they save
    return env


# pytest loads every plugin installed in the environment (anyio, xdist, ...) unless told not to:
# about a second per run, spent before the first test. A checkpoint needs only these.
PLUGINS_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}


def pytest_arguments(manifest: Manifest, test_files: list[str], report: str, rootdir: str) -> list[str]:
    return [
        "-m", "pytest", *test_files,
        "-p", "pytest_timeout", "-p", "_hypothesis_pytestplugin",
        "-p", "grader.pytest_plugin", f"--tito-report={report}",
        "-p", "no:cacheprovider", "-q", "--no-header", "-rN",
        f"--timeout={manifest.grading.test_timeout_seconds:g}", "--timeout-method=signal",
        f"--rootdir={rootdir}", "-o", "addopts=",
    ]


def stream_events(command: list[str], *, cwd: Path, env: dict[str, str], report: Path, log: Path,
                  limits: Limits, wall_seconds: float, on_event: Callable[[dict], None]) -> tuple[int | None, bool]:
    """Run `command`, feeding each JSON line of `report` to `on_event`; (exit code, timed out)."""
    deadline = time.monotonic() + wall_seconds
    with open(log, "w") as log_file:
        child = subprocess.Popen(command, cwd=cwd, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=limits.apply)
    timed_out = False
    read = 0
    with open(report, "rb") as events:
        pending = b""
        while True:
            finished = child.poll() is not None
            chunk = events.read(MAX_REPORT_BYTES - read) if read < MAX_REPORT_BYTES else b""
            read += len(chunk)
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if len(line) > MAX_EVENT_LINE:
                    continue
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    continue  # a line the child garbled (or forged badly) is no event
                if isinstance(event, dict):
                    on_event(event)
            if len(pending) > MAX_EVENT_LINE:
                pending = b""
            if finished:
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            time.sleep(0.02)
    if child.poll() is None:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.wait()
    return child.returncode, timed_out


def apply_event(run: CheckpointRun, event: dict, on_test: Callable[[TestOutcome], None] | None = None) -> None:
    """One event of the plugin (see grader.pytest_plugin) into `run`. Malformed events are ignored."""
    kind = event.get("event")
    try:
        if kind == "importing":
            run.importing = True
        elif kind == "collected":
            run.collected = int(event["count"])
        elif kind == "collect_error":
            run.errors.append(f"cannot import your code: {str(event['message'])[:4000]}")
        elif kind == "stopped":
            run.errors.append(str(event["reason"])[:500])
        elif kind == "test":
            outcome = TestOutcome(str(event["name"]), event["outcome"] == "passed", str(event["message"])[:4000],
                                  str(event["nodeid"]))
            run.tests.append(outcome)
            if on_test:
                on_test(outcome)
        elif kind == "value":
            run.values.setdefault((str(event["test"]), int(event["seq"])), []).append((str(event["kind"]), event["value"]))
        elif kind == "check":
            run.checks.setdefault(str(event["test"]), {})[int(event["seq"])] = event["check"]
    except (KeyError, TypeError, ValueError):
        pass


def finish(run: CheckpointRun, module: Module, returncode: int | None, timed_out: bool, wall_seconds: float,
           memory_mb: int, log: Path) -> None:
    """What went wrong with the child as a whole, in one line each."""
    if timed_out:
        run.errors.append(f"stopped after {wall_seconds:g} s: the checkpoint did not finish (an endless loop "
                          "the per-test limit could not stop?)")
    elif returncode is not None and returncode < 0 and not run.errors:
        run.errors.append(f"the test process was killed by signal {-returncode} "
                          f"(out of memory? the cap is {memory_mb} MB)")
    if run.collected == 0 and not run.errors:
        run.errors.append(f"{module.checkpoint} collected zero tests: the checkpoint itself is broken")
    if run.collected is None and run.importing and not run.errors:
        run.errors.append("your module exited while being imported (os._exit or sys.exit at module level?): "
                          "nothing could be checked")
    if run.collected is None and not run.errors:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        run.errors.append("pytest did not start: " + " | ".join(tail))


def use_local_sandbox() -> bool:
    return os.environ.get("TITO_NO_SANDBOX") != "1" and not sandbox_problem()


def run_tests(manifest: Manifest, module: Module, test_files: list[Path], choice: SourceChoice = SourceChoice(),
              on_test: Callable[[TestOutcome], None] | None = None, log_path: Path | None = None,
              mode: str = "direct") -> CheckpointRun:
    """Run `test_files` on this machine against the chosen source of `module`, streaming each result.

    mode "direct" is `tito check`; "reference" is the trusted run of the reference (grader.judge).
    """
    run = CheckpointRun(module)
    started = time.monotonic()
    wall = manifest.grading.checkpoint_timeout_seconds
    with tempfile.TemporaryDirectory(prefix="tito-check-") as scratch:
        report = Path(scratch) / "report.jsonl"
        report.touch()
        log = log_path or Path(scratch) / "pytest.log"
        command = [sys.executable, *pytest_arguments(manifest, [str(p) for p in test_files], str(report), str(manifest.root))]
        if mode == "direct" and use_local_sandbox():
            command = local_check_command(command, writable=[Path(scratch), log.parent])
        limits = Limits(manifest.grading.memory_mb, cpu_seconds=int(wall) + 60)
        code, timed_out = stream_events(command, cwd=manifest.root, env=child_environment(manifest, module, choice, mode),
                                        report=report, log=log, limits=limits, wall_seconds=wall,
                                        on_event=lambda event: apply_event(run, event, on_test))
        finish(run, module, code, timed_out, wall, manifest.grading.memory_mb, log)
    run.duration = time.monotonic() - started
    return run


def run_checkpoint(manifest: Manifest, module: Module, choice: SourceChoice = SourceChoice(),
                   on_test: Callable[[TestOutcome], None] | None = None, log_path: Path | None = None) -> CheckpointRun:
    """Run module's visible checkpoint."""
    return run_tests(manifest, module, [manifest.checkpoint_path(module)], choice, on_test, log_path)
