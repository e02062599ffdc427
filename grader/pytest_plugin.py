"""The pytest plugin inside the child process that runs a checkpoint.

It writes one JSON line per event to the file named by `--tito-report`, flushed at once, so the
parent `tito` process shows results as they happen and still has every finished result if the
child is killed (a hang in C code, the memory cap, the sandbox's wall limit).

Events:
- {"event": "importing", "file": ...}                a test file (so the student's code) is being imported
- {"event": "collected", "count": N}
- {"event": "collect_error", "message": ...}       a test file (so the student's code) did not import
- {"event": "test", "nodeid", "name", "outcome", "message"}
- {"event": "stopped", "reason": ...}              the run gave up early (repeated timeouts)
- {"event": "value", "test", "seq", "kind", "value"}   record mode: a student's value
- {"event": "check", "test", "seq", "check"}           reference mode: what the trusted run expects

In record mode a test's "passed" outcome only means that it ran to its end without an
exception; whether its values are right is decided outside the sandbox (grader.judge).
"""

from __future__ import annotations

import json
import signal
from dataclasses import asdict
from typing import Any

import pytest

from . import expect
from .explain import IMPORT_MARGIN, TIMEOUT_MARK, ImportTimeout, explain
from .settings import RunSettings
from .values import encode

STOP_AFTER_TIMEOUTS = 2  # an infinite loop usually hangs every later test too: stop early


class ReportWriter:
    """The report file, plus the per-test sequence numbers of expect_* calls (an expect.Sink)."""

    def __init__(self, path: str | None, mode: str) -> None:
        self.file = open(path, "a", encoding="utf-8") if path else None  # noqa: SIM115 - kept open for the session
        self.mode = mode
        self.test = ""
        self.seq = 0
        self.timeouts = 0

    def emit(self, event: dict[str, Any]) -> None:
        if self.file is not None:
            self.file.write(json.dumps(event) + "\n")
            self.file.flush()

    def begin(self, nodeid: str) -> None:
        self.test, self.seq = nodeid, 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq - 1

    def record_value(self, kind: str, value: Any) -> None:
        self.emit({"event": "value", "test": self.test, "seq": self._next(), "kind": kind, "value": encode(value)})

    def record_check(self, check: expect.Check) -> None:
        raw = asdict(check)
        raw["expected"], raw["args"] = encode(check.expected), encode(tuple(check.args))
        raw["errors"] = list(check.errors)
        self.emit({"event": "check", "test": self.test, "seq": self._next(), "check": raw})


_writer: ReportWriter | None = None


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tito-report", default=None, help="JSON-lines file for tito's results")


def pytest_configure(config: pytest.Config) -> None:
    global _writer
    settings = RunSettings.from_env()
    _writer = ReportWriter(config.getoption("--tito-report"), settings.mode)
    expect.install_sink(_writer if settings.mode in ("record", "reference") else None)


def plain_name(item: pytest.Item) -> str:
    """A test's name for students: the first line of its docstring, else its function name."""
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    name = doc.strip().splitlines()[0] if doc and doc.strip() else item.name.removeprefix("test_").replace("_", " ")
    if "[" in item.name:  # parametrized: keep the parameters
        name += " [" + item.name.split("[", 1)[1]
    return name


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _writer is not None:
        _writer.begin(item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    # A test's result is its call phase, or its setup phase when set-up already failed.
    if _writer is not None and (report.when == "call" or (report.when == "setup" and not report.passed)):
        message = ""
        if report.failed and call.excinfo is not None:
            message = explain(call.excinfo.value, call.excinfo.tb)
            _stop_after_repeated_timeouts(item, call.excinfo.value)
        _writer.emit({"event": "test", "nodeid": item.nodeid, "name": plain_name(item),
                      "outcome": report.outcome, "message": message})


def _stop_after_repeated_timeouts(item: pytest.Item, error: BaseException) -> None:
    if str(error).startswith(TIMEOUT_MARK):
        _writer.timeouts += 1
        if _writer.timeouts >= STOP_AFTER_TIMEOUTS:
            item.session.shouldstop = f"stopped after {_writer.timeouts} tests timed out"
            _writer.emit({"event": "stopped", "reason": f"{_writer.timeouts} tests ran out of time, so the rest "
                                                        "were not run: fix the slow or endless loop first"})


def _raise_import_timeout(signum: int, frame: Any) -> None:
    raise ImportTimeout()


def import_limit(settings: RunSettings) -> float:
    """How long importing a test file (and with it the student's module) may take; 0: no limit."""
    return 0.0 if settings.mode == "reference" or settings.test_timeout <= 0 else settings.test_timeout + IMPORT_MARGIN


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    """Importing a test file imports the student's code: an endless loop there is cut off too,
    and a module that calls sys.exit() is a failed import, not the end of pytest."""
    if not isinstance(collector, pytest.Module):
        return (yield)
    limit = import_limit(RunSettings.from_env())
    if _writer is not None:
        _writer.emit({"event": "importing", "file": collector.nodeid})
    previous = signal.signal(signal.SIGALRM, _raise_import_timeout) if limit > 0 else None
    if limit > 0:
        signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return (yield)
    except SystemExit as exit_:
        message = explain(exit_, exit_.__traceback__)
        if _writer is not None:
            _writer.emit({"event": "collect_error", "message": message})
        return pytest.CollectReport(collector.nodeid, "failed", message, [])
    finally:
        if limit > 0:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def pytest_exception_interact(node: pytest.Item | pytest.Collector, call: pytest.CallInfo, report) -> None:
    if isinstance(node, pytest.Collector) and call.excinfo is not None and _writer is not None:
        _writer.emit({"event": "collect_error", "message": explain(call.excinfo.value, call.excinfo.tb)})


def pytest_collection_finish(session: pytest.Session) -> None:
    if _writer is not None:
        _writer.emit({"event": "collected", "count": len(session.items)})
