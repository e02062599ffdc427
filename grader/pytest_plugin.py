"""The pytest plugin inside the child process that runs a checkpoint.

It writes one JSON line per event to the file named by `--tito-report`, flushed at once, so the
parent `tito` process can show results as they happen and still has every finished result if
the child is killed (a hang in C code, the memory cap).

Events: {"event": "collected", "count": N}, {"event": "test", ...}, {"event": "collect_error",
"message": ...}, {"event": "done", "exitstatus": N}.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from .explain import TIMEOUT_MARK, explain

_report_file = None
_timeouts = 0
STOP_AFTER_TIMEOUTS = 2  # an infinite loop usually hangs every later test too: stop early


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--tito-report", default=None, help="JSON-lines file for tito's results")


def pytest_configure(config: pytest.Config) -> None:
    global _report_file
    path = config.getoption("--tito-report")
    if path:
        _report_file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the session


def _emit(event: dict[str, Any]) -> None:
    if _report_file is not None:
        _report_file.write(json.dumps(event) + "\n")
        _report_file.flush()


def plain_name(item: pytest.Item) -> str:
    """A test's name for students: the first line of its docstring, else its function name."""
    doc = getattr(getattr(item, "function", None), "__doc__", None)
    name = doc.strip().splitlines()[0] if doc and doc.strip() else item.name.removeprefix("test_").replace("_", " ")
    if "[" in item.name:  # parametrized: keep the parameters
        name += " [" + item.name.split("[", 1)[1]
    return name


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    # A test's result is its call phase, or its setup phase when set-up already failed.
    if report.when == "call" or (report.when == "setup" and not report.passed):
        message = ""
        if report.failed and call.excinfo is not None:
            message = explain(call.excinfo.value, call.excinfo.tb)
            _stop_after_repeated_timeouts(item, call.excinfo.value)
        _emit({
            "event": "test",
            "nodeid": item.nodeid,
            "name": plain_name(item),
            "outcome": report.outcome,
            "message": message,
            "duration": round(report.duration, 4),
        })


def _stop_after_repeated_timeouts(item: pytest.Item, error: BaseException) -> None:
    global _timeouts
    if str(error).startswith(TIMEOUT_MARK):
        _timeouts += 1
        if _timeouts >= STOP_AFTER_TIMEOUTS:
            item.session.shouldstop = f"stopped after {_timeouts} tests timed out"
            _emit({"event": "stopped", "reason": f"{_timeouts} tests ran out of time, so the rest were not run: "
                                                  "fix the slow or endless loop first"})


def pytest_exception_interact(node: pytest.Item | pytest.Collector, call: pytest.CallInfo, report) -> None:
    if isinstance(node, pytest.Collector) and call.excinfo is not None:
        _emit({"event": "collect_error", "message": explain(call.excinfo.value, call.excinfo.tb)})


def pytest_collection_finish(session: pytest.Session) -> None:
    _emit({"event": "collected", "count": len(session.items)})


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _emit({"event": "done", "exitstatus": int(exitstatus)})
