"""Judging outside the sandbox: the trusted run of the reference, and the verdict on a student.

The trusted run executes a test file against the reference solution with the oracle at hand
(reference mode of grader.expect). Every expect_* call there yields a `Check`: the expected
value, its tolerance, the messages, the predicate. The reference must pass its own checks.
The run is cached per module, kind (checkpoint or hidden) and release: the cache key is the
sha256 of every file that could change an expected value (the test files, the reference
solutions up to the module, the grader's expect/values/plugin code, tests/conftest.py) and of
the numpy, torch, hypothesis and tiktoken versions. Change any of them and the next `tito grade` runs
the reference again.

`judge` then decides each test from the student's recorded values alone: a test passes only if
it ran to its end in the sandbox and every check of the trusted run is met by the student's
value at the same position. Forged, missing, duplicated, extra or unreadable records fail the
test. The messages come from the trusted run, never from the student's process, except the
student's own exception, cut to a short excerpt.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from .checkpoint import CheckpointRun, SourceChoice, TestOutcome, run_tests
from .errors import TitoError
from .expect import Check, judge_value
from .manifest import Manifest, Module
from .values import ValueError_, decode

TRUSTED_TEST_TIMEOUT = 300.0  # seconds per test of the reference's trusted run
EXCERPT = 600  # characters of a student's own exception kept for feedback
KEY_FILES = ("grader/expect.py", "grader/values.py", "grader/pytest_plugin.py", "grader/sandbox_view.py",
             "tests/conftest.py", "tests/checkpoints/common.py")


@dataclass
class TrustedTest:
    name: str
    checks: list[Check] = field(default_factory=list)


@dataclass
class Expectations:
    """The trusted run of one test file: its tests in order, each with its checks in order."""

    module_id: str
    kind: str                          # "checkpoint" or "hidden"
    tests: dict[str, TrustedTest] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"module": self.module_id, "kind": self.kind,
                "tests": [{"nodeid": nodeid, "name": test.name, "checks": [_check_json(c) for c in test.checks]}
                          for nodeid, test in self.tests.items()]}

    @classmethod
    def from_json(cls, raw: dict) -> Expectations:
        expectations = cls(raw["module"], raw["kind"])
        for entry in raw["tests"]:
            expectations.tests[entry["nodeid"]] = TrustedTest(entry["name"], [_check_from(c) for c in entry["checks"]])
        return expectations


def _check_json(check: Check) -> dict:
    from .values import encode

    raw = dict(vars(check))
    raw["expected"], raw["args"], raw["errors"] = encode(check.expected), encode(tuple(check.args)), list(check.errors)
    return raw


def _check_from(raw: dict) -> Check:
    values = dict(raw)
    values["expected"] = decode(raw["expected"])
    values["args"] = tuple(decode(raw["args"]))
    values["errors"] = tuple(raw["errors"])
    return Check(**values)


# -- the trusted run --------------------------------------------------------------------------------

def test_files(manifest: Manifest, module: Module, kind: str) -> list[Path]:
    return [manifest.hidden_path(module) if kind == "hidden" else manifest.checkpoint_path(module)]


def cache_key(manifest: Manifest, module: Module, kind: str) -> str:
    digest = hashlib.sha256()
    files = [*test_files(manifest, module, kind), manifest.checkpoint_path(module),
             *(manifest.root / name for name in KEY_FILES),
             *(manifest.solution_path(m) for m in [*manifest.dependencies(module), module])]
    for path in files:
        digest.update(str(path.relative_to(manifest.root)).encode() + b"\0")
        digest.update(path.read_bytes() if path.exists() else b"<missing>")
    for package in ("numpy", "torch", "hypothesis", "tiktoken"):
        digest.update(f"{package}={importlib.metadata.version(package)}".encode())
    return digest.hexdigest()


def trusted_run(manifest: Manifest, module: Module, kind: str) -> Expectations:
    """Run the test file against the reference, here, with the oracle, and read its checks.

    The reference is trusted code: its limits only guard against a hang, so they are generous
    whatever the limits of the students' runs."""
    generous = replace(manifest.grading, test_timeout_seconds=max(manifest.grading.test_timeout_seconds, TRUSTED_TEST_TIMEOUT))
    manifest = replace(manifest, grading=generous)
    run = run_tests(manifest, module, test_files(manifest, module, kind), SourceChoice(source="solutions"),
                    mode="reference")
    failed = [t for t in run.tests if not t.passed]
    if run.errors or failed or not run.tests:
        problem = (run.errors or [f"{t.name}: {t.message}" for t in failed] or ["no tests ran"])[0]
        raise TitoError(f"the reference fails its own {kind} of module {module.id}: {problem.splitlines()[0]}")
    expectations = Expectations(module.id, kind)
    for test in run.tests:
        checks = run.checks.get(test.nodeid, {})
        if not checks or sorted(checks) != list(range(len(checks))):
            raise TitoError(f"{kind} test {test.nodeid} of module {module.id} checks nothing through "
                            "grader.expect: it cannot be judged")
        expectations.tests[test.nodeid] = TrustedTest(test.name, [_check_from(checks[i]) for i in range(len(checks))])
    return expectations


