"""Every checkpoint (and hidden) test fails on the generated stub, as `tito check` runs it.

This is what makes a grade mean something: a test that passes on the stub checks nothing the
student wrote. The modules it builds on come from the reference in the stub run, so each test
is shown to depend on *this* module's code. That every test passes on the reference is proved
by the trusted run in tests/grader/test_sandbox_grading.py (it refuses a reference that fails
any check), which also proves both directions through the grading sandbox.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.checkpoint import SourceChoice, run_tests
from grader.manifest import load_manifest
from grader.stubs import write_stubs
from tests.grader.conftest import COURSE_ROOT

MANIFEST = load_manifest(COURSE_ROOT)
SUITES = [(module, kind) for module in MANIFEST.available_modules() for kind in ("checkpoint", "hidden")]


def suite_file(module, kind: str) -> Path:
    if kind == "checkpoint":
        return MANIFEST.checkpoint_path(module)
    return MANIFEST.hidden_path(module)


@pytest.fixture(scope="module")
def stubs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stubs")
    write_stubs(MANIFEST, folder)
    return folder


@pytest.mark.parametrize("module, kind", SUITES, ids=[f"{m.folder}-{k}" for m, k in SUITES])
def test_every_test_fails_on_the_stub(module, kind, stubs):
    run = run_tests(MANIFEST, module, [suite_file(module, kind)],
                    SourceChoice(reference_deps=True, modules_dir=stubs))
    assert run.collected and run.collected > 0, "collected zero tests"
    assert len(run.tests) == run.collected, run.errors
    passing = [t.name for t in run.tests if t.passed]
    assert not passing, f"these tests pass on the stub, so they check nothing the student wrote: {passing}"
