"""Grading through the sandbox gives the reference full marks and the stub nothing, in every module.

This proves the trust boundary harmless for honest code: the sandbox's copy of each test file
(no oracle, no expected values) still drives the student's code through exactly the inputs of
the trusted run, so the reference's recorded values meet every trusted check; and the stub's
values meet none.
"""

from __future__ import annotations

import pytest

from grader.grading import expectations_cache
from grader.judge import expectations_for, judge, load_expectations
from grader.manifest import load_manifest
from grader.recording import record_in_sandbox
from grader.sandbox import sandbox_problem
from grader.stubs import stub_text
from tests.grader.conftest import COURSE_ROOT

MANIFEST = load_manifest(COURSE_ROOT)
SUITES = [(module, kind) for module in MANIFEST.available_modules() for kind in ("checkpoint", "hidden")]
pytestmark = pytest.mark.skipif(bool(sandbox_problem()), reason=sandbox_problem() or "bwrap present")


@pytest.mark.parametrize("module, kind", SUITES, ids=[f"{m.folder}-{k}" for m, k in SUITES])
def test_reference_gets_full_marks_and_stub_none_through_the_sandbox(module, kind):
    expectations = load_expectations(expectations_for(MANIFEST, module, kind, expectations_cache()))
    reference = judge(expectations, record_in_sandbox(MANIFEST, module, MANIFEST.solution_path(module).read_text(), kind))
    failures = [f"{t.name}: {t.message}" for t in reference.tests if not t.passed]
    assert not reference.errors and not failures, "\n".join(reference.errors + failures)
    assert reference.passed_count == len(expectations.tests) > 0
    stub = judge(expectations, record_in_sandbox(MANIFEST, module, stub_text(MANIFEST.solution_path(module).read_text()), kind))
    assert stub.passed_count == 0, [t.name for t in stub.tests if t.passed]