def expectations_for(manifest: Manifest, module: Module, kind: str, cache: Path) -> Path:
    """The file of the trusted run's checks, computed now if the cache has none for this release."""
    path = cache / f"{module.folder}-{kind}-{cache_key(manifest, module, kind)[:20]}.json"
    if not path.exists():
        expectations = trusted_run(manifest, module, kind)
        cache.mkdir(parents=True, exist_ok=True)
        for stale in cache.glob(f"{module.folder}-{kind}-*.json"):
            if stale != path:
                stale.unlink(missing_ok=True)
        # a name of its own, then an atomic rename: two graders filling the cache at once never mix
        descriptor, temporary = tempfile.mkstemp(dir=cache, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(descriptor, "w") as f:
            f.write(json.dumps(expectations.to_json()))
        os.replace(temporary, path)
    return path


def load_expectations(path: Path) -> Expectations:
    return Expectations.from_json(json.loads(path.read_text()))


# -- the verdict ----------------------------------------------------------------------------------

def _verdict(test: TrustedTest, nodeid: str, recorded: CheckpointRun, outcome: TestOutcome | None) -> str:
    """'' if the student's records meet every check of `test`, else why not."""
    if outcome is None:
        return ("not run: " + recorded.errors[0].splitlines()[0][:200]) if recorded.errors \
            else "not run: the run stopped before this test"
    if not outcome.passed:
        message = outcome.message or "it failed"
        return message if len(message) <= EXCERPT else message[:EXCERPT] + " …"
    positions = {seq for (test_id, seq) in recorded.values if test_id == nodeid}
    if positions - set(range(len(test.checks))):
        return "your code ran checks the reference did not: the test's records do not line up"
    for seq, check in enumerate(test.checks):
        entries = recorded.values.get((nodeid, seq), [])
        if len(entries) != 1:
            return f"{check.call}\n  {'no value was recorded' if not entries else 'conflicting values were recorded'} for this check"
        kind, raw = entries[0]
        if kind != check.kind:
            return f"{check.call}\n  a {kind!r} value was recorded where a {check.kind!r} check stands"
        try:
            value = decode(raw)
        except (ValueError_, ValueError, TypeError, RecursionError) as error:
            return f"{check.call}\n  the value your code gave could not be read back ({error})"
        failure = judge_value(check, value)
        if failure:
            return failure
    return ""


def judge(expectations: Expectations, recorded: CheckpointRun) -> CheckpointRun:
    """The student's run, decided test by test against the trusted checks."""
    outcomes: dict[str, TestOutcome] = {}
    for outcome in recorded.tests:  # of several outcomes for one test (one forged), a failure wins
        if outcome.nodeid not in outcomes or not outcome.passed:
            outcomes[outcome.nodeid] = outcome
    verdict = CheckpointRun(recorded.module, collected=len(expectations.tests), duration=recorded.duration)
    if recorded.collected is None or recorded.errors and not recorded.tests:
        verdict.errors = list(recorded.errors) or ["the checks did not start"]
    for nodeid, test in expectations.tests.items():
        problem = _verdict(test, nodeid, recorded, outcomes.get(nodeid))
        verdict.tests.append(TestOutcome(test.name, not problem, problem, nodeid))
    return verdict
